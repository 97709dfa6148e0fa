"""`python -m agent.record`: the failure recorder the guest runs, as `smdiag failures record --json` does,
without the CLI's own imports (typer, structlog and rich cost about as much CPU as gathering the evidence
itself): the user is waiting for the report right after their exception, often on a notebook whose other
kernels hold the CPU.

Reads the guest's facts (agent.guest.facts.FailureFacts as JSON) on stdin, then the pipeline, one hop each:
evidence (gathered) → diagnosis (classified, the catalog's hint and remedy) → report (stored). Prints the
report's path, id, category, summary, hint and remedy (its name, or null) as JSON; exit 0 stored, 1 failed,
2 stdin is not the facts or the settings are bad (one line on stderr, as the CLI's). Importing it installs
nothing: the facts' module is data only.
"""

from __future__ import annotations

import json
import sys
import time

from agent.errors import BadInput, SmdiagError
from agent.failures import evidence, store
from agent.failures.classify import classify
from agent.failures.types import FailureFacts, Report
from agent.redact import process_redactor
from agent.settings import Settings


def record(text: str, settings: Settings) -> dict:
    """Store the report of the facts `text`; the fields the guest tells the user."""
    try:
        facts = FailureFacts.from_json(text)
    except (ValueError, TypeError) as exc:
        raise BadInput(f"stdin is not a failure capture ({exc})", "pipe the JSON that agent.autowrap writes") from None
    started = time.time()
    found, full_logs = evidence.gather(facts, settings)
    directory, stored = store.save(Report(started, found, classify(found)), full_logs, settings.state_dir)
    return {
        "path": str(directory),
        **{key: stored[key] for key in ("id", "category", "summary", "hint")},
        "remedy": (stored["remedy"] or {}).get("name"),
    }


def main() -> int:
    settings = None
    try:
        settings = Settings.load()
        fields = record(sys.stdin.read(), settings)
    except SmdiagError as exc:
        print(process_redactor().text(exc.one_line()), file=sys.stderr)
        return exc.exit_code
    except Exception as exc:  # noqa: BLE001 - the traceback goes to the log, the guest gets one line
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
