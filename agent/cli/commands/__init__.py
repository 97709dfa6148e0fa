"""The commands, one module per group, in the order `smdiag --help` lists them (as pip's commands_dict).

Every command module loads for `--help` and for `last-failure`, which must stay light (no SDK, docker-py,
psutil or framework) whatever the library grows to import: so each command imports the library modules it
calls inside its body, and a module's top holds only typer, agent.errors and agent.cli's own parts.
"""

from __future__ import annotations

from collections.abc import Callable

import typer

from agent.cli.commands import bootstrap, diskguard, doctor, failures, fix, health, images, kernels

COMMANDS: dict[str, Callable[..., None]] = {
    "doctor": doctor.doctor,
    "paths": doctor.paths,
    "fix": fix.fix,
    "bootstrap": bootstrap.bootstrap,
    "last-failure": failures.last_failure,
    "health": health.health,
}
GROUPS: dict[str, typer.Typer] = {
    "failures": failures.failures_app,
    "data": health.data_app,
    "diskguard": diskguard.diskguard_app,
    "images": images.images_app,
    "kernels": kernels.kernels_app,
}
