"""The recorder (`python -m agent.record`): what it loads, and the report it stores from the guest's facts,
here with no engine at all (the socket the environment names does not exist)."""

import json
import subprocess
import sys
from pathlib import Path

from agent.failures import store

REPORT_KEYS = {
    "id", "time", "time_epoch", "call", "exception", "docker", "containers", "pull_errors", "compose_output",
    "compose_file", "disks", "df_h", "evidence_seconds", "category", "summary", "hint", "remedy",
}  # fmt: skip
"""report.json's keys (CONTRACT §3), `compose` and `evidence_errors` only when they have something to say."""
SDK_CONFIG_ERROR = {
    "call": {"kind": "fit", "class_name": "Estimator", "instance_type": None, "images": ["smdiag-test/fine:1"],
             "sdk": "v2"},
    "started": 0,
    "exception": {"type": "KeyError", "message": "'InstanceType'",
                  "traceback": 'Traceback (most recent call last):\n  File "/env/site-packages/sagemaker/local/'
                               'local_session.py", line 204, in create_training_job\nKeyError: \'InstanceType\'\n'},
}  # fmt: skip
"""What the guest hands over when SDK v2 refuses a job whose config has InstanceGroups (no InstanceType)."""


def test_the_recorder_installs_nothing(hermetic_env):
    """Importing the recorder and recording a failure install no import hook and load no guest: the recorder
    runs no SDK, so it needs no SMDIAG_DISABLE to dodge one. Classification loads only the failure pipeline's
    own pure modules."""
    program = f"""
import json, sys
FACTS, GUEST = ("agent.guest.facts",), ("agent.autowrap",)
before = list(sys.meta_path)
import agent.failures.classify
classify_loaded = sorted(m for m in sys.modules if m.startswith("agent") or m in ("psutil", "docker", "yaml"))
import agent.record
from agent.failures import record
from agent.settings import Settings
answer = record.record({json.dumps(SDK_CONFIG_ERROR)!r}, Settings.load())
print(json.dumps({{"meta_path_unchanged": sys.meta_path == before, "classify_loaded": classify_loaded,
                  "guest": [m for m in sys.modules if m in GUEST or m.startswith("agent.guest.") and m not in FACTS],
                  "category": answer["category"]}}))
"""
    done = subprocess.run([sys.executable, "-c", program], env=hermetic_env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["meta_path_unchanged"] and seen["guest"] == [] and seen["category"] == "sdk_config", seen
    pure = {"agent", "agent.container_logs", "agent.guest", "agent.guest.facts", "agent.failures"}
    pure |= {f"agent.failures.{name}" for name in ("catalog", "catalog_remote", "classify", "patterns", "types")}
    assert set(seen["classify_loaded"]) <= pure, seen["classify_loaded"]


def record(facts: dict, env: dict) -> tuple[dict, dict]:
    done = subprocess.run([sys.executable, "-m", "agent.record"], input=json.dumps(facts), env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    return answer, json.loads((Path(answer["path"]) / "report.json").read_text())


def test_an_sdk_error_with_no_engine_is_the_sdks_and_the_report_keeps_its_keys(hermetic_env):
    answer, report = record(SDK_CONFIG_ERROR, hermetic_env)
    assert set(answer) == {"path", "id", "category", "summary", "hint", "remedy"}
    assert (answer["category"], answer["remedy"]) == ("sdk_config", None)
    assert "KeyError: 'InstanceType'" in answer["summary"] and "start" not in answer["hint"]
    assert set(report) == REPORT_KEYS and report["id"] == answer["id"] == Path(answer["path"]).name
    assert report["call"]["class_name"] == "Estimator" and report["remedy"] is None
    assert report["docker"]["error"].startswith("cannot reach the Docker engine")  # beside the diagnosis


def test_facts_from_an_older_guest_are_read_and_a_down_engine_it_went_to_is_the_cause(hermetic_env):
    """A kernel keeps its hook's copy until it restarts: the old names (`class`, `compose_output`) still work,
    and a call that went to the engine (compose ran) is told to start it."""
    facts = {"call": {"kind": "fit", "class": "Estimator", "images": []}, "started": 0,
             "exception": {"type": "RuntimeError", "message": "Failed to run: ['docker-compose', 'up']"},
             "compose_output": ["ERROR: Couldn't connect to Docker daemon - is it running?"]}  # fmt: skip
    answer, report = record(facts, hermetic_env)
    assert (answer["category"], answer["remedy"]) == ("daemon_down", "start_engine")
    assert report["remedy"] == {"name": "start_engine"} and report["call"]["class_name"] == "Estimator"
    assert report["compose_output"] == facts["compose_output"]


def test_a_call_that_returned_is_shown_as_such_not_as_an_empty_exception():
    """Issue 30: a deploy the SDK let return on another endpoint has no exception to show."""
    returned = {"exception": {"type": "", "message": "deploy() returned, but /ping on port 8080 was answered by x"}}
    assert "exception: none, the call returned (deploy() returned, but" in store.format_report(returned)
    raised = {"exception": {"type": "RuntimeError", "message": "Failed to run"}}
    assert "exception: RuntimeError: Failed to run" in store.format_report(raised)


def test_a_stalled_jobs_report_shows_the_last_lines_of_the_host_that_wrote_last():
    """No host wrote an error line (a stall stopped at the max runtime): the lines that show how it ended are
    the last host's to write, not none at all."""
    hosts = [{"stream": f"job/algo-{n}-1", "host": f"algo-{n}", "lines": [f"algo-{n} epoch 2/10"], "last_time": t}
             for n, t in ((1, 100.0), (2, 250.0), (3, 90.0))]  # fmt: skip
    report = {"exception": {"type": "", "message": ""}, "category": "debugger_hook_stall",
              "remote": {"resource": "training", "name": "job", "region": "us-east-1", "logs": hosts,
                         "job": {"TrainingJobStatus": "Stopped", "SecondaryStatus": "MaxRuntimeExceeded"}}}  # fmt: skip
    text = store.format_report(report)
    assert "log job/algo-2-1:" in text and "| algo-2 epoch 2/10" in text, text
    assert "2 other host stream(s) with no error line" in text
