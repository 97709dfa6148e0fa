"""Changes that can always be undone: each one's undo is written down, as data, before it is made.

The shape of certbot's reverter. A transaction (`Journal.begin`) is a small JSON file holding its context
and a list of undo steps; `will` appends a step and reaches the disk before the caller makes the change
the step undoes, so a run killed at any instant leaves a journal whose steps cover everything it did
(a step for a change that never happened is harmless: each undo is idempotent). `commit` removes the file
in one unlink, optionally after appending the transaction to a history for a later `undo`. The same
`replay` serves a rollback (the run failed or was interrupted) and recovery at start (a journal left
behind by a killed run): there is no second code path to get wrong.

Step kinds, replayed by tier rather than purely in reverse, because what a daemon uses must not be
removed before the daemon has moved back:
  restore  {path, backup} or {path, bytes, mode}: put a file back, from a backup file or from its old
           bytes kept inline (base64); None for either means there was no file; newest first;
  command  {action, ...}: a non-file undo (restart Docker on its old root), run by a handler the caller
           names;
  created  {path, mark?, action?}: remove a path the transaction made (a staging dir, a copy, a shim),
           only while it is still ours (`mark`: text the file must still contain), newest first; an
           `action` hands the removal to the caller (a data-root copy is moved aside, not deleted, once
           an engine has used it).

What a journal never decides is *whether* to undo: callers decide that from facts (bootstrap's
`recovery_direction`); the journal only knows what to undo.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from agent import fileops
from agent.errors import Failed, SmdiagError

TIERS = ("restore", "command", "created")
Handlers = dict[str, Callable[[dict], str | None]]


class Interrupted(BaseException):
    """SIGTERM/SIGHUP inside `signals_unwind`: unwinds through the caller's rollback as Ctrl-C does."""


def cause_in_words(cause: BaseException) -> str:
    """Why a transaction is being undone, as its rollback's message says it."""
    if isinstance(cause, SmdiagError):
        return cause.problem
    if isinstance(cause, (Interrupted, KeyboardInterrupt)):
        return f"interrupted ({cause or 'SIGINT'})"
    return f"{type(cause).__name__}: {cause}"


class Journal:
    """One transaction in progress, in one JSON file: context fields plus `undo`, the list of steps."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict = {}

    def load(self) -> dict | None:
        """What a killed run left (also kept in `data`), or None when no transaction is open."""
        try:
            self.data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, json.JSONDecodeError) as exc:
            raise Failed(f"the journal {self.path} is unreadable: {exc}", "remove it and run again") from None
        return self.data

    def begin(self, **context) -> None:
        self.data = {**context, "undo": []}
        self._write()

    def record(self, **fields) -> None:
        """Context (progress, what recovery will need to gather its facts), not an undo step."""
        self.data.update(fields)
        self._write()

    def will(self, kind: str, **step) -> None:
        """Register the undo of a change about to be made; on disk when this returns."""
        if kind not in TIERS:
            raise ValueError(f"unknown undo step kind {kind!r}")
        self.data.setdefault("undo", []).append({"kind": kind, **step})
        self._write()

    def steps(self, kind: str) -> list[dict]:
        return [s for s in self.data.get("undo", []) if s["kind"] == kind]

    def commit(self, history: Path | None = None) -> None:
        """Keep the changes: the journal goes (after being appended to `history`, when given)."""
        if history is not None:
            append_line(history, self.data)
        self.clear()

    def replay(self, handlers: Handlers | None = None) -> list[str]:
        """Undo everything registered, then close the transaction; what was undone, in words."""
        done = replay(self.data.get("undo", []), handlers)
        self.clear()
        return done

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
        self.data = {}

    def _write(self) -> None:
        fileops.write_json(self.path, self.data)


def replay(steps: list[dict], handlers: Handlers | None = None) -> list[str]:
    """Run undo steps tier by tier (files back, then commands, then created paths), newest first within a
    tier; the descriptions of what changed. An `action` with no handler is a bug, raised before any undo."""
    handlers = handlers or {}
    missing = {s["action"] for s in steps if s.get("action") and s["action"] not in handlers}
    if missing:
        raise ValueError(f"no handler for undo actions {sorted(missing)}")
    done = []
    for tier in TIERS:
        for step in reversed([s for s in steps if s["kind"] == tier]):
            undo = handlers[step["action"]] if step.get("action") else UNDO[tier]
            said = undo(step)
            if said:
                done.append(said)
    return done


def _restore(step: dict) -> str | None:
    path = Path(step["path"])
    if "bytes" in step:
        if step["bytes"] is None:
            path.unlink(missing_ok=True)
        else:
            fileops.atomic_write(path, base64.b64decode(step["bytes"]), step["mode"])
        return f"restored {path}" + ("" if step["bytes"] is not None else " (removed)")
    fileops.restore(path, Path(step["backup"]) if step["backup"] else None)
    return f"restored {path}" + (f" from {step['backup']}" if step["backup"] else " (removed)")


def restore_inline(path: Path) -> dict:
    """The restore step of a small file kept in the journal itself (no backup file left beside it, as a
    user's site-packages must not get one): its bytes and mode, or None when it does not exist."""
    try:
        return {"path": str(path), "bytes": base64.b64encode(path.read_bytes()).decode(),
                "mode": path.stat().st_mode & 0o7777}  # fmt: skip
    except FileNotFoundError:
        return {"path": str(path), "bytes": None}


def _remove_created(step: dict) -> str | None:
    path = Path(step["path"])
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
        return f"removed {path}"
    with contextlib.suppress(FileNotFoundError):
        if step.get("mark") is None or step["mark"] in path.read_text(errors="replace"):
            path.unlink()
            return f"removed {path}"
    return None


def _no_default(step: dict) -> str | None:
    raise ValueError(f"a command undo step needs an action: {step}")


UNDO: dict[str, Callable[[dict], str | None]] = {
    "restore": _restore,
    "command": _no_default,
    "created": _remove_created,
}


# ---------------------------------------------------------------------------------------------- history


def append_line(path: Path, record: dict) -> None:
    """One JSON line, on disk when this returns."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        handle.write(json.dumps(record, default=str) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def read_lines(path: Path) -> list[dict]:
    """The history's records; a line torn by a kill mid-write is skipped."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return []
    records = []
    for line in lines:
        with contextlib.suppress(ValueError):
            records.append(json.loads(line))
    return records


# ---------------------------------------------------------------------------------------------- signals


@contextlib.contextmanager
def signals_unwind() -> Iterator[None]:
    """SIGTERM and SIGHUP raise `Interrupted`, so a service manager's stop unwinds through the rollback
    (certbot's error handler); outside the main thread, where signals cannot be caught, nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def raise_interrupt(signum, _frame):
        raise Interrupted(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, raise_interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def signals_blocked() -> Iterator[None]:
    """Ctrl-C, SIGTERM and SIGHUP wait until the block ends: a rollback is not itself interrupted half
    done, and a child is not started unseen. They are held by a handler that notes them, not by the signal
    mask: a mask is inherited by every child started meanwhile (Docker restarted by a rollback would ignore
    SIGTERM for good), a handler is reset when the child execs. Outside the main thread, where Python runs no
    handler, the thread's mask holds them."""
    held = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    if threading.current_thread() is not threading.main_thread():
        previous_mask = signal.pthread_sigmask(signal.SIG_BLOCK, held)
        try:
            yield
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)
        return
    arrived: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, _frame: arrived.append(signum)) for sig in held}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for signum in dict.fromkeys(arrived):
            signal.raise_signal(signum)
