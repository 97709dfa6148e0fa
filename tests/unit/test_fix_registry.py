"""The one registry of remedies: every remedy a diagnosis may name is registered, and each one's plan is pure
(a function of its facts alone: no file opened, no directory listed, no process or socket, its facts left as
they were, the same plan twice)."""

import copy
import inspect
import sys
from pathlib import Path

import pytest

from agent.fix.bootstrap import VolumeFacts
from agent.fix.compose_shim import ShimFacts
from agent.fix.container_root import ConfigFacts
from agent.fix.free_disk import DiskFacts
from agent.fix.leftover_containers import PortFacts
from agent.fix.registry import REMEDIES
from agent.fix.remedy import Remedy
from agent.fix.stale_network import NetworkFacts
from agent.fix.start_engine import EngineFacts

DIAGNOSED = {
    "container_root_full": "container_root",
    "disk_full": "free_disk",
    "compose_unrecognised": "compose_shim",
    "network_conflict": "stale_network",
    "port_in_use": "leftover_containers",
    "daemon_down": "start_engine",
}
"""The remedy classification names per category (CONTRACT §3: report["remedy"]["name"])."""
DOCTOR_ONLY = {"bootstrap"}

SDK_LABELS = {
    "com.docker.compose.project": "tmpk2j4x9_q",
    "com.docker.compose.project.working_dir": "/tmp/tmpk2j4x9_q",
    "com.docker.compose.project.config_files": "/tmp/tmpk2j4x9_q/docker-compose.yaml",
    "com.docker.compose.service": "algo-1-ab3cd",
}
V5 = {"docker_cli": "/usr/bin/docker", "command": None, "plugin_version": "Docker Compose version v5.0.1",
      "standalone": None}  # fmt: skip
FACTS = {
    "compose_shim": ShimFacts(V5, Path("/usr/local/bin"), None, True),
    "stale_network": NetworkFacts({"Labels": {}, "Driver": "bridge"}, True, []),
    "leftover_containers": PortFacts(8080, [{"name": "x7f3k2m9qa-algo-1-ab3cd", "labels": SDK_LABELS}], set(), False),
    "start_engine": EngineFacts(False, "systemd (docker.service)"),
    "free_disk": DiskFacts(["registry.local/train:1"], 60.0),
    "container_root": ConfigFacts(
        Path("/home/u/.sagemaker/config.yaml"), "local:\n  local_code: true\n", Path("/ebs"), True
    ),  # fmt: skip
    "bootstrap": VolumeFacts(Path("/ebs")),
}
"""Facts under which each remedy has something to do."""

PURE_EVENTS = {"builtins.id", "object.__getattr__", "object.__setattr__", "sys._getframe"}
"""Audit events that touch nothing outside the interpreter."""
_events: list[str] = []
_watching = [False]


def _audit(event: str, _args: tuple) -> None:
    if _watching[0]:
        _events.append(event)


sys.addaudithook(_audit)  # an audit hook cannot be removed: it records only while a test watches


def test_every_remedy_a_diagnosis_names_is_registered_under_that_name():
    assert set(REMEDIES) == set(DIAGNOSED.values()) | DOCTOR_ONLY
    for name, remedy in REMEDIES.items():
        assert isinstance(remedy, Remedy) and remedy.name == name


@pytest.mark.parametrize("name", sorted(REMEDIES))
def test_each_remedys_plan_is_pure(name):
    remedy, facts = REMEDIES[name], FACTS[name]
    assert list(inspect.signature(remedy.plan).parameters) == ["facts"]  # no engine, settings or options to reach
    kept = copy.deepcopy(facts)
    first = remedy.plan(facts)  # a library a plan imports lazily (yaml) is imported here, not watched
    _events.clear()
    _watching[0] = True
    try:
        again = remedy.plan(facts)
    finally:
        _watching[0] = False
    assert set(_events) <= PURE_EVENTS, _events
    assert again == first and first.remedy == name and first.actions and first.blocked is None
    assert facts == kept
