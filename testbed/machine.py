"""What the bed needs of this machine, and the small helpers every part of it uses: root and the tools,
a free port, a short temporary directory, waiting on a condition, tying a started process to its starter."""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
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


PR_SET_PDEATHSIG = 1
_prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved here, never between a fork and an exec


def die_with_parent(parent: int) -> None:
    """SIGTERM to this process when its parent (`parent`, as this process saw it) dies, even by SIGKILL."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # it died before the asking
        os.kill(os.getpid(), signal.SIGTERM)


def dies_with_this_process() -> Callable[[], None]:
    """A `preexec_fn`: the child gets SIGTERM when the process that started it dies, even by SIGKILL. A test run
    killed mid-way (a timeout, a stopped session) otherwise leaves its engines running, their containers holding
    the host's port 8080 and their mounts, for the next run on this machine to trip over."""
    starter = os.getpid()
    return lambda: die_with_parent(starter)


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


@contextlib.contextmanager
def host_port_turn(port: int, lock_dir: Path, wait_s: float = 300, free_wait_s: float = 60) -> Iterator[None]:
    """Hold the host's `port` for this process: SageMaker's local endpoints always listen on the host's 8080, so two
    test runs on one machine take turns (a lock file any run can find), and a port some other process holds is
    named, not discovered as seven failed deploys."""
    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / f"host-port-{port}.lock", "a+") as lock:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    lock.seek(0)
                    raise BedUnavailable(
                        f"another test run on this machine (pid {lock.read().strip() or '?'}) has held the host's "
                        f"port {port} for {wait_s:.0f} s"
                    ) from None
                time.sleep(0.5)
        lock.seek(0)
        lock.truncate()
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        deadline = time.monotonic() + free_wait_s  # an endpoint deleted a moment ago may still be going away
        while listens(port) and time.monotonic() < deadline:
            time.sleep(0.5)
        if listens(port):
            raise BedUnavailable(
                f"the host's port {port} is held by {port_holder(port)}: stop it, local endpoints need it"
            )
        yield


def port_holder(port: int) -> str:
    """`pid N (command)` of the process listening on `port`, as far as this machine lets us see."""
    import psutil

    with contextlib.suppress(psutil.Error):
        for connection in psutil.net_connections(kind="tcp"):
            if connection.status == psutil.CONN_LISTEN and connection.laddr.port == port and connection.pid:
                return f"pid {connection.pid} ({' '.join(psutil.Process(connection.pid).cmdline())[:120]})"
    return "a process this test run cannot see"
