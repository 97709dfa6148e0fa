"""compose_shim: SageMaker SDK v2 accepts the `docker compose` plugin only when its version says "v2" (a
v5 plugin gets "Docker Compose is not installed"); a `docker-compose` on PATH that hands every call to the
plugin lets it run. Chosen for compose_unrecognised and for doctor's compose check."""

from __future__ import annotations

import contextlib
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from agent import fileops
from agent.errors import Failed
from agent.fix.remedy import Action, Context, Plan, Remedy, Step
from agent.host import compose

SHIM_MARK = "# smdiag compose shim"
SHIM = f"""#!/bin/sh
{SHIM_MARK}: SageMaker SDK v2 accepts the `docker compose` plugin only when its version says "v2";
# this `docker-compose` hands every call to the plugin. Written by `smdiag fix`; `smdiag fix --undo` removes it.
if [ -n "${{SMDIAG_COMPOSE_SHIM:-}}" ]; then
    echo "docker-compose (smdiag shim): \\`docker compose\\` called docker-compose again; not looping" >&2
    exit 1
fi
SMDIAG_COMPOSE_SHIM=1 exec docker compose "$@"
"""
VERIFY_TIMEOUT_S = 30


@dataclass(frozen=True)
class ShimFacts:
    choice: dict
    """agent.host.compose's probe: which Compose SDK v2 would run, the docker CLI, the plugin's version."""
    bin_dir: Path
    existing: str | None
    """What `bin_dir/docker-compose` holds now; None when there is no such file."""
    bin_dir_on_path: bool


class ComposeShim(Remedy[ShimFacts]):
    name = "compose_shim"

    def gather(self, ctx: Context) -> ShimFacts:
        bin_dir = ctx.options.bin_dir
        existing = None
        with contextlib.suppress(FileNotFoundError, IsADirectoryError):
            existing = (bin_dir / "docker-compose").read_text(errors="replace")
        on_path = any(_same_dir(entry, bin_dir) for entry in os.environ.get("PATH", "").split(os.pathsep))
        return ShimFacts(compose.probe_compose().to_dict(), bin_dir, existing, on_path)

    def plan(self, facts: ShimFacts) -> Plan:
        plan = Plan(self.name)
        choice, shim = facts.choice, facts.bin_dir / "docker-compose"
        if choice["docker_cli"] is None:
            plan.blocked = "there is no docker CLI on PATH: install Docker's CLI first"
        elif choice["command"] is not None:
            pass  # SDK v2 finds a Compose it accepts: nothing to do
        elif not choice["plugin_version"]:
            plan.blocked = "there is no Compose plugin (`docker compose version` fails): install Docker Compose"
        elif facts.existing is not None and SHIM_MARK not in facts.existing:
            plan.blocked = f"{shim} exists and is not smdiag's shim: it is left alone"
        elif not facts.bin_dir_on_path:
            plan.blocked = (
                f"{facts.bin_dir} is not on PATH, so SDK v2 would not find a shim there: choose --bin-dir on PATH"
            )
        elif facts.existing != SHIM:
            seen = choice["plugin_version"]
            plan.actions.append(Action("write_shim", str(shim), f"write {shim}: runs `docker compose` ({seen})"))
        return plan

    def act(self, ctx: Context, action: Action, step: Step) -> str:
        path = Path(action.target)
        with contextlib.suppress(FileNotFoundError):
            if SHIM_MARK not in path.read_text(errors="replace"):
                raise Failed(f"{path} appeared meanwhile and is not smdiag's shim: left alone", "look at what wrote it")
        step.will("created", path=str(path), mark=SHIM_MARK)
        fileops.atomic_write(path, SHIM, mode=0o755)
        return f"wrote {path}"

    def verify(self, ctx: Context) -> tuple[bool, str]:
        choice = compose.probe_compose()
        if choice.command is None:
            return False, "SageMaker SDK v2 still finds no Compose it accepts"
        said = " ".join(choice.command)
        try:
            done = subprocess.run(
                [*choice.command, "version"], capture_output=True, text=True, timeout=VERIFY_TIMEOUT_S
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return False, f"`{said} version` failed: {exc}"
        if done.returncode != 0:
            return False, f"`{said} version` exited {done.returncode}: {done.stderr.strip()[-200:]}"
        first = (done.stdout.strip().splitlines() or [""])[0]
        return True, f"SageMaker SDK v2 will run `{said}` ({first})"


def _same_dir(entry: str, directory: Path) -> bool:
    try:
        return bool(entry) and os.path.samefile(entry, directory)
    except OSError:
        return False
