"""Filesystem usage of the paths local mode fills, with the numbers `df` shows."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class FsUsage:
    path: str
    mountpoint: str
    device: str
    fstype: str
    total: int
    used: int
    free: int
    """Bytes available to unprivileged writers: df's "Avail" (root's reserved blocks excluded)."""
    percent: float
    """used / (used + free), df's "Use%": what a non-root writer experiences as full."""

    def to_dict(self) -> dict:
        return asdict(self)


def fs_usage(path: str | os.PathLike[str]) -> FsUsage | None:
    """Usage of the filesystem holding `path`, or None when the path does not exist."""
    real = os.path.realpath(path)
    if not os.path.exists(real):
        return None
    import psutil  # loaded where a disk is measured: `last-failure` needs only human_bytes (start-up time)

    usage = psutil.disk_usage(real)
    mountpoint, device, fstype = _mount_of(real)
    return FsUsage(
        path=str(path),
        mountpoint=mountpoint,
        device=device,
        fstype=fstype,
        total=usage.total,
        used=usage.used,
        free=usage.free,
        percent=usage.percent,
    )


def same_filesystem(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    return os.stat(a).st_dev == os.stat(b).st_dev


def _mount_of(real_path: str) -> tuple[str, str, str]:
    """The mount that holds an absolute, symlink-free path: the longest mount point above it (the last
    one mounted wins when several share a mount point, as the kernel's view does)."""
    import psutil  # as in fs_usage, its only caller

    best = ("/", "", "")
    for part in psutil.disk_partitions(all=True):
        mp = part.mountpoint
        inside = real_path == mp or real_path.startswith(mp.rstrip("/") + "/")
        if inside and len(mp) >= len(best[0]):
            best = (mp, part.device, part.fstype)
    return best


def human_bytes(n: float) -> str:
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    i = 0
    while abs(n) >= 1024 and i < len(units) - 1:
        n /= 1024
        i += 1
    return f"{n:.0f} B" if i == 0 else f"{n:.1f} {units[i]}"


def mounts_at_or_under(top: Path) -> list[str]:
    """Mount points at `top` or below it, deepest first (the order to unmount them in)."""
    base = str(top).rstrip("/")
    found = []
    with open("/proc/self/mountinfo") as mounts:
        for line in mounts:
            point = line.split()[4].replace("\\040", " ")
            if point == base or point.startswith(base + "/"):
                found.append(point)
    return sorted(set(found), key=len, reverse=True)
