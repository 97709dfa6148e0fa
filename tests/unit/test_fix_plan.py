"""The pure half of `smdiag fix`: the one registry, each remedy's plan pure (a function of its facts alone:
no file opened, no directory listed, no process or socket, its facts left as they were, the same plan twice),
what counts as local mode's own, what each remedy plans from the facts it was given, and which remedies
doctor's findings call for. A failure's category and the remedy its diagnosis names are the failure
catalog's (agent/failures, tests/unit/test_failures_catalog.py); test_fix_catalog.py checks that fix runs
every remedy the catalog names."""

import copy
import errno
import inspect
import sys
from dataclasses import asdict
from pathlib import Path

import pytest

from agent.engine import unreachable
from agent.fix.bootstrap import VolumeFacts
from agent.fix.compose_shim import SHIM, ShimFacts
from agent.fix.container_root import ConfigFacts
from agent.fix.doctor_fix import doctor_remedies
from agent.fix.free_disk import DiskFacts
from agent.fix.leftover_containers import PortFacts
from agent.fix.local_mode import is_local_mode_container
from agent.fix.registry import REMEDIES
from agent.fix.remedy import Plan, Remedy
from agent.fix.stale_network import NetworkFacts, network_problem
from agent.fix.start_engine import EngineFacts, StartEngine
from agent.host.doctor import diagnose

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


def test_each_remedy_is_registered_under_its_own_name():
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


def test_local_mode_containers_are_recognised_by_the_sdks_names_and_compose_labels():
    assert is_local_mode_container("x7f3k2m9qa-algo-1-ab3cd", SDK_LABELS)
    assert not is_local_mode_container("my-api", SDK_LABELS)
    assert not is_local_mode_container("x7f3k2m9qa-algo-1-zzzzz", SDK_LABELS)  # another service's name
    assert not is_local_mode_container("x7f3k2m9qa-algo-1-ab3cd", {})  # not made by compose
    for key, value in [
        ("com.docker.compose.project.working_dir", "/home/me/myapp"),  # a user's own compose project
        ("com.docker.compose.project.config_files", "/tmp/tmpk2j4x9_q/other.yml"),
        ("com.docker.compose.project", "myapp"),
    ]:
        assert not is_local_mode_container("x7f3k2m9qa-algo-1-ab3cd", {**SDK_LABELS, key: value}), key


def test_leftover_plan_removes_only_local_modes_and_never_the_calls_own():
    holders = [
        {"name": "x7f3k2m9qa-algo-1-ab3cd", "labels": SDK_LABELS},
        {"name": "my-api", "labels": {}},
        {"name": "own-algo-1-zzzzz", "labels": {}},
    ]
    leftover = REMEDIES["leftover_containers"]
    plan = leftover.plan(PortFacts(8080, holders, {"own-algo-1-zzzzz"}, port_free=False))
    assert [(a.kind, a.target) for a in plan.actions] == [
        ("remove_container", "x7f3k2m9qa-algo-1-ab3cd"), ("leave", "my-api"), ("leave", "own-algo-1-zzzzz")
    ]  # fmt: skip
    assert plan.blocked is None
    foreign_only = leftover.plan(PortFacts(8080, holders[1:2], set(), port_free=False))
    assert "my-api" in foreign_only.blocked and not any(a.changes for a in foreign_only.actions)
    outside = leftover.plan(PortFacts(8080, [], set(), port_free=False))
    assert "a process outside Docker" in outside.blocked
    assert leftover.plan(PortFacts(8080, [], set(), port_free=True)) == Plan("leftover_containers")


def test_network_plan():
    compose_made = {"Labels": {"com.docker.compose.network": "sagemaker-local"}, "Driver": "bridge", "Options": {}}
    assert network_problem(compose_made) is None
    assert "no label" in network_problem({**compose_made, "Labels": {}})
    assert "driver options" in network_problem({**compose_made, "Options": {"com.docker.network.driver.mtu": "1"}})
    network = REMEDIES["stale_network"]
    assert network.plan(NetworkFacts(None, True, [])).actions == []
    assert network.plan(NetworkFacts(compose_made, False, [])).actions == []
    [remove] = network.plan(NetworkFacts(compose_made, True, [])).actions  # compose refused it: the evidence wins
    assert remove.kind == "remove_network"
    used = network.plan(NetworkFacts({**compose_made, "Labels": {}}, False, ["web"]))
    assert "web" in used.blocked and [a.kind for a in used.actions] == ["leave"]


def test_compose_shim_plan(tmp_path: Path):
    shim = tmp_path / "docker-compose"
    plan = REMEDIES["compose_shim"].plan
    [write] = plan(ShimFacts(V5, tmp_path, None, True)).actions
    assert write.kind == "write_shim" and write.target == str(shim)
    assert plan(ShimFacts(V5, tmp_path, SHIM, True)).actions == []  # already there
    assert plan(ShimFacts({**V5, "command": ["docker", "compose"]}, tmp_path, None, True)).actions == []
    assert "not smdiag's shim" in plan(ShimFacts(V5, tmp_path, "#!/bin/sh\nreal\n", True)).blocked
    assert "not on PATH" in plan(ShimFacts(V5, tmp_path, None, False)).blocked
    assert "no Compose plugin" in plan(ShimFacts({**V5, "plugin_version": None}, tmp_path, None, True)).blocked
    assert "no docker CLI" in plan(ShimFacts({**V5, "docker_cli": None}, tmp_path, None, True)).blocked


HOST = {
    "engine": {"reachable": True, "host": "unix:///var/run/docker.sock", "error": None, "fix": None},
    "sdk_environments": [{"environment": "/env", "version": "2.257.7", "major": 2, "hook": True, "own": False}],
    "compose": V5,
    "daemon_config": {"path": "/etc/docker/daemon.json", "exists": False, "error": None, "data_root": None},
    "docker_root": {"path": "/var/lib/docker", "source": "engine", "on_root_volume": True, "on_ebs_volume": False},
    "disks": [{"role": "ebs", "path": "/ebs", "exists": True, "percent": 10.0}],
    "aws": {"region": "us-east-1"},
    "notebook": {"is_notebook_instance": True},
    "state_dir": {"writable": True},
}
"""A host whose SDK v2 refuses its Compose v5 plugin and whose data-root is on the root volume."""


def doctor_found(**changes) -> dict:
    """doctor's report on HOST changed so: its own diagnose names each problem's remedy."""
    facts = {**HOST, **changes}
    return {**facts, "problems": [asdict(p) for p in diagnose(facts, 85)]}


def engine_down(cause: OSError) -> dict:
    failed = unreachable(HOST["engine"]["host"], cause)
    return {"reachable": False, "host": HOST["engine"]["host"], "error": failed.problem, "fix": failed.fix}


def test_doctor_remedies():
    report = doctor_found()
    assert {p["check"]: p["remedy"] for p in report["problems"]} == {
        "compose": "compose_shim",
        "docker_root": "bootstrap",
    }
    remedies, suggestions = doctor_remedies(report, None, yes=False)
    assert remedies == ["compose_shim", "stale_network"] and "bootstrap" in suggestions[0]
    assert doctor_remedies(report, None, yes=True)[0][-1] == "bootstrap"
    assert doctor_remedies(report, {"compose"}, yes=False) == (["compose_shim"], [])
    v2_plugin = {**V5, "command": ["docker", "compose"]}
    down = doctor_found(compose=v2_plugin, engine=engine_down(ConnectionRefusedError(errno.ECONNREFUSED, "refused")))
    assert doctor_remedies(down, None, False)[0] == ["start_engine"]
    denied = doctor_found(compose=v2_plugin, engine=engine_down(PermissionError(errno.EACCES, "Permission denied")))
    assert [(p["check"], p["remedy"]) for p in denied["problems"]] == [("engine", None), ("docker_root", "bootstrap")]
    assert doctor_remedies(denied, None, False)[0] == []


def test_doctor_fix_applies_the_remedy_doctor_found_without_reading_its_words_again():
    problem = {"check": "engine", "problem": "cannot reach it: Permission denied", "fix": "-", "remedy": "start_engine"}
    report = {"engine": {"reachable": False}, "problems": [problem]}
    assert doctor_remedies(report, None, False) == (["start_engine"], [])


def test_fix_and_doctor_fix_explain_themselves_and_refuse_bad_input_before_any_work(smdiag):
    for args in (("fix", "--help"), ("doctor", "--help")):
        done = smdiag(*args)
        assert done.returncode == 0 and "--bin-dir" in done.stdout and "SMDIAG_BIN_DIR" in done.stdout, done.stderr
    assert smdiag("fix", "--yes").returncode == 1  # no report recorded yet
    both = smdiag("fix", "20260101T000000Z-abcdef", "--last", "--yes")
    assert both.returncode == 2 and "not both" in both.stderr
    unknown = smdiag("doctor", "--fix", "--yes", "--only", "everything", "--json")
    assert unknown.returncode == 2 and "unknown check" in unknown.stderr and "Traceback" not in unknown.stderr
    stray = smdiag("doctor", "--yes")
    assert stray.returncode == 2 and "go with --fix" in stray.stderr


def test_start_engine_does_not_start_the_systems_docker_for_an_engine_at_another_address():
    elsewhere = StartEngine().plan(EngineFacts(False, "systemd (docker.service)", "unix:///tmp/other.sock"))
    assert elsewhere.actions == [] and "unix:///tmp/other.sock" in elsewhere.blocked
    assert "--start-cmd" in elsewhere.blocked
    here = StartEngine().plan(EngineFacts(False, "systemd (docker.service)"))
    assert [action.kind for action in here.actions] == ["start_engine"] and here.blocked is None
