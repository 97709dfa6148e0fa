"""The catalog: each category's hint and the remedy `smdiag fix` runs, chosen once, from the evidence. The
categories that lead to a remedy are here too (from test_fix_plan.py, where fix decided the remedy again)."""

import pytest

from agent.failures import catalog
from agent.failures.classify import classify
from agent.failures.types import Evidence, Remedy

V5 = {"docker_cli": "/usr/bin/docker", "command": None, "plugin_version": "Docker Compose version v5.0.1",
      "standalone": None}  # fmt: skip


def evidence(**changes):
    """The evidence, written as a report holds it."""
    base = {"call": {"kind": "fit"}, "exception": {"type": "RuntimeError", "message": "Failed to run: [...]"},
            "pull_errors": [], "containers": [], "compose_output": []}  # fmt: skip
    return Evidence.from_dict({**base, **changes})


def test_a_refused_plugin_is_compose_unrecognised_and_no_plugin_is_compose_missing():
    error = {"type": "ImportError", "message": "Docker Compose is not installed. Local Mode features will not work"}
    refused = classify(evidence(exception=error, compose=V5))
    assert refused.category == "compose_unrecognised" and "v5.0.1" in refused.summary
    assert "smdiag fix" in refused.hint and refused.remedy == Remedy("compose_shim")
    missing = classify(evidence(exception=error, compose={**V5, "plugin_version": None}))
    assert missing.category == "compose_missing" and "smdiag fix" not in missing.hint and missing.remedy is None


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
    assert "smdiag fix" in diagnosis.hint and diagnosis.remedy == Remedy("stale_network")


@pytest.mark.parametrize(
    "report,remedy",
    [
        ({"category": "compose_unrecognised"}, "compose_shim"),
        ({"category": "compose_missing"}, None),
        ({"category": "network_conflict"}, "stale_network"),
        ({"category": "port_in_use"}, "leftover_containers"),
        ({"category": "container_root_full"}, "container_root"),
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
def test_the_remedy_of_each_category(report, remedy):
    chosen = catalog.remedy(report["category"], Evidence.from_dict(report))
    assert (chosen and chosen.name) == remedy


def test_the_port_comes_from_the_engines_error():
    line = "Cannot start service algo-1-x: driver failed: Bind for 0.0.0.0:18080 failed: port is already allocated"
    assert catalog.remedy("port_in_use", Evidence.from_dict({"compose_output": [line]})) == Remedy(
        "leftover_containers", port=18080
    )
    assert catalog.remedy("port_in_use", Evidence.from_dict({})).port == 8080
    assert Remedy("leftover_containers", port=18080).to_dict() == {"name": "leftover_containers", "port": 18080}


def test_every_category_has_a_hint_and_the_remedies_are_fixs():
    fixable = {"container_root", "free_disk", "compose_shim", "stale_network", "leftover_containers", "start_engine"}
    full = [evidence(disks=[{"role": role, "percent": 100}]) for role in ("container_root", "docker_root")]
    chosen = set()
    for name, category in catalog.CATALOG.items():
        assert category.hint, name
        chosen |= {found.name for found in map(category.remedy, full) if found}
    assert chosen == fixable  # `bootstrap` is doctor --fix's alone: no failure category chooses it


# Evidence as the recorder gathered it on the bed: a model server still starting (`sleep` in its serve script)
# when the SDK's wait, shortened by the line the hint names, ran out. SDK v2: Model.deploy with a guest that
# did not set `sdk` for v2 calls yet (tests/bed/test_failures.py); SDK v3 (3.27): sagemaker-core's
# LocalSagemakerClient.create_endpoint, whose wait is _wait_for_serving_container's `timeout`.
STILL_STARTING = {
    "compose_output": ["Attaching to efuxjk2iww-algo-1-rbae7",
                       'Creating network "sagemaker-local" with the default driver',
                       "Creating efuxjk2iww-algo-1-rbae7 ... ", "Creating efuxjk2iww-algo-1-rbae7 ... done"],
    "containers": [{"error": None, "exit_code": None, "image": "smdiag-test/never-ready:1",
                    "limits": {"memory": None, "nano_cpus": None, "runtime": "runc", "shm_size": 67108864},
                    "logs": ["loading a big model"], "logs_error": None, "name": "efuxjk2iww-algo-1-rbae7",
                    "oom_killed": False, "source": "engine", "status": "running"}],
    "exception": {"errno": None, "message": "Giving up, endpoint didn't launch correctly", "type": "RuntimeError"},
}  # fmt: skip
V2_DEPLOY = {"class_name": "Model", "endpoint": None, "images": ["smdiag-test/never-ready:1"],
             "instance_type": "local", "kind": "deploy", "sdk": None}  # fmt: skip
V3_CREATE_ENDPOINT = {"class_name": "LocalSagemakerClient", "endpoint": "e", "images": [], "instance_type": None,
                      "kind": "deploy", "sdk": "v3"}  # fmt: skip


@pytest.mark.parametrize(
    "call, line",
    [
        (V2_DEPLOY, "sagemaker.local.entities.HEALTH_CHECK_TIMEOUT_LIMIT = 600"),
        ({**V2_DEPLOY, "sdk": "v2"}, "sagemaker.local.entities.HEALTH_CHECK_TIMEOUT_LIMIT = 600"),
        (V3_CREATE_ENDPOINT, "sagemaker.core.local.entities.HEALTH_CHECK_TIMEOUT_LIMIT = 600"),
    ],
    ids=["v2, a guest that did not set sdk", "v2", "v3"],
)
def test_a_server_slower_than_the_sdks_wait_is_told_the_sdks_own_limit(call, line):
    diagnosis = classify(Evidence.from_dict({**STILL_STARTING, "call": call}))
    assert diagnosis.category == "serving_slow" and "still starting" in diagnosis.summary
    assert f"`import {line.rsplit('.', 1)[0]}; {line}`" in diagnosis.hint, diagnosis.hint
    assert "SAGEMAKER_MODEL_SERVER_TIMEOUT" not in diagnosis.hint and diagnosis.remedy is None
    assert ("_wait_for_serving_container" in diagnosis.hint) == (call["sdk"] == "v3")


def test_on_studio_a_full_engine_disk_has_the_spaces_hint():
    full = evidence(pull_errors=[{"image": "i", "error": "no space left on device"}], platform="studio")
    assert classify(full).hint == catalog.STUDIO_DISK_FULL_HINT
