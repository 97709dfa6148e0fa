"""Studio's refusals as failure categories (the catalog's REFUSALS), and the engine's full disk on Studio:
pure, on the real texts (moved from tests/bed/test_studio.py with the rules, from agent/host/studio.py)."""

import pytest

from agent.failures import catalog
from agent.failures.classify import classify
from agent.failures.types import Evidence
from testbed.studio_bed import PRIVILEGED


@pytest.mark.parametrize("rule", catalog.REFUSALS, ids=[r.category for r in catalog.REFUSALS])
def test_each_refusal_is_recognised_in_its_real_text_and_named_with_the_proxys_words(rule):
    category, summary = catalog.studio_refusal(f"RuntimeError: Failed to run: [...]\n{rule.seen}\n")
    assert category == rule.category
    assert summary.startswith(f"{rule.summary}: ") and summary.removeprefix(f"{rule.summary}: ") in rule.seen


@pytest.mark.parametrize("rule", catalog.REFUSALS, ids=[r.category for r in catalog.REFUSALS])
def test_a_failure_report_names_each_refusal_with_its_fix(rule):
    diagnosis = classify(Evidence.from_dict({"exception": {"type": "RuntimeError", "message": "Failed to run"},
                                             "compose_output": rule.seen.splitlines()}))  # fmt: skip
    assert (diagnosis.category, diagnosis.hint) == (rule.category, rule.hint)


CREATE_NOSPACE = "mkdir /var/lib/docker/overlay2/3f2a9c-init: no space left on device"
"""The engine's State.Error for a container it could not create on a full data-root."""


@pytest.mark.parametrize(
    ("evidence", "category"),
    [
        ({"pull_errors": [{"image": "i", "error": "write /var/lib/docker/tmp/GetImageBlob1: no space left on device"}]},
         "disk_full"),
        ({"containers": [{"name": "algo-1-x", "error": CREATE_NOSPACE, "logs": []}],
          "disks": [{"role": "docker_root", "path": "/var/lib/docker", "percent": None}]}, "disk_full"),
    ],
)  # fmt: skip
def test_the_engines_disk_full_on_studio_has_the_spaces_hint_not_the_notebooks(evidence, category):
    """On Studio the data-root cannot be measured (percent None): the engine's own ENOSPC is its disk's."""
    failed = {"exception": {"type": "RuntimeError", "message": "Failed to run"}, **evidence}
    on_studio = classify(Evidence.from_dict({**failed, "platform": "studio"}))
    assert (on_studio.category, on_studio.hint) == (category, catalog.STUDIO_DISK_FULL_HINT)
    elsewhere = classify(Evidence.from_dict({**failed, "platform": "notebook_instance"}))
    assert elsewhere.hint != catalog.STUDIO_DISK_FULL_HINT and "bootstrap" not in on_studio.hint


def test_a_privileged_refusal_while_booting_buildkit_is_buildkits():
    text = ' => ERROR [internal] booting buildkit\nERROR: Error response from daemon: {"message":"%s"}' % PRIVILEGED
    assert catalog.studio_refusal(text)[0] == "studio_buildkit"
    assert catalog.studio_refusal('Error response from daemon: {"message":"%s"}' % PRIVILEGED)[0] == "studio_privileged"


@pytest.mark.parametrize(
    "text",
    [
        "write /var/lib/docker/tmp/GetImageBlob: no space left on device",
        'network "sagemaker-local" was found but has incorrect label com.docker.compose.network',
        "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?",
        "403 Client Error: Forbidden (denied: requested access to the resource is denied)",
    ],
)
def test_failures_elsewhere_are_not_studios(text):
    assert catalog.studio_refusal(text) is None
