"""Every fix's changes, kept for `smdiag fix --undo`: the run in progress in `<state>/fix/journal.json`
(agent.journal), each finished, failed or killed run appended to `<state>/fix/journal.jsonl`."""

from __future__ import annotations

import time
from pathlib import Path

from agent import fileops
from agent.errors import Failed
from agent.journal import Journal, append_line, read_lines, replay
from agent.settings import Settings


def open_journal(settings: Settings) -> Journal:
    """The fix journal; a run killed before it was kept in the history is kept there now (its changes
    stay, as a failed run's do, for `--undo`)."""
    journal = Journal(settings.state.fix / "journal.json")
    if journal.load() is not None:
        journal.commit(history(settings))
    return journal


def history(settings: Settings) -> Path:
    return settings.state.fix / "journal.jsonl"


def lock(settings: Settings) -> Path:
    """One fix or undo at a time."""
    return settings.state.fix / "lock"


def undo_last(settings: Settings) -> dict:
    """Replay the newest fix's undo: a shim it created is removed (if still ours), a config it edited is
    restored from its backup. Engine objects it removed are named, not recreated."""
    with fileops.exclusive_lock(lock(settings)):
        open_journal(settings)
        runs = read_lines(history(settings))
        undone = {r["run"] for r in runs if r.get("undone")}
        pending = [r for r in runs if "undo" in r and r["run"] not in undone]
        if not pending:
            raise Failed(f"no fix to undo in {history(settings)}", "nothing was changed by smdiag fix")
        last = pending[-1]
        done = replay(last["undo"])
        kept = [
            f"{a['kind']} {a['target']}: not undoable (engine state), left as is"
            for a in reversed(last["actions"])
            if not a["undoable"]
        ]
        append_line(history(settings), {"run": last["run"], "undone": True, "time": time.time()})
    return {"run": last["run"], "undone": done, "not_undoable": kept}
