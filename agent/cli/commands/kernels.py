"""`smdiag kernels enable|disable`: the failure wrapper in every notebook Python environment."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from agent.cli.base_command import Outcome, command_group, execute
from agent.cli.cmdoptions import EnvsOption, JsonFlag
from agent.cli.inputs import env_patterns

if TYPE_CHECKING:
    from agent.settings import Settings

# Library modules are imported inside the commands: start-up time (see agent.cli.commands).

kernels_app = command_group(
    "Failure reports in every notebook Python environment (a one-line .pth hook; no packages added)."
)


@kernels_app.command("enable", short_help="Turn failure reports on in every environment's kernels")
def kernels_enable(
    ctx: typer.Context,
    envs: EnvsOption = None,
    agent_python: Annotated[
        Path | None,
        typer.Option(
            "--agent-python", metavar="PYTHON", help="The interpreter that records reports (default: this one)."
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Turn the local-mode wrapper on in each environment's kernels; the hook loads only with the SDK.

    Exit 0 when every environment loads the hook, 1 when one does not, 2 on bad input.
    """

    def action(settings: Settings) -> Outcome:
        from agent.host import kernels

        result = kernels.enable(
            settings.state_dir, env_patterns(envs, settings, True), agent_python or Path(sys.executable)
        )
        return (0 if result["ok"] else 1), result, kernels.format_result(result)

    execute(ctx, as_json, action)


@kernels_app.command("disable", short_help="Turn them off: the hook leaves every environment")
def kernels_disable(ctx: typer.Context, envs: EnvsOption = None, as_json: JsonFlag = False) -> None:
    """Remove the hook from each environment and the hook directory (running kernels pass through). Exit 0."""

    def action(settings: Settings) -> Outcome:
        from agent.host import kernels

        result = kernels.disable(settings.state_dir, env_patterns(envs, settings, False))
        return 0, result, kernels.format_result(result)

    execute(ctx, as_json, action)
