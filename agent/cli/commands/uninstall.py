"""`smdiag uninstall`: remove what smdiag added to this machine; say what it kept and how to undo that."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from agent.cli.base_command import Outcome, execute
from agent.cli.cmdoptions import EnvsOption, JsonFlag, NewPathOption
from agent.cli.inputs import env_patterns

if TYPE_CHECKING:
    from agent.settings import Settings

# Library modules are imported inside the command: start-up time (see agent.cli.commands).


BinDirsOption = NewPathOption(
    "--bin-dir",
    "DIR",
    "Where smdiag's link and shim are (env SMDIAG_BIN_DIR; default /usr/local/bin and ~/.local/bin).",
    absolute=True,
    envvar="SMDIAG_BIN_DIR",
)


def uninstall(
    ctx: typer.Context,
    envs: EnvsOption = None,
    bin_dir: BinDirsOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what it would remove; change nothing.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Remove what smdiag added: the disk guard and its unit, the kernel hooks, the docker-compose shim it
    wrote, the `smdiag` link. Keeps Docker's data-root where it is (and says how to move it back), the
    backups and the state dir with its reports. Safe to re-run; a killed run is put back by the next one.

    Exit 0 when all of it is gone (or nothing was there), 1 when it could not be (then nothing changed).
    """

    def action(settings: Settings) -> Outcome:
        from agent.uninstall import DEFAULT_BIN_DIRS, format_result, run_uninstall

        patterns = env_patterns(envs, settings, none_is_failure=False)
        result = run_uninstall(settings, patterns, [bin_dir] if bin_dir else list(DEFAULT_BIN_DIRS), dry_run)
        return 0, result, format_result(result)

    execute(ctx, as_json, action)
