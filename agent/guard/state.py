"""What diskguard keeps between runs, under `<state dir>/diskguard/` on the EBS volume: when each image was
last used and arrived, the last check, which `diskguard run` holds the guard lock, and whether it follows the
engine's events.

Kept apart from the planner and the daemon (docuum's state/run split): `once`, `make-room`, `run` and
`status` are separate processes that meet only in these files, so their names and formats live in one place.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from agent import fileops
from agent.statedir import StateDir


@dataclass(frozen=True)
class GuardFiles:
    """The files under the state dir's `diskguard/`."""

    state: StateDir

    @property
    def directory(self) -> Path:
        return self.state.diskguard

    @property
    def use_record(self) -> Path:
        return self.directory / "images.json"

    @property
    def use_record_lock(self) -> Path:
        return self.directory / "images.lock"

    @property
    def prune_lock(self) -> Path:
        """Held while removing: one pruning pass at a time, whichever command runs it."""
        return self.directory / "prune.lock"

    @property
    def last_check(self) -> Path:
        return self.directory / "last.json"

    @property
    def unit_journal(self) -> Path:
        """The undo of a systemd unit write in progress (agent.journal)."""
        return self.directory / "unit-journal.json"

    @property
    def run_lock(self) -> Path:
        """Held by the one `diskguard run` for its lifetime."""
        return self.directory / "run.lock"

    @property
    def run_pid(self) -> Path:
        return self.directory / "run.pid"

    @property
    def events(self) -> Path:
        """Whether the running guard follows the engine's events: a guard that has lost them answers no pull."""
        return self.directory / "events.json"

    @property
    def guard_output(self) -> Path:
        """A detached guard's stdout and stderr."""
        return self.directory / "guard.out"


class UseRecord:
    """When each image was last used and when it arrived, kept in the state dir (on the EBS volume) so
    that it survives restarts of the guard and of the notebook."""

    def __init__(self, state: StateDir) -> None:
        self.files = GuardFiles(state)
        self.last_used: dict[str, float] = {}
        self.arrived: dict[str, float] = {}
        self.dirty = False

    def load(self) -> UseRecord:
        with contextlib.suppress(FileNotFoundError, ValueError):
            data = json.loads(self.files.use_record.read_text())
            self.last_used = {k: float(v) for k, v in data.get("last_used", {}).items()}
            self.arrived = {k: float(v) for k, v in data.get("arrived", {}).items()}
        return self

    def used(self, image_id: str, when: float) -> None:
        if when > self.last_used.get(image_id, 0):
            self.last_used[image_id] = when
            self.dirty = True

    def arrived_at(self, image_id: str, when: float) -> None:
        self.arrived[image_id] = when
        self.dirty = True

    def forget(self, image_ids: Iterable[str]) -> None:
        for image_id in image_ids:
            self.dirty |= self.last_used.pop(image_id, None) is not None
            self.dirty |= self.arrived.pop(image_id, None) is not None

    def save(self) -> None:
        """Merge with what another process (once beside run) saved, newest use wins, then write."""
        if not self.dirty:
            return
        with fileops.exclusive_lock(self.files.use_record_lock):
            disk = UseRecord(self.files.state).load()
            for image_id, when in disk.last_used.items():
                if when > self.last_used.get(image_id, 0):
                    self.last_used[image_id] = when
            for image_id, when in disk.arrived.items():
                self.arrived.setdefault(image_id, when)
            fileops.write_json(self.files.use_record, {"last_used": self.last_used, "arrived": self.arrived})
        self.dirty = False


def remember_check(state: StateDir, outcome: dict) -> None:
    """The last pruning pass (a real one), for `status`."""
    fileops.write_json(GuardFiles(state).last_check, {"time": time.time(), **outcome})


def last_check(state: StateDir) -> dict | None:
    with contextlib.suppress(FileNotFoundError, ValueError):
        return json.loads(GuardFiles(state).last_check.read_text())
    return None


def remember_events(
    state: StateDir,
    following: bool,
    error: str | None = None,
    since: float | None = None,
    engine_answered: bool | None = None,
) -> None:
    """The guard (re)connected to the engine's events (since now), or has not got them back since `since`
    (`error`, and whether the engine answered a ping at that last attempt). Only `status` and doctor read it,
    doctor as the notebook user: readable by all. A state dir that cannot be written (its disk full) must not
    keep the guard from following events."""
    facts = {"following": following, "since": since or time.time(), "error": error, "engine_answered": engine_answered}
    with contextlib.suppress(OSError):
        fileops.write_json(GuardFiles(state).events, facts, mode=0o644)


def events_state(state: StateDir) -> dict | None:
    """{following, since, error, engine_answered} as the running guard last wrote it; None before its first
    connection, or when this user may not read it."""
    with contextlib.suppress(OSError, ValueError):
        return json.loads(GuardFiles(state).events.read_text())
    return None


def guard_pid(state: StateDir) -> int | None:
    """The pid of the `run` holding the guard lock, or None when no guard runs (-1: one runs, its pid file
    is not written yet)."""
    files = GuardFiles(state)
    if not files.run_lock.exists():
        return None
    with open(files.run_lock) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            with contextlib.suppress(OSError, ValueError):
                return int(files.run_pid.read_text())
            return -1
        fcntl.flock(handle, fcntl.LOCK_UN)
    return None


def guard_facts(state: StateDir) -> dict:
    """For doctor, measured now: the running guard's pid, and for how long it has not followed the engine's
    events (None while it does); or the pid of a guard that ended without being stopped (a stop removes the
    pid file, a kill leaves it)."""
    files = GuardFiles(state)
    pid = guard_pid(state)
    ended_pid = None
    if pid is None:
        with contextlib.suppress(OSError, ValueError):
            ended_pid = int(files.run_pid.read_text())
    events = events_state(state) if pid not in (None, -1) else None  # -1: starting, a killed one's file may be there
    lost = events is not None and not events["following"]
    return {
        "pid": pid,
        "events_lost_for_s": round(max(0.0, time.time() - events["since"]), 1) if lost else None,
        "events_error": events["error"] if lost else None,
        "engine_answered": events.get("engine_answered") if lost else None,
        "ended_pid": ended_pid,
        "output": str(files.guard_output),
    }
