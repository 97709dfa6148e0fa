"""TEMPORARY, to be deleted when the failures and shape branches are merged: on this branch the recorder
still imports `FailureFacts` from here and reads the old field names (`compose_output`, `containers`,
`call["class"]`), and agent.experiments.local calls `install` from here; the failures branch reads
`agent.guest.facts` instead, and shape's experiments call `agent.guest.install.install`. Installs nothing."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from . import facts
from .install import install  # noqa: F401 - agent.experiments.local's name, until shape's branch


@dataclass
class FailureFacts:
    call: dict
    started: float
    exception: dict
    compose_files: list = field(default_factory=list)
    compose_output: list = field(default_factory=list)
    pull_errors: list = field(default_factory=list)
    serving_failed: bool = False
    containers: list = field(default_factory=list)
    container_root: str | None = None

    @classmethod
    def from_json(cls, text: str) -> FailureFacts:
        data = dataclasses.asdict(facts.FailureFacts.from_json(text))
        data["call"]["class"] = data["call"].pop("class_name")
        data["compose_output"], data["containers"] = data.pop("compose_stream"), data.pop("kept_containers")
        del data["answered_by"]
        return cls(**data)
