"""The typer app: its own options, the settings resolved once for the command that runs, and the commands."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Annotated

import typer

from agent import __version__
from agent.cli.base_command import PLAIN_HELP, Invocation
from agent.cli.cmdoptions import StateDirOption, VerboseFlag
from agent.cli.commands import bootstrap, diskguard, doctor, failures, fix, health, images, kernels
from agent.errors import BadInput

app = typer.Typer(
    name="smdiag",
    help="Bootstrap and diagnostics for SageMaker notebook instances and local-mode Docker hosts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    **PLAIN_HELP,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"smdiag {__version__}")
        raise typer.Exit()


@app.callback()
def load_settings(
    ctx: typer.Context,
    state_dir: StateDirOption = None,
    verbose: VerboseFlag = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    # Imported when a command runs, not for --help: agent.log loads structlog and rich (start-up time).
    from agent import log
    from agent.settings import Settings

    if state_dir is not None:
        # Every process smdiag starts follows the flag too: the failure recorder that local mode's wrapper
        # runs (`smdiag failures record`) knows the state dir only from its environment.
        os.environ["SMDIAG_STATE_DIR"] = str(state_dir)
    try:
        settings = Settings.load(state_dir=state_dir)
    except BadInput as exc:
        ctx.obj = Invocation(settings=None, settings_error=exc, log_file=None)
        return
    ctx.obj = Invocation(settings, None, log.configure(settings.log_file, verbose=verbose))


# In the order `smdiag --help` lists them.
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

for name, command in COMMANDS.items():
    app.command(name)(command)
for name, group in GROUPS.items():
    app.add_typer(group, name=name)
