"""`smdiag diskguard start`: keep exactly one `diskguard run` going, however often this is called.

Under systemd the guard is a unit that restarts on failure; elsewhere (a container, a host without an
init system) it is a detached process. In both cases the guard's own lock is what makes it single: a
second `run` exits at once, so two racing starts still leave one guard.
"""

from __future__ import annotations

import contextlib
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil

from agent import diskguard, fileops
from agent.errors import Failed
from agent.log import get_logger
from agent.settings import Settings

log = get_logger("guard")

UNIT = "smdiag-diskguard.service"
START_TIMEOUT_S = 20
STOP_TIMEOUT_S = 10
SYSTEMCTL_TIMEOUT_S = 30


def guard_argv(python: str, settings: Settings) -> list[str]:
    """The guard's command line, every setting explicit so that a service manager's bare environment
    runs the same guard."""
    return [
        python, "-m", "agent", "--state-dir", str(settings.state_dir),
        "diskguard", "run", "--docker-host", settings.docker_host,
        "--high", f"{settings.high_pct:g}", "--low", f"{settings.low_pct:g}",
    ]  # fmt: skip


def unit_text(argv: list[str], settings: Settings) -> str:
    """The systemd unit: after docker, restarted on failure, its output in the journal. Pure."""
    return (
        "[Unit]\n"
        "Description=smdiag diskguard: keeps Docker's disk under its high watermark\n"
        "After=docker.service\n"
        "Wants=docker.service\n\n"
        "[Service]\n"
        f"Environment={shlex.quote('SMDIAG_EBS_MOUNT=' + str(settings.ebs_mount))}\n"
        f"ExecStart={shlex.join(argv)}\n"
        "Restart=on-failure\n"
        "RestartSec=10\n\n"
        "[Install]\n"
        "WantedBy=multi-user.target\n"
    )


def systemd_available(settings: Settings) -> bool:
    return settings.systemd_run_dir.is_dir() and shutil.which("systemctl") is not None


def start(settings: Settings, use_systemd: bool | None = None) -> dict:
    """Start the guard unless one of this agent runs; returns how (`systemd`, `detached`), its pid, and
    whether it was already running. A detached guard of an agent since reinstalled is replaced."""
    use_systemd = systemd_available(settings) if use_systemd is None else use_systemd
    argv = guard_argv(sys.executable, settings)
    directory = settings.state_dir / "diskguard"
    running = diskguard.guard_pid(directory)
    changed = False
    if use_systemd:
        changed = _install_unit(settings.systemd_dir / UNIT, unit_text(argv, settings))
        _systemctl("enable", UNIT)
        _systemctl("restart" if changed else "start", UNIT)
    else:
        if running is not None and _interpreter(running) not in (None, sys.executable):
            _stop(running)
            running, changed = None, True
        if running is None:
            _spawn(argv, directory / "guard.out")
    pid = _wait_for_guard(directory)
    result = {
        "manager": "systemd" if use_systemd else "detached",
        "pid": pid,
        "already_running": running == pid and not changed,
        "replaced": changed,
    }
    log.info("guard.started", **result)
    return result


def _interpreter(pid: int) -> str | None:
    with contextlib.suppress(psutil.Error, IndexError):
        return psutil.Process(pid).cmdline()[0]
    return None


def _stop(pid: int) -> None:
    with contextlib.suppress(psutil.Error):
        process = psutil.Process(pid)
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT_S)
        except psutil.TimeoutExpired:
            process.kill()


def _install_unit(path: Path, text: str) -> bool:
    if not fileops.write_if_changed(path, text):
        return False
    _systemctl("daemon-reload")
    return True


def _systemctl(*args: str) -> None:
    done = subprocess.run(["systemctl", *args], capture_output=True, text=True, timeout=SYSTEMCTL_TIMEOUT_S)
    if done.returncode != 0:
        raise Failed(f"systemctl {' '.join(args)} failed: {done.stderr.strip()}", f"see journalctl -u {UNIT}")


def _spawn(argv: list[str], output: Path) -> None:
    """A detached guard: its own session (no hang-up when the caller's terminal or script ends)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    with open(output, "ab") as out:
        subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _wait_for_guard(directory: Path) -> int:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        pid = diskguard.guard_pid(directory)
        if pid is not None:
            return pid
        time.sleep(0.2)
    output = directory / "guard.out"
    tail = ""
    if output.exists():
        tail = (output.read_text(errors="replace").strip().splitlines() or [""])[-1]
    raise Failed(
        f"the guard did not start within {START_TIMEOUT_S}s" + (f": {tail}" if tail else ""),
        f"see {output} and run `smdiag diskguard run` by hand to see why",
    )
