"""The console script `smdiag` (and `python -m agent`): the app, with usage errors in one line too."""

from __future__ import annotations

import sys

import typer

from agent.cli.app import app
from agent.cli.base_command import print_error
from agent.cli.cmdoptions import GLOBAL_FLAGS

try:  # typer 0.29 and later carry their own copy of click; earlier ones use click itself
    from typer._click import exceptions as click_errors
except ImportError:
    from click import exceptions as click_errors


def run() -> None:
    """Console-script entry point. Usage errors are one line too, and JSON on stdout with --json; exit 2."""
    args = _global_flags_first(sys.argv[1:])
    try:
        code = typer.main.get_command(app).main(args, prog_name="smdiag", standalone_mode=False)
    except click_errors.NoArgsIsHelpError as exc:
        typer.echo(exc.ctx.get_help())
        code = exc.exit_code
    except click_errors.ClickException as exc:
        context = getattr(exc, "ctx", None)
        fix = f"see `{context.command_path if context else 'smdiag'} --help`"
        problem = exc.format_message()
        print_error(f"{problem} (fix: {fix})", exc.exit_code, "--json" in args, {"problem": problem, "fix": fix})
        code = exc.exit_code
    except typer.Abort:
        typer.echo("smdiag: interrupted", err=True)
        code = 130
    sys.exit(code or 0)


def _global_flags_first(args: list[str]) -> list[str]:
    """Move the app's own flags (GLOBAL_FLAGS) before the subcommand, wherever they were given."""
    end = args.index("--") if "--" in args else len(args)
    flags = [a for a in args[:end] if a in GLOBAL_FLAGS]
    return flags + [a for a in args[:end] if a not in GLOBAL_FLAGS] + args[end:]
