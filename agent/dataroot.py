"""A Docker data-root on disk, for bootstrap: what it holds, copying it, checking the copy, removing it.

The copy goes into a staging directory renamed to the target only when complete, and a marker inside it
(`MARKER`) records what was copied: a half-copied tree never looks complete. `migrate` registers each
undo in the bootstrap's journal before the change it belongs to (the staging directory, the renamed
copy); deciding whether to undo is bootstrap's.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import docker.errors

from agent import container_logs, disks, fileops
from agent.errors import Failed
from agent.journal import Journal, signals_blocked
from agent.log import get_logger

if TYPE_CHECKING:
    from agent.engine import Engine

log = get_logger("bootstrap")

MARKER = ".smdiag-data-root.json"
"""Written into a copy before it is renamed into place: its presence means the copy is complete."""
DRIVER_DIRS = ("overlay2", "overlay", "fuse-overlayfs", "devicemapper", "btrfs", "zfs", "vfs", "aufs")
RSYNC_ARGS = ("rsync", "-aHAXS", "--numeric-ids", "-x", "--delete")
COPY_UNDO = "data_root_copy"
"""The undo action of a copy renamed into place: removed, or moved aside once an engine has used it."""


@dataclass
class Inventory:
    """What the engine holds, compared before and after a move: nothing may go missing."""

    images: dict[str, list[str]] = field(default_factory=dict)
    containers: dict[str, dict] = field(default_factory=dict)
    volumes: dict[str, dict[str, int]] = field(default_factory=dict)
    """Volume name -> {relative file path: size}."""
    logs: dict[str, str] = field(default_factory=dict)
    """Stopped container id -> digest of its log tail (running ones keep writing)."""

    @property
    def is_empty(self) -> bool:
        return not (self.images or self.containers or self.volumes)

    def fingerprint(self) -> str:
        names = [sorted(self.images), sorted(self.containers), sorted(self.volumes)]
        return hashlib.sha256(json.dumps(names).encode()).hexdigest()

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Inventory:
        return cls(**data)

    def counts(self) -> dict[str, int]:
        return {"images": len(self.images), "containers": len(self.containers), "volumes": len(self.volumes)}

    def holds_more_than(self, other: Inventory) -> bool:
        """Whether this has images, tags, containers or volume files that `other` lacks (logs aside: a
        container stopped by a daemon restart has new ones)."""
        return bool(Inventory(self.images, self.containers, self.volumes).missing_from(other))

    def missing_from(self, after: Inventory) -> list[str]:
        """What this (before) inventory has that `after` lost or changed, in words."""
        lost = []
        for image_id, tags in self.images.items():
            if image_id not in after.images:
                lost.append(f"image {tags[0] if tags else image_id[:19]}")
            elif set(tags) - set(after.images[image_id]):
                lost.append(f"tags {sorted(set(tags) - set(after.images[image_id]))}")
        for cid, container in self.containers.items():
            if after.containers.get(cid, {}).get("image") != container["image"]:
                lost.append(f"container {container['name']}")
        for name, files in self.volumes.items():
            if after.volumes.get(name) != files:
                lost.append(f"volume {name} (files differ)")
        for cid, digest in self.logs.items():
            if after.logs.get(cid) != digest:
                lost.append(f"logs of container {self.containers[cid]['name']}")
        return lost


def take_inventory(client) -> Inventory:
    inventory = Inventory()
    for image in client.images.list():
        inventory.images[image.id] = sorted(image.tags)
    for container in client.containers.list(all=True):
        running = container.status in ("running", "restarting", "paused")
        inventory.containers[container.id] = {
            "name": container.name,
            "image": container.attrs.get("Image"),
            "running": running,
            "restart": ((container.attrs.get("HostConfig") or {}).get("RestartPolicy") or {}).get("Name") or "no",
        }
        digest = container_logs.tail_digest(container)  # raises when the log file is unreadable
        if not running:
            inventory.logs[container.id] = digest
    for volume in client.volumes.list():
        inventory.volumes[volume.name] = _files(Path(volume.attrs.get("Mountpoint") or "/nonexistent"))
    return inventory


def _files(top: Path) -> dict[str, int]:
    found = {}
    for directory, _dirs, names in os.walk(top):
        for name in names:
            path = Path(directory) / name
            with contextlib.suppress(OSError):
                found[str(path.relative_to(top))] = path.lstat().st_size
    return found


def migrate(
    source: Path, target: Path, engine: Engine, service, journal: Journal, live: bool, progress
) -> tuple[int, Inventory]:
    """Copy the data-root into staging (first while Docker runs, if `live`), stop Docker, make the copy
    exact, rename it into place. Returns the bytes copied and the inventory Docker held when it stopped."""
    staging = target.with_name(f".{target.name}.smdiag-partial")
    journal.will("created", path=str(staging))
    live_since = None
    if live:
        journal.record(phase="precopying")
        live_since = time.time()
        size = allocated_bytes(source)
        copy_tree(source, staging, size, progress, live=True)
        progress = None  # the final pass is short: no second bar
    inventory = take_inventory(engine.client)  # now, so that what the user changed meanwhile is what we verify
    journal.record(phase="stopping")
    service.stop()
    # Running containers write into their volumes until Docker stops them: count the files at rest.
    for name in inventory.volumes:
        inventory.volumes[name] = _files(source / "volumes" / name / "_data")
    journal.record(phase="copying", inventory=inventory.to_dict())
    stopped_copy_started = time.monotonic()
    if live_since is not None:
        _drop_changed_copies(source, staging, live_since - CLOCK_MARGIN_S)
    else:
        size = allocated_bytes(source)
    copy_tree(source, staging, size, progress)
    journal.record(stopped_copy_seconds=round(time.monotonic() - stopped_copy_started, 3))
    marker = {"source": str(source), "fingerprint": inventory.fingerprint(), "bytes": size, "time": time.time()}
    fileops.write_json(staging / MARKER, marker, mode=0o644)
    journal.will("created", path=str(target), action=COPY_UNDO)
    if target.exists():
        # classify_target found it empty; a dead daemon's bind mount of it may still make it busy.
        release_daemon_mounts(target)
        target.rmdir()
    os.rename(staging, target)
    # From here on both trees are the same data: whatever changes either later was done by an engine.
    journal.record(phase="renamed", settled_at=time.time())
    return size, inventory


CLOCK_MARGIN_S = 2
"""Files changed this close before the live pass began are copied again too (clock steps, coarse mtimes)."""


def _drop_changed_copies(source: Path, staging: Path, since: float) -> int:
    """Delete from staging every file, link or node whose source changed since `since`, so that the final
    pass copies it whole. rsync's quick check (size and mtime, compared to the second) cannot see a
    same-size rewrite within the second of the live copy, as a database page update is."""
    dropped = 0
    for path, st in walk_filesystem(source):
        if not stat.S_ISDIR(st.st_mode) and st.st_ctime >= since:
            (staging / path.relative_to(source)).unlink(missing_ok=True)
            dropped += 1
    log.info("bootstrap.changed_during_live_copy", files=dropped)
    return dropped


RESTARTED_BY_DOCKER = ("always", "unless-stopped")
"""Restart policies under which a container that ran before a daemon restart runs again after it."""
RESTART_WAIT_S = 60


def verify(engine: Engine, target: Path, storage_driver: str | None, inventory: Inventory, compare: bool) -> list[str]:
    """The engine runs on the target with the same storage driver and, if `compare` (a copy no one has used
    yet), holds everything the inventory had and runs again every container Docker restarts by policy.
    Returns the containers that ran before and that Docker leaves stopped after any restart (no policy)."""
    after = engine.describe()
    if os.path.realpath(after.root_dir) != str(target):
        raise Failed(
            f"Docker came back on {after.root_dir}, not {target}",
            "check for a --data-root flag in the docker unit or sysconfig and remove it",
        )
    changed_driver = storage_driver is not None and after.storage_driver != storage_driver
    if changed_driver or (after.storage_driver == "overlay2" and not after.d_type):
        raise Failed(
            f"on {target} the storage driver is {after.storage_driver} (d_type {after.d_type}), was {storage_driver}",
            "put the target on an xfs (ftype=1) or ext4 filesystem with d_type support",
        )
    if not compare:
        return []
    lost = inventory.missing_from(take_inventory(engine.client))
    if lost:
        raise Failed(f"after the copy the engine lacks: {', '.join(lost[:5])}", "report this as a bug")
    ran = {cid: c for cid, c in inventory.containers.items() if c["running"]}
    expected = [cid for cid, c in ran.items() if c.get("restart") in RESTARTED_BY_DOCKER]
    down = _not_running_after(engine.client, expected)
    if down:
        raise Failed(
            f"containers that ran before the move do not run after it: {'; '.join(down[:5])}",
            "read their logs (docker logs NAME); the move is rolled back so they run on the old root",
        )
    return sorted(c["name"] for cid, c in ran.items() if cid not in expected)


def _not_running_after(client, container_ids: list[str]) -> list[str]:
    """Wait for Docker to restart the containers it restarts by policy; name those that do not run, and why."""
    deadline = time.monotonic() + RESTART_WAIT_S
    while True:
        down = []
        for cid in container_ids:
            try:
                container = client.containers.get(cid)
            except docker.errors.NotFound:
                down.append(f"{cid[:12]} is gone")
                continue
            if container.status != "running":
                state = container.attrs.get("State") or {}
                why = state.get("Error") or f"exit code {state.get('ExitCode')}"
                down.append(f"{container.name} is {container.status} ({why})")
        if not down or time.monotonic() > deadline:
            return down
        time.sleep(0.5)


def changed_since(top: Path, stamp: float) -> bool:
    """Whether anything under `top` (not `top` itself, nor our marker) had its inode changed after `stamp`:
    an engine starting on a data-root writes into it at once, copying out of one only reads it."""
    marker = top / MARKER
    return any(st.st_ctime > stamp and path != marker for path, st in walk_filesystem(top))


def walk_filesystem(top: Path) -> Iterator[tuple[Path, os.stat_result]]:
    """Every entry below `top` with its lstat, staying on top's filesystem as the copy does (a running
    container's overlay mount inside a data-root is not part of it); nothing when `top` does not exist."""
    try:
        device = top.stat().st_dev
    except FileNotFoundError:
        return
    stack = [top]
    while stack:
        directory = stack.pop()
        with contextlib.suppress(OSError), os.scandir(directory) as entries:
            for entry in entries:
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if st.st_dev != device:
                    continue
                yield Path(entry.path), st
                if stat.S_ISDIR(st.st_mode):
                    stack.append(Path(entry.path))


def set_aside(target: Path) -> Path:
    """Keep a data-root an engine has used, under a name no later run adopts."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    aside = target.with_name(f"{target.name}.smdiag-kept-{stamp}")
    release_daemon_mounts(target)
    os.rename(target, aside)
    return aside


def classify_target(target: Path) -> tuple[str, dict | None]:
    """absent, empty, ours (a complete copy: marker), layout (a data-root without marker), mountpoint,
    or foreign (anything else, which we never overwrite)."""
    if not target.exists():
        return "absent", None
    if not target.is_dir():
        return "foreign", None
    with contextlib.suppress(OSError, json.JSONDecodeError):
        return "ours", json.loads((target / MARKER).read_text())
    if os.path.ismount(target):
        return "mountpoint", None
    entries = {entry.name for entry in os.scandir(target)}
    if not entries:
        return "empty", None
    if "image" in entries and entries & set(DRIVER_DIRS):
        return "layout", None
    return "foreign", None


def allocated_bytes(top: Path) -> int:
    """Disk space the tree takes (hard links once), staying on its filesystem like the copy does."""
    seen: set[int] = set()
    total = 0
    for _path, st in walk_filesystem(top):
        if not stat.S_ISDIR(st.st_mode) and st.st_nlink > 1:
            if st.st_ino in seen:
                continue
            seen.add(st.st_ino)
        total += st.st_blocks * 512
    return total


RSYNC_VANISHED = (23, 24)
"""rsync's exit codes for files that changed or vanished while it read them: expected of a live pass."""


def copy_tree(
    source: Path, staging: Path, total: int, progress: Callable[[int, int], None] | None, live: bool = False
) -> None:
    """rsync everything a data-root holds (owners by number, modes, xattrs, ACLs, hard links, sparse files,
    symlinks, device nodes) into `staging`; progress is the staging filesystem's growth. A `live` pass runs
    while Docker writes to the source: files that vanish under it are left to the final pass."""
    staging.mkdir(parents=True, exist_ok=True)
    base = disks.fs_usage(staging)
    argv = [*RSYNC_ARGS, f"{source}/", f"{staging}/"]
    log.info("bootstrap.copying", argv=argv, total=total)
    proc = None
    stderr_lines: list[bytes] = []
    try:
        with signals_blocked():  # a SIGTERM now would leave an rsync we never learnt of
            proc = subprocess.Popen(
                argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=_die_with_parent
            )
        reader = threading.Thread(target=lambda: stderr_lines.extend(proc.stderr), daemon=True)
        reader.start()
        while True:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=0.25)
                break
            if progress is not None and base is not None:
                usage = disks.fs_usage(staging)
                progress(min(total, max(0, usage.used - base.used)) if usage else 0, total)
        reader.join(5)
    except BaseException:
        if proc is not None:  # interrupted: the copy must not go on writing into what the rollback removes
            proc.kill()
            proc.wait()
        raise
    if proc.returncode != 0 and not (live and proc.returncode in RSYNC_VANISHED):
        # The first complaint is the cause (the receiver's ENOSPC); later ones are its echoes (broken pipe).
        lines = b"".join(stderr_lines).decode(errors="replace").strip().splitlines()
        raise Failed(
            f"copying {source} to {staging} failed (rsync exit {proc.returncode})" + (f": {lines[0]}" if lines else ""),
            "free space on the target volume, then run again",
        )
    if progress is not None:
        progress(total, total)


def _die_with_parent() -> None:
    """In the rsync child: a SIGKILLed agent must not leave a copy running into a staging directory that
    the next run deletes."""
    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def reclaim(old_root: Path, target: Path) -> bool:
    """Delete the old data-root's contents after a verified move; kept when anything is mounted in it."""
    mounted_inside = [point for point in disks.mounts_at_or_under(old_root) if point != str(old_root)]
    if inside(str(target), str(old_root)) or mounted_inside:
        log.warning("bootstrap.reclaim_skipped", old_root=str(old_root))
        return False
    for entry in list(old_root.iterdir()):
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    return True


def remove_copy(target: Path) -> None:
    (target / MARKER).unlink(missing_ok=True)  # first: whatever is left can never count as complete
    release_daemon_mounts(target)
    shutil.rmtree(target, ignore_errors=True)


def release_daemon_mounts(root: Path) -> None:
    """dockerd bind-mounts its data-root onto itself and leaves that mount behind when it dies; a
    directory we created and are about to replace or delete must not stay busy because of it."""
    for point in disks.mounts_at_or_under(root):
        if subprocess.run(["umount", point], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", point], capture_output=True)


def inside(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")
