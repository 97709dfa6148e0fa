"""`smdiag bootstrap`: move Docker's data-root onto the EBS volume, or re-point Docker at it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from agent.cli.base_command import Outcome, execute
from agent.cli.cmdoptions import DockerHostOption, JsonFlag, NewPathOption, StartCmdOption, StopCmdOption
from agent.cli.progress_bars import progress_bar
from agent.errors import BadInput

if TYPE_CHECKING:
    from agent.settings import Settings

# Library modules are imported inside the commands: start-up time (see agent.cli.commands).


TargetOption = NewPathOption("--target", "DIR", "Where the data-root goes (default <EBS mount>/docker).", absolute=True)
DaemonConfigOption = NewPathOption(
    "--daemon-config", "FILE", "dockerd's daemon.json (env SMDIAG_DOCKER_CONFIG; default /etc/docker/daemon.json)."
)
SysconfigOption = NewPathOption(
    "--sysconfig", "FILE", "Amazon Linux OPTIONS file (env SMDIAG_SYSCONFIG; default /etc/sysconfig/docker)."
)


def bootstrap(
    ctx: typer.Context,
    target: TargetOption = None,
    daemon_config: DaemonConfigOption = None,
    sysconfig: SysconfigOption = None,
    docker_host: DockerHostOption = None,
    stop_cmd: StopCmdOption = None,
    start_cmd: StartCmdOption = None,
    reclaim: Annotated[bool, typer.Option("--reclaim", help="Delete the old data-root after a verified move.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan; change nothing.")] = False,
    no_live_copy: Annotated[
        bool,
        typer.Option(
            "--no-live-copy", help="Stop Docker for the whole first copy (by default it runs during a first pass)."
        ),
    ] = False,
    finish: Annotated[
        str | None,
        typer.Option(
            "--finish",
            metavar="forward|back",
            help="End an interrupted move that left data in both trees: forward (use the new root) or back.",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Move Docker's data-root onto the EBS volume (first time), or re-point Docker at it (later boots).

    Exit 0 when done (or nothing to do), 1 when it failed and was rolled back, 2 on bad input.
    """

    def action(settings: Settings) -> Outcome:
        from agent import platform
        from agent.bootstrap import Options, format_result, run_bootstrap
        from agent.engine import Engine
        from agent.host import studio

        if finish not in (None, "forward", "back"):
            raise BadInput(f"--finish {finish!r} is neither forward nor back", "use --finish forward or --finish back")
        options = Options(target, stop_cmd, start_cmd, reclaim, dry_run, finish, live_copy=not no_live_copy)
        settings = settings.replace(docker_host=docker_host, daemon_config=daemon_config, sysconfig=sysconfig)
        if (found := platform.detect(settings)).kind == platform.STUDIO:
            result = studio.bootstrap_result(found)
            return 0, result, result["why"]
        with Engine.for_settings(settings) as engine:
            with progress_bar("copying the data-root", enabled=not as_json) as progress:
                result = run_bootstrap(settings, engine, options, progress)
        return 0, result, format_result(result)

    execute(ctx, as_json, action)
