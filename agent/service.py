"""Stopping and starting the Docker service: systemd, SysV `service`, or commands the user names."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors
import requests

from agent.errors import BadInput, Failed
from agent.log import get_logger

log = get_logger("service")

STOP_TIMEOUT_S = 90
START_TIMEOUT_S = 120


@dataclass
class DockerService:
    kind: str
    """systemd, sysv or custom."""
    stop_argv: tuple[str, ...]
    start_argv: tuple[str, ...]
    daemon_seconds: float = 0.0
    """Time spent waiting for dockerd to stop and start: the part of a run that is not ours."""

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

    def stop(self, host: str) -> None:
        """Stop the daemon and wait until its API no longer answers."""
        with self._timed():
            self._stop(host)

    def start(self, host: str) -> None:
        """Start the daemon and wait until its API answers."""
        with self._timed():
            self._start(host)

    def _stop(self, host: str) -> None:
        self._run(self.stop_argv, "stop")
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while answers(host):
            if time.monotonic() > deadline:
                raise Failed(
                    f"the Docker engine still answers {STOP_TIMEOUT_S}s after `{' '.join(self.stop_argv)}`",
                    "check what restarts it (a socket unit?) and pass --stop-cmd",
                )
            time.sleep(0.2)

    def _start(self, host: str) -> None:
        self._run(self.start_argv, "start")
        deadline = time.monotonic() + START_TIMEOUT_S
        while not answers(host):
            if time.monotonic() > deadline:
                raise Failed(
                    f"the Docker engine did not answer within {START_TIMEOUT_S}s of starting it",
                    "read the daemon's log (journalctl -u docker, or /var/log/docker)",
                )
            time.sleep(0.2)

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


def detect_service(stop_cmd: str | None, start_cmd: str | None, systemd_run_dir: Path = Path("/run/systemd/system")):
    """The way to stop and start Docker here: the user's commands, else systemd, else SysV."""
    if stop_cmd or start_cmd:
        if not (stop_cmd and start_cmd):
            raise BadInput("--stop-cmd and --start-cmd go together", "give both, or neither to auto-detect")
        return DockerService("custom", ("sh", "-c", stop_cmd), ("sh", "-c", start_cmd))
    systemctl = shutil.which("systemctl")
    if systemctl and systemd_run_dir.is_dir():
        # Stopping the socket too, or the next CLI call would re-activate the daemon mid-copy.
        return DockerService(
            "systemd",
            (systemctl, "stop", "docker.socket", "docker.service"),
            ("sh", "-c", f"{systemctl} daemon-reload && {systemctl} start docker.socket docker.service"),
        )
    service = shutil.which("service")
    if service:
        return DockerService("sysv", (service, "docker", "stop"), (service, "docker", "start"))
    raise BadInput(
        "cannot tell how to stop and start Docker here (no systemd, no `service` command)",
        "pass --stop-cmd and --start-cmd",
    )


def answers(host: str, timeout: float = 3) -> bool:
    try:
        client = docker.DockerClient(base_url=host, timeout=timeout)
    except docker.errors.DockerException:
        return False
    try:
        return bool(client.ping())
    except (docker.errors.DockerException, requests.RequestException):
        return False
    finally:
        client.close()
