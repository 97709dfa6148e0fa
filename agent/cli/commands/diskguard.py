"""`smdiag diskguard once|run|status|make-room|start|stop`: keep Docker's disk under a threshold."""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING, Annotated

import typer

from agent.cli.base_command import Outcome, command_group, execute
from agent.cli.cmdoptions import (
    ContainerAgeOption,
    DockerHostOption,
    HighOption,
    JsonFlag,
    KeepOption,
    LowOption,
    MinAgeOption,
    PathOption,
)
from agent.errors import BadInput

if TYPE_CHECKING:
    from agent.diskguard import Policy
    from agent.settings import Settings

# Library modules are imported inside the commands: start-up time (see agent.cli.commands).

diskguard_app = command_group(
    "Keep Docker's disk under a threshold: prune least recently used images, never what is in use."
)


def _policy(
    settings: Settings,
    high: float | None,
    low: float | None,
    keep: list[str] | None,
    min_age: str,
    container_max_age: str,
) -> Policy:
    from agent.diskguard import Policy

    return Policy.build(
        settings.high_pct if high is None else high,
        settings.low_pct if low is None else low,
        keep or [],
        min_age,
        container_max_age,
    )


@diskguard_app.command("once", short_help="Prune once, to the low watermark when over the high one")
def diskguard_once(
    ctx: typer.Context,
    path: PathOption = None,
    high: HighOption = None,
    low: LowOption = None,
    keep: KeepOption = None,
    min_age: MinAgeOption = "10m",
    container_max_age: ContainerAgeOption = "24h",
    docker_host: DockerHostOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print what would be removed; remove nothing.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Prune once: above the high watermark, remove until at the low one.

    Exit 0 when at or under high at the end, 1 when not (it says what holds the space), 2 on bad input.
    --dry-run forecasts the end state from the images' sizes and exits as the real run would.
    """

    def action(settings: Settings) -> Outcome:
        from agent.diskguard import format_outcome, run_once
        from agent.engine import Engine

        policy = _policy(settings, high, low, keep, min_age, container_max_age)
        settings = settings.replace(docker_host=docker_host)
        with Engine.for_settings(settings) as engine:
            outcome = run_once(settings, engine, policy, path, dry_run)
        code = 0 if outcome.after_pct <= policy.high else 1  # a dry run exits as the real run would
        return code, outcome.to_dict(), format_outcome(outcome)

    execute(ctx, as_json, action)


@diskguard_app.command("run", short_help="Guard continuously (what `start` runs)")
def diskguard_run(
    ctx: typer.Context,
    path: PathOption = None,
    high: HighOption = None,
    low: LowOption = None,
    keep: KeepOption = None,
    min_age: MinAgeOption = "10m",
    container_max_age: ContainerAgeOption = "24h",
    docker_host: DockerHostOption = None,
    interval: Annotated[
        float, typer.Option("--interval", metavar="SECONDS", help="Seconds between checks without events.")
    ] = 60,
    as_json: JsonFlag = False,
) -> None:
    """Guard continuously: react to pulls and container starts, check every --interval seconds.

    Stops cleanly on SIGTERM (exit 0); exit 1 when another guard already runs.
    """

    def action(settings: Settings) -> Outcome:
        from agent.engine import Engine
        from agent.guard.daemon import Guard

        if interval <= 0:
            raise BadInput(f"--interval {interval:g} is not positive", "give a number of seconds, e.g. 60")
        policy = _policy(settings, high, low, keep, min_age, container_max_age)
        settings = settings.replace(docker_host=docker_host)
        with Engine.for_settings(settings) as engine:
            guard = Guard(settings, engine, policy, path, interval)
            signal.signal(signal.SIGTERM, guard.shutdown)
            signal.signal(signal.SIGINT, guard.shutdown)
            guard.serve()
        return 0, {"stopped": True}, "diskguard: stopped"

    execute(ctx, as_json, action)


@diskguard_app.command("status", short_help="Show the disk's use now and what the guard last did")
def diskguard_status(ctx: typer.Context, docker_host: DockerHostOption = None, as_json: JsonFlag = False) -> None:
    """Show what diskguard watches, measured now: the disk holding the engine's data-root, or on a Studio
    space the engine's own accounting (docker system df) against the home volume's size; beside it whether
    the guard runs and follows the engine's events, and its last check.

    Exit 0, or 1 when that usage is over the high watermark or the engine does not answer.
    """

    def action(settings: Settings) -> Outcome:
        from agent.engine import Engine
        from agent.guard.daemon import STATUS_TIMEOUT_S, format_status, status

        settings = settings.replace(docker_host=docker_host)
        with Engine.for_settings(settings, timeout=STATUS_TIMEOUT_S) as engine:
            report = status(settings, engine)
        ok = report["error"] is None and report["used_pct"] <= settings.high_pct
        return (0 if ok else 1), report, format_status(report)

    execute(ctx, as_json, action)


@diskguard_app.command("make-room", short_help="Free the room an image needs before pulling it")
def diskguard_make_room(
    ctx: typer.Context,
    image: Annotated[
        str, typer.Option("--for", metavar="IMAGE", help="The image about to be pulled (REGISTRY/REPO:TAG).")
    ],
    path: PathOption = None,
    keep: KeepOption = None,
    min_age: MinAgeOption = "10m",
    container_max_age: ContainerAgeOption = "24h",
    docker_host: DockerHostOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Before a pull: read the image's size from its registry and free that much room (plus a margin).

    Exit 0 when the room is there, 1 when it cannot be made (then nothing is removed), 2 on bad input.
    """

    def action(settings: Settings) -> Outcome:
        from agent.diskguard import format_make_room, make_room
        from agent.engine import Engine

        policy = _policy(settings, None, None, keep, min_age, container_max_age)
        settings = settings.replace(docker_host=docker_host)
        with Engine.for_settings(settings) as engine:
            result = make_room(settings, engine, policy, image, path)
        return (0 if result["ok"] else 1), result, format_make_room(result)

    execute(ctx, as_json, action)


@diskguard_app.command("start", short_help="Start the guard (a systemd unit where systemd runs)")
def diskguard_start(
    ctx: typer.Context,
    docker_host: DockerHostOption = None,
    systemd: Annotated[
        bool | None,
        typer.Option("--systemd/--no-systemd", help="Run as a systemd unit (default: when systemd runs)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Make sure exactly one `diskguard run` is active: a systemd unit (restarted on failure) where systemd
    runs, else a detached process. Safe to call at every boot.

    Exit 0 when the guard runs, 1 when it could not be started.
    """

    def action(settings: Settings) -> Outcome:
        from agent.guard.daemon import start

        result = start(settings.replace(docker_host=docker_host), systemd)
        how = "already running" if result["already_running"] else "started"
        return 0, result, f"diskguard {how} (pid {result['pid']}, {result['manager']})"

    execute(ctx, as_json, action)


@diskguard_app.command("stop", short_help="Stop the guard (its systemd unit too)")
def diskguard_stop(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Stop the guard: its systemd unit is stopped and disabled (no boot starts it), a detached guard is
    terminated. Images are no longer pruned until `smdiag diskguard start`. Safe to re-run.

    Exit 0 when no guard runs any more, 1 when one could not be stopped.
    """

    def action(settings: Settings) -> Outcome:
        from agent.guard.daemon import format_stop, stop

        result = stop(settings)
        return 0, result, format_stop(result)

    execute(ctx, as_json, action)
