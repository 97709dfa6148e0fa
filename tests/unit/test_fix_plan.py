"""The pure half of `smdiag fix`: which remedy a report calls for, what counts as local mode's own, and
what each remedy plans from the facts it was given. The categories that lead to a remedy are here too."""

from pathlib import Path

import pytest

from agent import fix
from agent.failures.classify import classify

SDK_LABELS = {
    "com.docker.compose.project": "tmpk2j4x9_q",
    "com.docker.compose.project.working_dir": "/tmp/tmpk2j4x9_q",
    "com.docker.compose.project.config_files": "/tmp/tmpk2j4x9_q/docker-compose.yaml",
    "com.docker.compose.service": "algo-1-ab3cd",
}
V5 = {"docker_cli": "/usr/bin/docker", "command": None, "plugin_version": "Docker Compose version v5.0.1",
      "standalone": None}  # fmt: skip


def evidence(**changes):
    base = {"call": {"kind": "fit"}, "exception": {"type": "RuntimeError", "message": "Failed to run: [...]"},
            "pull_errors": [], "containers": [], "compose_output": []}  # fmt: skip
    return {**base, **changes}


def test_a_refused_plugin_is_compose_unrecognised_and_no_plugin_is_compose_missing():
    error = {"type": "ImportError", "message": "Docker Compose is not installed. Local Mode features will not work"}
    refused = classify(evidence(exception=error, compose=V5))
    assert refused.category == "compose_unrecognised" and "v5.0.1" in refused.summary
    assert "smdiag fix" in refused.hint
    missing = classify(evidence(exception=error, compose={**V5, "plugin_version": None}))
    assert missing.category == "compose_missing" and "smdiag fix" not in missing.hint


@pytest.mark.parametrize(
    "line",
    [
        'ERROR: Network "sagemaker-local" needs to be recreated - option "com.docker.network.driver.mtu" has changed',
        'network sagemaker-local was found but has incorrect label com.docker.compose.network set to ""',
    ],
)
def test_compose_refusing_the_network_is_network_conflict(line):
    diagnosis = classify(evidence(compose_output=["Creating network", line]))
    assert diagnosis.category == "network_conflict" and "sagemaker-local" in diagnosis.summary
    assert "smdiag fix" in diagnosis.hint


@pytest.mark.parametrize(
    "report,remedy",
    [
        ({"category": "compose_unrecognised"}, "compose_shim"),
        ({"category": "compose_missing"}, None),
        ({"category": "network_conflict"}, "stale_network"),
        ({"category": "port_in_use"}, "leftover_containers"),
        ({"category": "daemon_down", "docker": {"error": "cannot reach ...: Connection refused"}}, "start_engine"),
        ({"category": "daemon_down", "docker": {"error": "cannot reach ...: Permission denied"}}, None),
        ({"category": "disk_full", "pull_errors": [{"error": "no space left on device"}]}, "free_disk"),
        (
            {
                "category": "disk_full",
                "disks": [
                    {"role": "docker_root", "path": "/ebs/docker", "percent": 40},
                    {"role": "container_root", "path": "/tmp", "percent": 100},
                ],
            },
            "container_root",
        ),
        (
            {
                "category": "disk_full",
                "disks": [
                    {"role": "docker_root", "path": "/d", "percent": 99},
                    {"role": "container_root", "path": "/tmp", "percent": 30},
                ],
            },
            "free_disk",
        ),  # fmt: skip
        ({"category": "disk_full", "disks": [{"role": "docker_root", "path": "/d", "percent": 50}]}, None),
        ({"category": "script_error"}, None),
        ({"category": "unknown"}, None),
    ],
)
def test_choose_remedy(report, remedy):
    assert fix.choose_remedy(report) == remedy


def test_local_mode_containers_are_recognised_by_the_sdks_names_and_compose_labels():
    assert fix.is_local_mode_container("x7f3k2m9qa-algo-1-ab3cd", SDK_LABELS)
    assert not fix.is_local_mode_container("my-api", SDK_LABELS)
    assert not fix.is_local_mode_container("x7f3k2m9qa-algo-1-zzzzz", SDK_LABELS)  # another service's name
    assert not fix.is_local_mode_container("x7f3k2m9qa-algo-1-ab3cd", {})  # not made by compose
    for key, value in [
        ("com.docker.compose.project.working_dir", "/home/me/myapp"),  # a user's own compose project
        ("com.docker.compose.project.config_files", "/tmp/tmpk2j4x9_q/other.yml"),
        ("com.docker.compose.project", "myapp"),
    ]:
        assert not fix.is_local_mode_container("x7f3k2m9qa-algo-1-ab3cd", {**SDK_LABELS, key: value}), key


def test_leftover_plan_removes_only_local_modes_and_never_the_calls_own():
    holders = [
        {"name": "x7f3k2m9qa-algo-1-ab3cd", "labels": SDK_LABELS},
        {"name": "my-api", "labels": {}},
        {"name": "own-algo-1-zzzzz", "labels": {}},
    ]
    plan = fix.plan_leftover_containers(8080, holders, {"own-algo-1-zzzzz"}, port_free=False)
    assert [(a.kind, a.target) for a in plan.actions] == [
        ("remove_container", "x7f3k2m9qa-algo-1-ab3cd"), ("leave", "my-api"), ("leave", "own-algo-1-zzzzz")
    ]  # fmt: skip
    assert plan.blocked is None
    foreign_only = fix.plan_leftover_containers(8080, holders[1:2], set(), port_free=False)
    assert "my-api" in foreign_only.blocked and not any(a.changes for a in foreign_only.actions)
    outside = fix.plan_leftover_containers(8080, [], set(), port_free=False)
    assert "a process outside Docker" in outside.blocked
    assert fix.plan_leftover_containers(8080, [], set(), port_free=True) == fix.Plan("leftover_containers")


def test_the_port_comes_from_the_engines_error():
    line = "Cannot start service algo-1-x: driver failed: Bind for 0.0.0.0:18080 failed: port is already allocated"
    assert fix.serving_port({"compose_output": [line]}) == 18080
    assert fix.serving_port({}) == 8080


def test_network_plan():
    compose_made = {"Labels": {"com.docker.compose.network": "sagemaker-local"}, "Driver": "bridge", "Options": {}}
    assert fix.network_problem(compose_made) is None
    assert "no label" in fix.network_problem({**compose_made, "Labels": {}})
    assert "driver options" in fix.network_problem({**compose_made, "Options": {"com.docker.network.driver.mtu": "1"}})
    assert fix.plan_stale_network(None, True, []).actions == []
    assert fix.plan_stale_network(compose_made, False, []).actions == []
    [remove] = fix.plan_stale_network(compose_made, True, []).actions  # compose refused it: the evidence wins
    assert remove.kind == "remove_network"
    used = fix.plan_stale_network({**compose_made, "Labels": {}}, False, ["web"])
    assert "web" in used.blocked and [a.kind for a in used.actions] == ["leave"]


def test_compose_shim_plan(tmp_path: Path):
    shim = tmp_path / "docker-compose"
    [write] = fix.plan_compose_shim(V5, tmp_path, None, True).actions
    assert write.kind == "write_shim" and write.target == str(shim)
    assert fix.plan_compose_shim(V5, tmp_path, fix.SHIM, True).actions == []  # already there
    assert fix.plan_compose_shim({**V5, "command": ["docker", "compose"]}, tmp_path, None, True).actions == []
    assert "not smdiag's shim" in fix.plan_compose_shim(V5, tmp_path, "#!/bin/sh\nreal\n", True).blocked
    assert "not on PATH" in fix.plan_compose_shim(V5, tmp_path, None, False).blocked
    assert "no Compose plugin" in fix.plan_compose_shim({**V5, "plugin_version": None}, tmp_path, None, True).blocked
    assert "no docker CLI" in fix.plan_compose_shim({**V5, "docker_cli": None}, tmp_path, None, True).blocked


def test_doctor_remedies():
    report = {"problems": [{"check": "compose"}, {"check": "docker_root"}], "compose": V5,
              "engine": {"reachable": True, "error": None}}  # fmt: skip
    remedies, suggestions = fix.doctor_remedies(report, None, allow_bootstrap=False)
    assert remedies == ["compose_shim", "stale_network"] and "bootstrap" in suggestions[0]
    assert fix.doctor_remedies(report, None, allow_bootstrap=True)[0][-1] == "bootstrap"
    assert fix.doctor_remedies(report, {"compose"}, allow_bootstrap=False) == (["compose_shim"], [])
    down = {"problems": [{"check": "engine"}], "compose": V5, "engine": {"reachable": False, "error": "refused"}}
    assert fix.doctor_remedies(down, None, False)[0] == ["start_engine"]
    denied = {**down, "engine": {"reachable": False, "error": "Permission denied"}}
    assert fix.doctor_remedies(denied, None, False)[0] == []


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
