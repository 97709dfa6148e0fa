"""Which Docker Compose the SageMaker SDK v2 will run, decided exactly as the SDK decides it.

SDK v2 runs `docker compose version` and uses `docker compose` only if that succeeds and its output
contains "v2"; otherwise it falls back to a `docker-compose` executable on PATH, and failing that raises
"Docker Compose is not installed". So a compose v5 plugin alone is not recognised. A missing `docker`
CLI is worse: the SDK's call raises FileNotFoundError before any fallback.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import asdict, dataclass

PROBE_TIMEOUT_S = 15


@dataclass(frozen=True)
class ComposeChoice:
    command: list[str] | None
    """What SDK v2 will run (`["docker", "compose"]` or `["docker-compose"]`), None if it will fail."""
    docker_cli: str | None
    plugin_version: str | None
    """The output of `docker compose version`, None when it failed."""
    standalone: str | None
    """Path of a `docker-compose` executable on PATH."""

    def to_dict(self) -> dict:
        return asdict(self)


def choose_compose(docker_cli: str | None, plugin_version: str | None, standalone: str | None) -> ComposeChoice:
    """SDK v2's choice, given what the probes found (pure)."""
    if docker_cli is None:
        command = None
    elif plugin_version and "v2" in plugin_version.strip():
        command = ["docker", "compose"]
    elif standalone:
        command = ["docker-compose"]
    else:
        command = None
    return ComposeChoice(command, docker_cli, plugin_version, standalone)


def probe_compose() -> ComposeChoice:
    docker_cli = shutil.which("docker")
    plugin_version = None
    if docker_cli:
        try:
            done = subprocess.run(
                [docker_cli, "compose", "version"],
                capture_output=True,
                text=True,
                timeout=PROBE_TIMEOUT_S,
            )
            if done.returncode == 0:
                plugin_version = done.stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            pass
    return choose_compose(docker_cli, plugin_version, shutil.which("docker-compose"))
