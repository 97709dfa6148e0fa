"""Careful file edits: atomic writes, timestamped backups, and an inter-process lock.

A config file we edit is either its old bytes or its new bytes on disk, never a torn mix; before it is
changed, a copy of its old bytes is kept next to it so a human (or a rollback) can restore it.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import shutil
import tarfile
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path


def atomic_write(path: Path, data: str | bytes, mode: int | None = None) -> None:
    """Replace `path` with `data` in one rename; keeps the old file's mode unless `mode` is given."""
    payload = data.encode() if isinstance(data, str) else data
    if mode is None:
        try:
            mode = path.stat().st_mode & 0o7777
        except FileNotFoundError:
            mode = 0o644
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def write_json(path: Path, value: object, mode: int = 0o600) -> None:
    atomic_write(path, json.dumps(value, indent=2, sort_keys=True, default=str) + "\n", mode)


def backup(path: Path) -> Path | None:
    """Copy `path` to `path.smdiag-<UTC time>.bak` (metadata kept); None when there is no file to keep."""
    if not path.exists():
        return None
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = path.with_name(f"{path.name}.smdiag-{stamp}.bak")
    counter = 1
    while target.exists():
        counter += 1
        target = path.with_name(f"{path.name}.smdiag-{stamp}-{counter}.bak")
    shutil.copy2(path, target)
    return target


def restore(path: Path, saved: Path | None) -> None:
    """Put back what `backup` kept: the old bytes, or no file at all if there was none."""
    if saved is None:
        path.unlink(missing_ok=True)
    else:
        atomic_write(path, saved.read_bytes(), saved.stat().st_mode & 0o7777)


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive flock on `path`; a second holder waits (it does not interleave)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def tar_in_memory(files: Mapping[str, tuple[bytes, int]]) -> bytes:
    """A tar of small files made in memory, `{name: (content, mode)}`: what the engine reads as a build
    context or a `docker load` archive, with nothing written to disk."""
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        for name, (data, mode) in files.items():
            member = tarfile.TarInfo(name)
            member.size, member.mode = len(data), mode
            tar.addfile(member, io.BytesIO(data))
    return archive.getvalue()


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
