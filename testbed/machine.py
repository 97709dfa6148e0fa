"""What the bed needs of this machine, and the small helpers every part of it uses: root and the tools,
a free port, a short temporary directory, waiting on a condition."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REQUIRED_TOOLS = ("dockerd", "docker-registry", "mkfs.ext4", "mount", "umount", "busybox", "setpriv")
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30


class BedUnavailable(RuntimeError):
    """The machine cannot host the bed (not root, a tool missing, loop devices refused)."""


def check_prerequisites() -> None:
    if os.geteuid() != 0:
        raise BedUnavailable("the test bed needs root (dockerd, mount -o loop)")
    missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
    if missing:
        raise BedUnavailable(f"missing {', '.join(missing)}: run tests/install-bed.sh")


def run(*argv: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, check=True, capture_output=True, text=True, **kwargs)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def short_tempdir(prefix: str) -> Path:
    """A directory under /tmp with a short path: unix socket paths are limited to ~100 bytes."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


def wait_for(condition, timeout: float = 60, every: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(every)


def http_answers(url: str) -> bool:
    """True when `url` answers HTTP at all (an error status is an answer: a registry asking for a login)."""
    try:
        urllib.request.urlopen(url, timeout=2).close()
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
    return True


def listens(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0
