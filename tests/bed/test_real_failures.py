"""The failures users hit (../shared/FAILURES.md), each reproduced on the bed with the real SDK v2 and judged
as a user would: the category, the summary quoting the evidence line, the hint naming the fix. The cases
live in testbed/failure_cases.py, which bench/diagnosis.py replays too. Families the bed cannot reproduce are
judged on the real error text their threads quote."""

from __future__ import annotations

import pytest

from agent.failures.classify import classify
from agent.failures.types import Evidence
from testbed import failure_cases

pytestmark = pytest.mark.bed


@pytest.fixture(scope="module")
def cases_bed(tmp_path_factory, bed_ready):
    made = failure_cases.Bed(tmp_path_factory.mktemp("cases"))
    yield made
    made.close()


@pytest.mark.parametrize("case", failure_cases.CASES, ids=lambda c: c.id)
def test_the_diagnosis_names_the_cause_and_the_fix(case, cases_bed):
    outcome = case.reproduce(cases_bed)
    assert outcome.raised.get("type") not in (None, "crashed"), outcome.raised  # the SDK's call failed, as for them
    assert failure_cases.judge(case, outcome) == [], (outcome.report or {}).get("summary") or outcome.output[-2000:]
    assert any(note.startswith(f"smdiag: {case.category}:") for note in outcome.raised["notes"])


# The families of FAILURES.md that the bed cannot reproduce: the evidence their threads quote, classified.
NOT_REPRODUCIBLE = [
    (
        "network_conflict",
        {"exception": {"type": "RuntimeError", "message": "Failed to run: ['docker', 'compose', ...]"},
         "compose_output": ["network sagemaker-local was found but has incorrect label "
                            'com.docker.compose.network set to ""']},
        "incorrect label",
        "docker network rm sagemaker-local",
    ),
    (
        "compose_too_old",
        {"exception": {"type": "RuntimeError", "message": "Failed to run: ['docker-compose', ...]"},
         "compose_output": ["ERROR: The Compose file './docker-compose.yaml' is invalid because:",
                            "Unsupported config option for services.algo-1-xk2tz: 'deploy'"]},
        "'deploy'",
        "docker-compose",
    ),
    (
        "docker_missing",
        {"exception": {"type": "ImportError", "message": "Docker Compose is not installed. Local Mode features "
                       "will not work without docker compose."},
         "compose": {"docker_cli": None, "plugin_version": None, "binary": None}},
        "no docker CLI",
        "enable Docker access",
    ),
    (
        "container_not_started",
        {"exception": {"type": "RuntimeError", "message": "Failed to run: ['docker-compose', ...]"},
         "compose_output": ["ERROR: for algo-1-abcde  Cannot start service algo-1-abcde: Mounts denied: The path "
                            "/opt/ml/metadata is not shared from the host and is not known to Docker."]},
        "Mounts denied",
        "share the path",
    ),
    (
        "sdk_container_mismatch",
        {"exception": {"type": "RuntimeError", "message": "Failed to run: ['docker-compose', ...]"},
         "containers": [{"name": "algo-1-abcde", "exit_code": 1, "oom_killed": False, "error": "", "logs": [
             "Traceback (most recent call last):",
             '  File "/usr/local/lib/python3.7/site-packages/sagemaker_training/environment.py", line 88, '
             "in read_resource_config",
             "FileNotFoundError: [Errno 2] No such file or directory: '/opt/ml/input/config/resourceconfig.json'"]}]},
        "resourceconfig.json",
        "upgrade the SDK",
    ),
    (
        "not_supported_locally",
        {"exception": {"type": "RuntimeError",
                       "message": "DataDistribution: ShardedByS3Key is not currently supported in Local Mode"}},
        "ShardedByS3Key",
        "run it on SageMaker",
    ),
]  # fmt: skip


@pytest.mark.parametrize("category, evidence, quoted, fix", NOT_REPRODUCIBLE, ids=[n[0] for n in NOT_REPRODUCIBLE])
def test_the_threads_own_error_text_is_named(category, evidence, quoted, fix):
    diagnosis = classify(Evidence.from_dict({"call": {"kind": "fit"}, **evidence}))
    assert diagnosis.category == category, diagnosis
    assert quoted in diagnosis.summary
    assert fix.lower() in diagnosis.hint.lower()
