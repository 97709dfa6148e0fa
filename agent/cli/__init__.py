"""The `smdiag` command line, laid out as pip's `_internal/cli`: thin typer functions over the library.

- `main`: the console script (`agent.cli.main:run`); usage errors are one line too, the app's own flags go anywhere.
- `app`: the typer app and its callback, which resolves the settings once for the command that runs.
- `base_command`: the one error path. Each command returns (exit code, result, text); a library error
  becomes one line on stderr and exit 1 or 2, never a traceback; an unexpected one's traceback goes to
  the log file only.
- `cmdoptions`: the options several commands take, each declared once.
- `progress_bars`: what a long command shows on stderr while it works.
- `inputs`: the checks of the command line's own values, before any work (the library's are agent.inputs).
- `commands/`: one module per command group; `commands/__init__.py` lists them in `--help`'s order.

Each command calls the library inside its body, so that start-up (`--help`, `last-failure`) stays light.
"""
