"""`smdiag job NAME` and `smdiag jobs --failed`: managed SageMaker jobs and endpoints, read after the fact
with the user's own AWS credentials (agent.remote.jobs). Read-only; nothing is stored."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

import typer

from agent.cli.base_command import Outcome, execute
from agent.cli.cmdoptions import JsonFlag
from agent.errors import BadInput

if TYPE_CHECKING:
    from agent.settings import Settings

# Library modules are imported inside the commands: start-up time (see agent.cli.commands).

RegionOption = Annotated[
    str | None,
    typer.Option(
        "--region", metavar="REGION", help="AWS region (default: your AWS config's: AWS_REGION, the profile's)."
    ),
]


def job(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The job's or endpoint's name.")],
    processing: Annotated[bool, typer.Option("--processing", help="NAME is a processing job.")] = False,
    transform: Annotated[bool, typer.Option("--transform", help="NAME is a batch transform job.")] = False,
    endpoint: Annotated[bool, typer.Option("--endpoint", help="NAME is an endpoint.")] = False,
    tuning: Annotated[
        bool,
        typer.Option("--tuning", help="NAME is a hyperparameter tuning job (read through its first failed trial)."),
    ] = False,
    logs: Annotated[int, typer.Option("--logs", metavar="LINES", help="Log lines to show of the failing host.")] = 20,
    region: RegionOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Diagnose a managed training job (or processing, transform, tuning job, endpoint) after the fact.

    Reads its Describe (a tuning job's: and its first failed training job's) and every host's CloudWatch logs
    with your AWS credentials, read-only, and names the cause and the fix, as a failed fit() would have.
    Nothing is stored. Exit 0 answered (whatever the job's
    state), 1 not found or AWS unreachable, 2 bad input.
    """
    flags = (("processing", processing), ("transform", transform), ("tuning", tuning), ("endpoint", endpoint))
    chosen = [kind for kind, flag in flags if flag]

    def action(settings: Settings) -> Outcome:
        from agent.failures.store import format_report
        from agent.remote.jobs import diagnose_job

        if len(chosen) > 1:
            raise BadInput(f"--{' and --'.join(chosen)} name different kinds", "give at most one of them")
        if logs < 0:
            raise BadInput(f"--logs {logs} is negative", "give a number of lines, e.g. --logs 50")
        report = diagnose_job(name, chosen[0] if chosen else "training", region, settings).to_dict()
        text = format_report(report, logs) + "(read from AWS now; not stored)"
        return 0, report, text

    execute(ctx, as_json, action)


def jobs(
    ctx: typer.Context,
    failed: Annotated[bool, typer.Option("--failed", help="List the jobs and endpoints that failed.")] = False,
    since: Annotated[str, typer.Option("--since", metavar="DURATION", help="How far back: 90m, 12h, 1d, 7d.")] = "1d",
    region: RegionOption = None,
    as_json: JsonFlag = False,
) -> None:
    """List the region's managed jobs and endpoints that failed recently, one line each with its category.

    Training, processing and transform jobs and endpoints, newest first; each category is read from the
    job's Describe only (`smdiag job NAME` reads its logs too); a kind that could not be listed is a line
    "not read: <kind>: <why>". Exit 0 answered (some kinds may be unread), 1 no kind could be listed (AWS
    unreachable or refusing), 2 bad input.
    """

    def action(settings: Settings) -> Outcome:
        from agent.cli.progress_bars import steps
        from agent.guard.plan import parse_duration
        from agent.remote.jobs import failed_jobs

        if not failed:
            raise BadInput("smdiag jobs lists failed jobs only", "add --failed (e.g. smdiag jobs --failed --since 1d)")
        since_s = parse_duration(since, "--since")
        if since_s <= 0:
            raise BadInput(f"--since {since!r} is no time at all", "write it like 90m, 12h or 7d")
        with steps("jobs") as step:
            lines, unread = failed_jobs(since_s, region, settings, step)
        result = {"since_s": since_s, "classified_from": "Describe only", "jobs": [line.to_dict() for line in lines],
                  "not_read": [kind.to_dict() for kind in unread]}  # fmt: skip
        return 0, result, _failed_text(lines, unread, since)

    execute(ctx, as_json, action)


def _failed_text(lines, unread, since: str) -> str:
    from agent.remote.jobs import plural

    not_read = [f"not read: {plural(kind.resource)}: {kind.why}" for kind in unread]
    if not lines:
        kinds = ("training", "processing", "transform", "endpoint")
        listed = [plural(kind) for kind in kinds if kind not in {entry.resource for entry in unread}]
        none = f"no training, processing or transform job or endpoint failed in the last {since}"
        if unread:
            none = f"none of the {', '.join(listed)} failed in the last {since}"
        return "\n".join([none, *not_read])
    rows = [
        f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime(line.time_epoch or 0))}  {line.resource:10} {line.name:32} "
        f"{line.category:24} {line.summary}"
        for line in lines
    ]
    note = "categories read from each Describe only; `smdiag job NAME` (--processing, --tuning, ...) reads its logs too"
    return "\n".join([*rows, *not_read, note])
