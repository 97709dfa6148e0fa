"""Logging: JSON lines to `<state>/logs/agent.log` (readable lines on stderr with --verbose), secrets masked.

smdiag also runs inside users' notebook kernels, so it never touches structlog's global configuration
or the root logger: its loggers are wrapped stdlib loggers under "smdiag", silent until `configure()`.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import structlog

from agent.redact import process_redactor

_ROOT = logging.getLogger("smdiag")
_ROOT.addHandler(logging.NullHandler())
_ROOT.propagate = False


def _redact(_logger: object, _method: str, event_dict: dict) -> dict:
    return process_redactor().value(event_dict)  # type: ignore[return-value]


_PROCESSORS = [
    structlog.stdlib.filter_by_level,
    structlog.stdlib.add_logger_name,
    structlog.stdlib.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    structlog.processors.format_exc_info,
    _redact,
    structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
]


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.wrap_logger(
        logging.getLogger(f"smdiag.{name}"),
        processors=_PROCESSORS,
        wrapper_class=structlog.stdlib.BoundLogger,
    )


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
    console.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()),
            ]
        )
    )
    _ROOT.addHandler(console)

    try:
        log_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.close(fd)
        to_file = logging.FileHandler(log_file, encoding="utf-8")
    except OSError as exc:
        get_logger("log").warning("log file unavailable, logging to stderr only", path=str(log_file), error=str(exc))
        return None
    to_file.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, structlog.processors.JSONRenderer()]
        )
    )
    _ROOT.addHandler(to_file)
    if not verbose:
        _ROOT.removeHandler(console)
    return log_file
