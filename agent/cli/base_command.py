"""The one error path every command goes through: its outcome becomes output and an exit code.

A command's body returns (exit code, JSON-able result, text for people). A library error (SmdiagError)
becomes one line on stderr, with --json also the error as JSON on stdout, and its exit code (1 failed,
2 bad input), never a traceback; an unexpected error's traceback goes to the log file only.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import typer

from agent.errors import BadInput, SmdiagError

if TYPE_CHECKING:
    from agent.redact import Redactor
    from agent.settings import Settings

# agent.log and agent.redact are imported where they are used: `--help` needs neither (start-up time).

Outcome = tuple[int, Any, str]
"""What a command's body returns: exit code, JSON-able result, text for people."""

PLAIN_HELP = {"rich_markup_mode": None}
"""Plain help text: rich markup would swallow bracketed text such as `[default: 85]`, and show flags as `<bool>`."""


def command_group(summary: str) -> typer.Typer:
    """A group of subcommands (`smdiag diskguard ...`) that shows its help when given none."""
    return typer.Typer(help=summary, no_args_is_help=True, **PLAIN_HELP)


class Invocation(NamedTuple):
    """What the app's callback resolved for the command that runs."""

    settings: Settings | None
    settings_error: BadInput | None
    """Bad settings are reported by the command, which knows whether to answer in JSON."""
    log_file: Path | None


def execute(ctx: typer.Context, as_json: bool, action: Callable[[Settings], Outcome]) -> None:
    """Run a command body with the resolved settings and turn its outcome into output and an exit code."""
    invocation: Invocation = ctx.obj
    try:
        if invocation.settings_error:
            raise invocation.settings_error
        # stdout carries the result alone: what libraries print meanwhile (the SageMaker SDK's log lines,
        # the containers' output it streams) goes to stderr.
        with contextlib.redirect_stdout(sys.stderr):
            code, result, text = action(invocation.settings)
    except SmdiagError as exc:
        _fail(exc.one_line(), exc.exit_code, as_json, {"problem": exc.problem, "fix": exc.fix})
    except Exception as exc:  # noqa: BLE001 - the one place unexpected errors become a line, not a traceback
        from agent.log import get_logger

        get_logger("cli").exception("command.crashed", command=ctx.info_name)
        if invocation.log_file:
            where = f"the traceback is in {invocation.log_file}"
        else:
            where = "no traceback kept: the state directory is not writable"
        problem = f"internal error: {type(exc).__name__}: {exc}"
        _fail(f"{problem} ({where})", 1, as_json, {"problem": problem, "fix": where})
    redactor = _redactor()
    if as_json:
        typer.echo(json.dumps(redactor.value(result), indent=2, default=str))
    else:
        typer.echo(redactor.text(text))
    raise typer.Exit(code)


def _fail(line: str, code: int, as_json: bool, fields: dict) -> None:
    print_error(line, code, as_json, fields)
    raise typer.Exit(code)


def print_error(line: str, code: int, as_json: bool, fields: dict) -> None:
    """The one error line on stderr; with --json also the error as JSON on stdout."""
    redactor = _redactor()
    if as_json:
        typer.echo(json.dumps(redactor.value({"ok": False, "exit_code": code, **fields})))
    typer.echo(f"smdiag: {redactor.text(line)}", err=True)


def _redactor() -> Redactor:
    """What masks secrets in everything smdiag prints."""
    from agent.redact import process_redactor

    return process_redactor()
