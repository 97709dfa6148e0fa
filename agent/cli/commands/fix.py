"""`smdiag fix`: repair the cause a failure report names; also how a repair asks first (`doctor --fix`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from agent.cli.base_command import Outcome, execute
from agent.cli.cmdoptions import (
    BinDirOption,
    DockerHostOption,
    JsonFlag,
    StartCmdOption,
    StopCmdOption,
    YesOption,
)
from agent.errors import BadInput

if TYPE_CHECKING:
    from collections.abc import Callable

    from agent.fix.remedy import FixOptions, Plan
    from agent.settings import Settings

# Library modules are imported inside the commands: start-up time (see agent.cli.commands).


def fix(
    ctx: typer.Context,
    report_id: Annotated[
        str | None, typer.Argument(metavar="REPORT_ID", help="A report's id (smdiag failures list).")
    ] = None,
    last: Annotated[bool, typer.Option("--last", help="The newest report (the default).")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what it would do; change nothing.")] = False,
    yes: YesOption = False,
    bin_dir: BinDirOption = None,
    stop_cmd: StopCmdOption = None,
    start_cmd: StartCmdOption = None,
    min_age: Annotated[
        str,
        typer.Option(
            "--min-age", metavar="DURATION", help="For a full disk: never prune images used less than this ago."
        ),
    ] = "10m",
    undo: Annotated[bool, typer.Option("--undo", help="Put back the files the newest fix changed.")] = False,
    docker_host: DockerHostOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Repair the cause a failure report names (default: the newest), then check that it is gone.

    Exit 0 fixed and verified, 1 not fixed, 2 bad input, 3 no automatic remedy (the hint says what to do).
    """

    def action(settings: Settings) -> Outcome:
        from agent.engine import Engine
        from agent.fix.doctor_fix import fix_or_offer
        from agent.fix.history import undo_last
        from agent.fix.text import format_fix, format_undo

        settings = settings.replace(docker_host=docker_host)
        if undo:
            result = undo_last(settings)
            return 0, result, format_undo(result)
        if last and report_id:
            raise BadInput("give a REPORT_ID or --last, not both", "drop one of them")
        options = fix_options(bin_dir, dry_run, yes, stop_cmd, start_cmd, min_age)
        with Engine.for_settings(settings) as engine:
            code, result = fix_or_offer(settings, engine, report_id, options, ask_first(yes))
        return code, result, format_fix(result)

    execute(ctx, as_json, action)


def fix_options(
    bin_dir: Path | None, dry_run: bool, yes: bool, stop_cmd: str | None, start_cmd: str | None, min_age: str
) -> FixOptions:
    """The repair's options from its flags."""
    from agent.fix.remedy import DEFAULT_BIN_DIR, FixOptions

    return FixOptions(bin_dir or DEFAULT_BIN_DIR, dry_run, stop_cmd, start_cmd, min_age)


def ask_first(yes: bool) -> Callable[[Plan], bool]:
    """Asks on the terminal (stderr) before a plan's changes, unless --yes. Asked only when there is something
    to change: a cause with no automatic remedy needs neither a terminal nor --yes to be shown."""

    def confirm(plan: Plan) -> bool:
        if yes:
            return True
        if not sys.stdin.isatty():
            raise BadInput("no terminal to ask before repairing", "pass --yes to repair, or --dry-run to see the plan")
        for step in plan.actions:
            typer.echo(f"  {step.detail}", err=True)
        return typer.confirm(f"{plan.remedy}: go ahead?", err=True)

    return confirm
