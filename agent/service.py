"""Stopping and starting the Docker service: systemd, SysV `service`, or commands the user names."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil

from agent.engine import Engine
from agent.errors import BadInput, Failed
from agent.log import get_logger
from agent.waiting import wait_until

log = get_logger("service")

STOP_TIMEOUT_S = 90
START_TIMEOUT_S = 120
STARTING_GRACE_S = 5
"""How long after the start command returned a dockerd process may take to appear (a fork not yet exec'd)."""
DEFAULT_SOCKET = "/var/run/docker.sock"
BY_ENVIRONMENT = "or set SMDIAG_DOCKER_STOP_CMD and SMDIAG_DOCKER_START_CMD"
"""The flags' other spelling (agent.cli.cmdoptions), the one on-start.sh users set."""


@dataclass
class DockerService:
    kind: str
    """systemd, sysv or custom."""
    stop_argv: tuple[str, ...]
    start_argv: tuple[str, ...]
    engine: Engine
    """The engine this service runs: what stopping and starting wait on."""
    daemon_seconds: float = 0.0
    """Time spent waiting for dockerd to stop and start: the part of a run that is not ours."""
    daemon_log: Path | None = None
    """Where the daemon we stopped wrote its output: where the one we start will too, most likely."""
    downtime_seconds: float = 0.0
    """From each stop to the engine answering again: what users of the engine feel."""
    _stopped_at: float | None = None

    @property
    def is_systemd(self) -> bool:
        return self.kind == "systemd"

    def describe(self) -> str:
        return f"{self.kind}: stop `{' '.join(self.stop_argv)}`, start `{' '.join(self.start_argv)}`"

    @contextlib.contextmanager
    def _timed(self) -> Iterator[None]:
        """Count the time as the daemon's, not the agent's own."""
        started = time.monotonic()
        try:
            yield
        finally:
            self.daemon_seconds += time.monotonic() - started

    def stop(self) -> None:
        """Stop the daemon and wait until it has exited. The engine's client stays: its connection pool
        reconnects to the daemon that answers next."""
        if self._stopped_at is None:
            self._stopped_at = time.monotonic()
        with self._timed():
            self._stop()

    def start(self) -> None:
        """Start the daemon and wait until its API answers."""
        with self._timed():
            self._start()
        if self._stopped_at is not None:
            self.downtime_seconds += time.monotonic() - self._stopped_at
            self._stopped_at = None

    def _stop(self) -> None:
        host = self.engine.host
        for proc in daemon_processes(host):
            self.daemon_log = _output_file(proc) or self.daemon_log
        self._run(self.stop_argv, "stop")
        # The API closes first; the daemon goes on stopping containers and writing its root until it exits.
        if not wait_until(lambda: not (self.engine.answers() or daemon_processes(host)), STOP_TIMEOUT_S):
            raise Failed(
                f"the Docker engine is still running {STOP_TIMEOUT_S}s after `{' '.join(self.stop_argv)}`",
                f"check what restarts it (a socket unit?) and pass --stop-cmd ({BY_ENVIRONMENT})",
            )

    def _start(self) -> None:
        host = self.engine.host
        launched = time.time()
        self._run(self.start_argv, "start")
        returned = time.monotonic()
        logs: dict[int, Path | None] = {}  # the daemons seen starting, and where each writes its output

        def up() -> bool:
            """The API answers; Failed at once when no daemon is left starting."""
            if self.engine.answers():
                return True
            starting = [p for p in daemon_processes(host) if _created(p) >= launched - 1]
            for proc in starting:
                logs.setdefault(proc.pid, _output_file(proc))
            if not starting and (logs or time.monotonic() - returned > STARTING_GRACE_S):
                raise Failed(
                    f"the Docker engine exited right after `{' '.join(self.start_argv)}`"
                    + _last_lines([self.daemon_log, *logs.values()], self.is_systemd),
                    "read the daemon's log (journalctl -u docker, or /var/log/docker); a daemon.json key that is "
                    "also a command-line flag, or a data-root it cannot use, stops it at start",
                )
            return False

        if not wait_until(up, START_TIMEOUT_S):
            raise Failed(
                f"the Docker engine did not answer within {START_TIMEOUT_S}s of starting it",
                "read the daemon's log (journalctl -u docker, or /var/log/docker)",
            )

    def _run(self, argv: tuple[str, ...], verb: str) -> None:
        log.info(f"service.{verb}", argv=list(argv))
        # Output goes to a file, not a pipe: a daemon started in the background would hold a pipe open.
        with tempfile.TemporaryFile("w+") as output:
            done = subprocess.run(argv, stdout=output, stderr=subprocess.STDOUT, timeout=STOP_TIMEOUT_S)
            output.seek(0)
            detail = output.read().strip().splitlines()
        if done.returncode != 0:
            raise Failed(
                f"`{' '.join(argv)}` exited with {done.returncode}" + (f": {detail[-1]}" if detail else ""),
                "read the daemon's log (journalctl -u docker, or /var/log/docker)",
            )


def detect_service(stop_cmd: str | None, start_cmd: str | None, systemd_run_dir: Path, engine: Engine) -> DockerService:
    """The way to stop and start Docker here: the user's commands, else systemd, else SysV."""
    if stop_cmd or start_cmd:
        if not (stop_cmd and start_cmd):
            raise BadInput(
                "--stop-cmd and --start-cmd (SMDIAG_DOCKER_STOP_CMD and SMDIAG_DOCKER_START_CMD) go together",
                "give both, or neither to auto-detect",
            )
        return DockerService("custom", ("sh", "-c", stop_cmd), ("sh", "-c", start_cmd), engine)
    systemctl = shutil.which("systemctl")
    if systemctl and systemd_run_dir.is_dir():
        # Stopping the socket too, or the next CLI call would re-activate the daemon mid-copy.
        return DockerService(
            "systemd",
            (systemctl, "stop", "docker.socket", "docker.service"),
            ("sh", "-c", f"{systemctl} daemon-reload && {systemctl} start docker.socket docker.service"),
            engine,
        )
    service = shutil.which("service")
    if service:
        return DockerService("sysv", (service, "docker", "stop"), (service, "docker", "start"), engine)
    raise BadInput(
        "cannot tell how to stop and start Docker here (no systemd, no `service` command)",
        f"pass --stop-cmd and --start-cmd ({BY_ENVIRONMENT})",
    )


def daemon_processes(host: str) -> list[psutil.Process]:
    """The dockerd processes that may serve `host`: on the default socket every dockerd; elsewhere those
    naming its socket on their command line, and those naming no host at all (set in daemon.json), but
    never one that names another host (another engine on this machine)."""
    socket = host.removeprefix("unix://") if host.startswith("unix://") else None
    found = []
    for proc in psutil.process_iter(["name", "cmdline", "status"]):
        if proc.info["name"] != "dockerd" or proc.info["status"] == psutil.STATUS_ZOMBIE:  # exited, not reaped
            continue
        args = proc.info["cmdline"] or []
        names_a_host = any(a in ("-H", "--host") or a.startswith(("-H=", "--host=", "-Hunix", "-Htcp")) for a in args)
        if socket == DEFAULT_SOCKET or not names_a_host or (socket and any(socket in a for a in args)):
            found.append(proc)
    return found


def _created(proc: psutil.Process) -> float:
    try:
        return proc.create_time()
    except psutil.Error:
        return 0.0


def _output_file(proc: psutil.Process) -> Path | None:
    """The regular file a daemon writes its log to (a service script's redirect), if any."""
    with contextlib.suppress(OSError):
        target = Path(os.readlink(f"/proc/{proc.pid}/fd/2"))
        if target.is_file():
            return target
    return None


def _last_lines(files: list[Path | None], systemd: bool, count: int = 3) -> str:
    """The daemon's last words, from its log file (the newest daemon's we know of) or the journal: usually
    the reason it stopped."""
    lines: list[str] = []
    for path in [f for f in files if f][-1:]:
        with contextlib.suppress(OSError):
            lines = path.read_text(errors="replace").strip().splitlines()[-count:]
    if not lines and systemd and shutil.which("journalctl"):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            done = subprocess.run(
                ["journalctl", "-u", "docker.service", "-n", str(count), "--no-pager", "-o", "cat"],
                capture_output=True, text=True, timeout=10,
            )  # fmt: skip
            lines = done.stdout.strip().splitlines()
    return ("; its last log lines: " + " | ".join(line.strip() for line in lines)) if lines else ""
