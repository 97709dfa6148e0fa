"""The pure classification of failure evidence into a category, a summary and a hint."""

import pytest

from agent.failures import classify


def evidence(**changes):
    base = {
        "call": {"kind": "fit"},
        "exception": {"type": "RuntimeError", "message": "Failed to run: [...]. Process exited with code: 1"},
        "engine_error": None,
        "pull_errors": [],
        "containers": [],
        "compose_output": [],
        "serving_failed": False,
    }
    return {**base, **changes}


def container(logs, exit_code=1, oom=False, error=None):
    return {"name": "abc-algo-1-x", "exit_code": exit_code, "oom_killed": oom, "error": error, "logs": logs}


@pytest.mark.parametrize(
    "changes,category,in_summary",
    [
        ({"engine_error": "cannot reach the Docker engine: Connection refused"}, "daemon_down", "Connection refused"),
        (
            {"exception": {"type": "ImportError", "message": "Docker Compose is not installed. Local Mode ..."}},
            "compose_missing",
            "Compose",
        ),
        (
            {"pull_errors": [{"image": "x", "error": "write /pad.bin: no space left on device"}]},
            "disk_full",
            "no space left on device",
        ),
        (
            {"containers": [container(["OSError: [Errno 28] No space left on device: '/tmp/x'"])]},
            "disk_full",
            "Errno 28",
        ),
        (
            {"pull_errors": [{"image": "x", "error": "Head https://1.dkr.ecr...: no basic auth credentials"}]},
            "pull_auth",
            "no basic auth credentials",
        ),
        (
            {"pull_errors": [{"image": "x", "error": "manifest unknown: manifest unknown"}]},
            "image_not_found",
            "unknown",
        ),
        (
            {"pull_errors": [{"image": "x", "error": "dial tcp 127.0.0.1:1: connect: connection refused"}]},
            "registry_unreachable",
            "connection refused",
        ),
        ({"containers": [container(["Killed"], exit_code=137)]}, "oom_killed", "exit 137"),
        (
            {
                "containers": [
                    container([], exit_code=None, error="listen tcp4 0.0.0.0:8080: bind: address already in use")
                ]
            },
            "port_in_use",
            "address already in use",
        ),
        ({"containers": [container(["training...", "segfault"], exit_code=139)]}, "script_error", "exit code 139"),
        ({}, "unknown", "Process exited with code: 1"),
    ],
)
def test_categories(changes, category, in_summary):
    diagnosis = classify(evidence(**changes))
    assert diagnosis.category == category and in_summary in diagnosis.summary and diagnosis.hint


def test_the_user_traceback_is_found_even_as_the_last_lines():
    logs = [
        "epoch 1 loss 3.2",
        "Traceback (most recent call last):",
        '  File "/opt/ml/code/train.py", line 12, in <module>',
        "    main()",
        '  File "/opt/ml/code/train.py", line 3, in main',
        "    from numpy.random import seeds",
        "ImportError: cannot import name 'seeds' from 'numpy.random'",
    ]
    diagnosis = classify(evidence(containers=[container(logs)]))
    assert diagnosis.category == "script_error"
    assert diagnosis.summary.endswith("ImportError: cannot import name 'seeds' from 'numpy.random' "
                                      "(/opt/ml/code/train.py, line 3)")  # fmt: skip


def test_a_deploy_whose_container_crashed_is_serving_unhealthy_with_the_cause():
    logs = ["Traceback (most recent call last):", '  File "/opt/ml/code/inference.py", line 9', "KeyError: 'model_fn'"]
    diagnosis = classify(
        evidence(
            call={"kind": "deploy"},
            exception={"type": "RuntimeError", "message": "Giving up, endpoint didn't launch correctly"},
            containers=[container(logs, exit_code=1)],
            serving_failed=True,
        )
    )
    assert diagnosis.category == "serving_unhealthy" and "KeyError: 'model_fn'" in diagnosis.summary


def test_disk_full_hint_names_the_commands_that_fix_it():
    hint = classify(evidence(pull_errors=[{"image": "x", "error": "no space left on device"}])).hint
    assert "smdiag diskguard once" in hint and "smdiag bootstrap" in hint
