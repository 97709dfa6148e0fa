"""`smdiag last-failure` and `smdiag failures list|record`: the stored local-mode failure reports."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from agent.cli.base_command import Outcome, command_group, execute
from agent.cli.cmdoptions import JsonFlag
from agent.errors import BadInput

if TYPE_CHECKING:
    from agent.settings import Settings

# Library modules are imported inside the commands: start-up time (see agent.cli.commands).


def last_failure(
    ctx: typer.Context,
    logs: Annotated[
        int, typer.Option("--logs", metavar="LINES", help="Container log lines to show per container.")
    ] = 20,
    as_json: JsonFlag = False,
) -> None:
    """Show the newest local-mode failure report: category, summary, hint, evidence.

    Exit 0 when one exists, 1 when none was recorded.
    """

    def action(settings: Settings) -> Outcome:
        from agent.failures.store import format_report, last_report

        if logs < 0:
            raise BadInput(f"--logs {logs} is negative", "give a number of lines, e.g. --logs 50")
        path, report = last_report(settings.state_dir)
        return 0, {**report, "path": str(path)}, f"report {path}\n" + format_report(report, logs)

    execute(ctx, as_json, action)


failures_app = command_group("Stored local-mode failure reports.")


@failures_app.command("list")
def failures_list(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """List the stored failure reports, newest first. Exit 0."""

    def action(settings: Settings) -> Outcome:
        from agent.failures.store import TURN_REPORTS_ON, list_reports

        reports = list_reports(settings.state_dir)
        lines = [f"{r['time']}  {r['call'] or '?':7} {r['category']:20} {r['summary']}" for r in reports]
        return 0, reports, "\n".join(lines) if lines else f"no failures recorded; {TURN_REPORTS_ON}"

    execute(ctx, as_json, action)


@failures_app.command("record")
def failures_record(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Gather the evidence of a failure the wrapper captured (JSON on stdin) and store its report.

    The wrapper in a user's kernel calls this; exit 0 when stored, 2 when stdin is not a capture.
    """

    def action(settings: Settings) -> Outcome:
        from agent.failures import record

        fields = record.record(sys.stdin.read(), settings)
        return 0, fields, f"report {fields['path']}: {fields['category']}: {fields['summary']}"

    execute(ctx, as_json, action)
