"""What every remedy is: gather → plan → act → verify, each change's undo journaled before it is made.

A remedy never decides whether it is the right one: the failure's diagnosis (`report["remedy"]`) or doctor's
problem record chose it, with its arguments (e.g. the port the engine could not bind). It then
- gathers the facts it needs at the moment it runs, at the edges (the engine, PATH, files);
- plans its actions from those facts alone (pure: the same facts, the same plan; nothing read or changed);
- acts, one planned change at a time, registering the change's undo on its `Step` first (a shim it
  creates, a file's backup); what cannot be undone (an engine object removed) is noted as such;
- verifies by measuring the cause again, never by trusting that the actions ran.
The undo is the journal's: `smdiag fix --undo` replays the steps `act` registered (agent.journal).
Nothing is removed that cannot be proved SageMaker local mode's own: anything else is named and left alone.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Generic, TypeVar

from agent.engine import Engine
from agent.journal import Journal
from agent.settings import Settings

DEFAULT_BIN_DIR = Path("/usr/local/bin")


@dataclass(frozen=True)
class Action:
    kind: str
    """write_shim, remove_network, remove_container, free_disk, set_container_root, start_engine, run_bootstrap;
    `leave` names something that stands in the way and is not touched."""
    target: str
    detail: str

    @property
    def changes(self) -> bool:
        return self.kind != "leave"


@dataclass
class Plan:
    remedy: str
    actions: list[Action] = field(default_factory=list)
    blocked: str | None = None
    """Why this remedy cannot repair it here (then nothing is changed)."""


@dataclass(frozen=True)
class FixOptions:
    bin_dir: Path = DEFAULT_BIN_DIR
    dry_run: bool = False
    stop_cmd: str | None = None
    start_cmd: str | None = None
    """Shell commands that stop and start Docker [default: systemd, else `service docker`], as bootstrap's."""
    min_age: str = "10m"
    """How recently used an image may be and still be pruned for room (diskguard's --min-age)."""


Confirm = Callable[[Plan], bool]


@dataclass(frozen=True)
class Context:
    """What a remedy runs with. `report` is the failure report whose diagnosis chose the remedy (None when
    `doctor --fix` found the problem); `arguments` are what that diagnosis gave the remedy (e.g. `port`)."""

    settings: Settings
    engine: Engine
    options: FixOptions
    report: dict | None = None
    arguments: dict = field(default_factory=dict)


class Step:
    """What one action tells the fix's journal: the undo of a change it is about to make, or facts (what it
    removed, which cannot be put back)."""

    def __init__(self, journal: Journal, action: Action) -> None:
        self.journal = journal
        self.record = {"kind": action.kind, "target": action.target, "undoable": False}
        journal.record(actions=[*journal.data["actions"], self.record])

    def will(self, kind: str, **undo) -> None:
        """Register the undo of the change about to be made (on disk when this returns)."""
        self.record["undoable"] = True
        self.journal.will(kind, **undo)

    def note(self, **fields) -> None:
        self.record.update(fields)
        self.journal.record()


Facts = TypeVar("Facts")


class Remedy(ABC, Generic[Facts]):
    """One repair, from the facts of the moment to the proof that the cause is gone. Stateless: the registry
    holds one instance of each."""

    name: ClassVar[str]
    needs_yes: ClassVar[str | None] = None
    """Set for a remedy `doctor --fix` applies only with --yes (it restarts Docker): what it suggests instead."""

    @abstractmethod
    def gather(self, ctx: Context) -> Facts:
        """The facts the plan needs, measured now."""

    @abstractmethod
    def plan(self, facts: Facts) -> Plan:
        """The actions these facts call for, or why the remedy cannot repair it here. Pure."""

    @abstractmethod
    def act(self, ctx: Context, action: Action, step: Step) -> str:
        """Make one planned change, its undo registered on `step` first; what was done, in words."""

    @abstractmethod
    def verify(self, ctx: Context) -> tuple[bool, str]:
        """Whether the cause is gone, measured again; why, in words."""
