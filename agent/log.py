"""Logging: JSON lines to `<state>/logs/agent.log` (readable lines on stderr with --verbose), secrets masked.

smdiag also runs inside users' notebook kernels, so it never touches structlog's global configuration
or the root logger: its loggers are wrapped stdlib loggers under "smdiag", silent until `configure()`.

structlog is imported on the first event logged, not before: with the rich it loads, it costs more CPU
than the commands that log nothing (`last-failure`, `failures list`) spend on their work. So a module's
`log = get_logger(...)` and the app's `configure()` import nothing, and the handlers' formatters are
structlog's once they format their first record.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.redact import process_redactor

if TYPE_CHECKING:
    from types import ModuleType

    import structlog

_ROOT = logging.getLogger("smdiag")
_ROOT.addHandler(logging.NullHandler())
_ROOT.propagate = False


def _redact(_logger: object, _method: str, event_dict: dict) -> dict:
    return process_redactor().value(event_dict)  # type: ignore[return-value]


class Logger:
    """A structlog BoundLogger under "smdiag.<name>", made on its first call (info, exception, bind...)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(_bound_logger(self.name), attribute)


def get_logger(name: str) -> Logger:
    return Logger(name)


@functools.cache
def _bound_logger(name: str) -> structlog.stdlib.BoundLogger:
    import structlog  # on the first event: see the module's docstring

    return structlog.wrap_logger(
        logging.getLogger(f"smdiag.{name}"),
        processors=[
            structlog.stdlib.filter_by_level,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _redact,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        wrapper_class=structlog.stdlib.BoundLogger,
    )


class _EventFormatter(logging.Formatter):
    """structlog's ProcessorFormatter ending in `renderer(structlog)`, built on the first record."""

    def __init__(self, renderer: Callable[[ModuleType], Any]) -> None:
        super().__init__()
        self._renderer = renderer
        self._formatter: logging.Formatter | None = None

    def format(self, record: logging.LogRecord) -> str:
        if self._formatter is None:
            import structlog  # on the first event: see the module's docstring

            self._formatter = structlog.stdlib.ProcessorFormatter(
                processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, self._renderer(structlog)]
            )
        return self._formatter.format(record)


def _without_traceback(record: logging.LogRecord) -> bool:
    """The terminal never shows a traceback: events that carry one go to the log file only (the command
    that caught the exception says what happened in one line, and where the log is)."""
    return not (isinstance(record.msg, dict) and "exception" in record.msg)


def configure(log_file: Path, verbose: bool = False) -> Path | None:
    """Send smdiag's events to the log file (JSON), and to stderr (readable) with `verbose`; safe to call again.

    Returns the log file, or None when it cannot be written: logging then goes to stderr only, so a
    read-only or missing state directory never stops a command (`smdiag doctor` reports it).
    """
    for handler in [h for h in _ROOT.handlers if not isinstance(h, logging.NullHandler)]:
        _ROOT.removeHandler(handler)
        handler.close()
    _ROOT.setLevel(logging.DEBUG if verbose else logging.INFO)

    # Without --verbose stderr carries only the command's own one-line reason; the events go to the file,
    # or to stderr after all when the file cannot be written.
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.INFO if verbose else logging.WARNING)
    colors = sys.stderr.isatty()
    console.setFormatter(_EventFormatter(lambda structlog: structlog.dev.ConsoleRenderer(colors=colors)))
    console.addFilter(_without_traceback)
    _ROOT.addHandler(console)

    try:
        log_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.close(fd)
        to_file = logging.FileHandler(log_file, encoding="utf-8")
    except OSError as exc:
        get_logger("log").warning("log file unavailable, logging to stderr only", path=str(log_file), error=str(exc))
        return None
    to_file.setFormatter(_EventFormatter(lambda structlog: structlog.processors.JSONRenderer()))
    _ROOT.addHandler(to_file)
    if not verbose:
        _ROOT.removeHandler(console)
    return log_file
