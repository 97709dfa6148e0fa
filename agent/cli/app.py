"""The typer app: its own options, the settings resolved once for the command that runs, and the commands."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Annotated

import typer
from typer.core import TyperGroup

from agent import __version__
from agent.cli.base_command import PLAIN_HELP, Invocation
from agent.cli.cmdoptions import StateDirOption, VerboseFlag
from agent.cli.commands import bootstrap, diskguard, doctor, failures, fix, health, images, jobs, kernels, uninstall
from agent.errors import BadInput

START_HERE = "start here: smdiag doctor"


class OneLineHelp(TyperGroup):
    """A group whose `--help` lists each command on the line it was given (`short_help`), else with its help's
    first sentence whole: click would cut it mid-phrase at 45 characters. Plain text: typer's rich panels
    would need rich markup (see PLAIN_HELP)."""

    sections: dict[str, list[str]] = {}
    """Heading -> command names, in order; empty: one "Commands" section."""

    def format_commands(self, ctx, formatter) -> None:
        sections = self.sections or {"Commands": self.list_commands(ctx)}
        for heading, names in sections.items():
            with formatter.section(heading):
                formatter.write_dl([(name, first_sentence(self.commands[name])) for name in names])


class SmdiagHelp(OneLineHelp):
    """`smdiag --help`: the commands by what a user does with them, ending with where to start."""

    sections = {
        "Daily use": ["doctor", "last-failure", "fix", "failures", "kernels", "paths"],
        "Managed jobs": ["job", "jobs"],
        "Setup, as root": ["bootstrap", "diskguard", "uninstall"],
        "Smoke tests": ["health", "data", "images"],
    }

    def format_epilog(self, ctx, formatter) -> None:
        formatter.write_paragraph()
        formatter.write_text(START_HERE)


def first_sentence(command) -> str:
    """A command's line in its group's `--help`: its short help, else the first sentence of its help, whole."""
    if command.short_help:
        return command.short_help
    paragraph = " ".join((command.help or "").strip().split("\n\n")[0].split())
    return re.split(r"(?<=\.)\s", paragraph, maxsplit=1)[0].removesuffix(".")


app = typer.Typer(
    name="smdiag",
    cls=SmdiagHelp,
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
    # Imported when a command runs, not for --help (start-up time; agent.log loads structlog at its first event).
    from agent import log
    from agent.settings import Settings

    try:
        if state_dir is not None:
            from agent.inputs import new_path  # only with the flag: it loads the SDK lookup (start-up time)

            new_path(state_dir, "--state-dir")  # the rule of every path option
            # Every process smdiag starts follows the flag too: the failure recorder that local mode's wrapper
            # runs (`smdiag failures record`) knows the state dir only from its environment.
            os.environ["SMDIAG_STATE_DIR"] = str(state_dir)
        settings = Settings.load(state_dir=state_dir)
    except BadInput as exc:
        ctx.obj = Invocation(settings=None, settings_error=exc, log_file=None)
        return
    ctx.obj = Invocation(settings, None, log.configure(settings.log_file, verbose=verbose))


# Each command with its line in `smdiag --help` (SmdiagHelp.sections orders them).
COMMANDS: dict[str, tuple[Callable[..., None], str]] = {
    "doctor": (doctor.doctor, "Check this host for local mode; each problem with its fix"),
    "paths": (doctor.paths, "Print where smdiag keeps its state"),
    "fix": (fix.fix, "Repair what the newest failure report names"),
    "bootstrap": (bootstrap.bootstrap, "Move Docker's data-root onto the EBS volume"),
    "last-failure": (failures.last_failure, "Show the newest failure report: its cause and fix"),
    "health": (health.health, "Train, deploy and test three small models"),
    "uninstall": (uninstall.uninstall, "Remove what smdiag added (try --dry-run first)"),
    "job": (jobs.job, "Diagnose a managed job or endpoint after the fact (from AWS)"),
    "jobs": (jobs.jobs, "List the region's recently failed managed jobs (--failed)"),
}
GROUPS: dict[str, tuple[typer.Typer, str]] = {
    "failures": (failures.failures_app, "List the stored failure reports"),
    "data": (health.data_app, "Generate or upload the smoke tests' dataset"),
    "diskguard": (diskguard.diskguard_app, "Keep Docker's disk from filling: start, stop, status"),
    "images": (images.images_app, "Build local mode's framework images, offline"),
    "kernels": (kernels.kernels_app, "Turn failure reports on or off in notebook kernels"),
}

for name, (command, line) in COMMANDS.items():
    app.command(name, short_help=line)(command)
for name, (group, line) in GROUPS.items():
    app.add_typer(group, name=name, short_help=line, cls=OneLineHelp)
