"""Checks of the command line's own values, made before any work: each refusal names the problem and the
fix, as a BadInput (exit 2), or a Failed (exit 1) when the configuration rather than the command line is
at fault. Nothing has been changed by then.

The checks the library makes too (a writable path, an installed package or SDK) are in agent.inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from agent.errors import BadInput, Failed

if TYPE_CHECKING:
    from agent.settings import Settings

# Library modules are imported inside the checks: start-up time (see agent.cli.commands).


def chosen_frameworks(given: str) -> list[str]:
    """The frameworks a `--framework all|NAME[,NAME...]` names."""
    from agent.frameworks import FRAMEWORKS

    chosen = list(FRAMEWORKS) if given == "all" else [f.strip() for f in given.split(",")]
    unknown = [f for f in chosen if f not in FRAMEWORKS]
    if unknown or not chosen:
        raise BadInput(f"unknown framework {', '.join(unknown)!r}", "use all, tensorflow, pytorch or sklearn")
    return chosen


def env_patterns(envs: list[str] | None, settings: Settings, none_is_failure: bool) -> list[str]:
    """The environment globs to act on. A given --envs that matches no environment is bad input (exit 2);
    the configured globs matching none is a failure (exit 1) when `none_is_failure`."""
    from agent.host import kernels

    patterns = envs or list(settings.conda_envs)
    if kernels.environments(patterns):
        return patterns
    if envs:
        raise BadInput(
            f"--envs {' '.join(envs)} matches no Python environment (a directory with bin/python)",
            "check the glob, e.g. --envs '/home/ec2-user/anaconda3/envs/*'",
        )
    if none_is_failure:
        raise Failed(
            f"no Python environment matches {' '.join(patterns)} (SMDIAG_CONDA_ENVS or the notebook default)",
            "set SMDIAG_CONDA_ENVS, or pass --envs GLOB",
        )
    return patterns


def new_path_callback(
    absolute: bool = False,
) -> Callable[[typer.Context, typer.CallbackParam, Path | None], Path | None]:
    """The callback of every option naming a path smdiag writes or makes (agent.cli.cmdoptions.NewPathOption):
    agent.inputs.new_path's rule (its directory must exist), and with `absolute` a full path.

    A refusal takes the path bad settings take (agent.cli.base_command.Invocation): the command reports it,
    in one line or as JSON, before any work."""

    def check(ctx: typer.Context, param: typer.CallbackParam, value: Path | None) -> Path | None:
        from agent.inputs import new_path

        if value is None:
            return None
        flag = param.opts[0]
        try:
            if absolute and not value.is_absolute():
                raise BadInput(f"{flag} {value} is not an absolute path", "give the full path, from /")
            new_path(value, flag)
        except BadInput as exc:
            if ctx.obj.settings_error is None:  # set by the app's callback, which runs before this
                ctx.obj = ctx.obj._replace(settings=None, settings_error=exc)
        return value

    return check
