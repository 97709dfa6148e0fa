"""`python -m agent.record`: the failure recorder local mode's wrapper runs, as `smdiag failures record --json`
does, without the CLI's own imports (typer, structlog and rich cost about as much CPU as gathering the
evidence itself): the user is waiting for the report right after their exception, often on a notebook whose
other kernels hold the CPU.

Reads the wrapper's capture (`autowrap.FailureFacts` as JSON) on stdin, stores the report, prints its path,
id, category, summary, hint and remedy as JSON; exit 0 stored, 1 failed, 2 stdin is not a capture or the
settings are bad (one line on stderr, as the CLI's).
"""

from __future__ import annotations

import json
import os
import sys

from agent.errors import BadInput, SmdiagError
from agent.settings import Settings


def record(text: str, settings: Settings) -> dict:
    """Store the report of the capture `text`; the fields the wrapper tells the user."""
    from agent.failures import evidence
    from agent.fix import choose_remedy
    from agent.guest.wrapper import FailureFacts

    try:
        capture = FailureFacts.from_json(text)
    except (ValueError, TypeError) as exc:
        raise BadInput(f"stdin is not a failure capture ({exc})", "pipe the JSON that agent.autowrap writes") from None
    directory, report = evidence.record(capture, settings)
    fields = {"path": str(directory), **{k: report[k] for k in ("id", "category", "summary", "hint")}}
    fields["remedy"] = choose_remedy(report)
    return fields


def main() -> int:
    from agent.redact import process_redactor

    # This process runs no SDK: importing agent.autowrap (for FailureFacts) need not prepare to patch one,
    # which reads the installed packages' metadata.
    os.environ["SMDIAG_DISABLE"] = "1"
    settings = None
    try:
        settings = Settings.load()
        fields = record(sys.stdin.read(), settings)
    except SmdiagError as exc:
        print(process_redactor().text(exc.one_line()), file=sys.stderr)
        return exc.exit_code
    except Exception as exc:  # noqa: BLE001 - the traceback goes to the log, the wrapper gets one line
        print(process_redactor().text(f"internal error: {type(exc).__name__}: {exc}"), file=sys.stderr)
        _log_crash(settings)
        return 1
    print(json.dumps(process_redactor().value(fields), indent=2, default=str))
    return 0


def _log_crash(settings: Settings | None) -> None:
    """The traceback in smdiag's log, where `smdiag doctor` and the CLI keep theirs (logging is set up only
    here, on this rare path: its imports are what this entry point exists to avoid)."""
    if settings is None:
        return
    from agent import log

    if log.configure(settings.log_file) is not None:
        log.get_logger("record").exception("command.crashed", command="failures record")


if __name__ == "__main__":
    sys.exit(main())
