"""The kernel hook is a guest for managed calls too: the same managed SageMaker call
(testbed/guest_program_remote.py), SDK v2 in the host's interpreter and v3 in its cached environment, run in
an environment with the hook and in one without, against moto (testbed/remote_aws: each run's job given the
case's state, or its Create refused), and the user sees the same thing.

Compared: stdout and stderr, the exception (type and message) and every AWS API call the user's process
made, with its parameters (botocore's clients, whichever session made them). Removed before comparing, and
only these: job-name timestamps and the times the SDK prints, which differ between any two runs; in a failing
call the wrapper's own summary (stderr) and note (exception). What the report says of the cause is the
recorder's (tests/bed/test_remote_cases.py); here, that it is there, for this call, once.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from agent.host import kernels
from testbed import TESTBED, bed, guest_runs
from testbed.remote_aws import BUCKET, IMAGE, ROLE, JobState, ManagedAws

pytestmark = [pytest.mark.timeout(600 + bed.SDK_BUILD_TIMEOUT_S)]

PROGRAM = TESTBED / "guest_program_remote.py"
FAILED = JobState(
    status="Failed",
    failure_reason='AlgorithmError: ExecuteUserScriptError:\nExitCode 1\nErrorMessage ""',
    logs={"algo-1": ["Traceback (most recent call last):", "ZeroDivisionError: division by zero"]},
)
COMPLETED = JobState(status="Completed", secondary_status="Completed", logs={"algo-1": ["training done"]})
VARYING = [
    (re.compile(r"\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}-\d{3}"), "<job time>"),  # v2's job names
    (re.compile(r"guest-\d{14}(-[0-9a-f]{4})?"), "guest-<job time>"),  # v3's
    (re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d+)?(\+00:00)?"), "<time>"),  # the times the SDK prints
    (re.compile(r"\[\d\d/\d\d/\d\d \d\d:\d\d:\d\d\]"), " " * 19),  # rich's log time column
    (re.compile(r"(algo-\d+)-\d{10}\b"), r"\1-<epoch>"),  # a host's log stream, named at the job's start
    (re.compile(r" at 0x[0-9a-f]+>"), " at <address>>"),
]


class RemoteGuests:
    """Two environments of one SDK: `plain`, and `hooked` with the kernel hook enabled; AWS is `aws`, reset
    before each run (its bucket made again)."""

    def __init__(self, tmp_path: Path, env: dict[str, str], aws: ManagedAws, sdk_site: str | None) -> None:
        self.state = Path(env["SMDIAG_STATE_DIR"])
        self.aws = aws
        self.work = tmp_path / "work"
        self.work.mkdir()
        self.envs = {}
        for name in ("plain", "hooked"):
            path = tmp_path / "envs" / name
            self.envs[name] = bed.packages_venv(path, sdk_site) if sdk_site else bed.host_packages_venv(path)
        enabled = kernels.enable(self.state, [str(self.envs["hooked"])], Path(sys.executable))
        assert enabled["ok"], enabled
        # v3 validates the role with IAM's SimulatePrincipalPolicy, which moto lacks
        self.env = {**env, **aws.env(tmp_path), "HOME": str(tmp_path / "home"), "PYTHONHASHSEED": "0",
                    "SAGEMAKER_VALIDATE_ROLE": "false"}  # fmt: skip
        self.runs = 0

    def run(self, where: str, scenario: str) -> guest_runs.Run:
        self.runs += 1
        urllib.request.urlopen(urllib.request.Request(f"{self.aws.endpoint}/moto-api/reset", method="POST")).close()
        self.aws.client("s3").create_bucket(Bucket=BUCKET)
        result = self.work / f"run{self.runs}.json"
        done = subprocess.run(
            [str(self.envs[where] / "bin" / "python"), str(PROGRAM), scenario, str(result), ROLE, BUCKET, IMAGE],
            env=self.env, cwd=self.work, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        return guest_runs.Run(done.stdout, done.stderr, json.loads(result.read_text()), VARYING)

    def both(self, scenario: str, state: JobState | None = None, refused: tuple[str, str] | None = None,
             resource: str = "training"):  # fmt: skip
        """The scenario once in each environment, its job (of `resource`) given `state`, or its Create refused
        (code, message)."""
        runs = []
        for where in ("plain", "hooked"):
            aws = self.aws
            with aws.refuse_create(*refused, resource) if refused else aws.next_job(state, resource) as created:
                runs.append(self.run(where, scenario))
            runs[-1].created = [] if refused else list(created)
        return runs

    def reports(self) -> list[dict]:
        return [json.loads(p.read_text()) for p in sorted(self.state.glob("failures/*/report.json"))]


def assert_same(plain: guest_runs.Run, hooked: guest_runs.Run) -> None:
    guest_runs.assert_same_output(plain, hooked)
    assert hooked.api == plain.api
    assert plain.result["exception"] is None or plain.result["exception"]["notes"] == []


def assert_reported_once(guests: RemoteGuests, hooked: guest_runs.Run, headline: str, call_kind: str) -> dict:
    """The note, the summary on stderr naming the managed call, and one report for this call."""
    [note] = hooked.result["exception"]["notes"]
    assert note.startswith("smdiag: ") and "smdiag last-failure" in note
    [summary] = [match.group(0) for match in guest_runs.SUMMARY.finditer(hooked.stderr)]
    assert summary.startswith(f"\nsmdiag: {headline} ["), hooked.stderr[-3000:]
    [report] = guests.reports()
    assert report["call"]["kind"] == call_kind
    assert report["exception"]["type"] == hooked.exception["type"]
    return report


@pytest.fixture(scope="module")
def aws():
    with ManagedAws() as managed:
        yield managed


@pytest.fixture
def v2(tmp_path, hermetic_env, aws) -> RemoteGuests:
    return RemoteGuests(tmp_path, hermetic_env, aws, None)


@pytest.fixture
def v3(tmp_path, hermetic_env, aws, sdk_v3_site) -> RemoteGuests:
    return RemoteGuests(tmp_path, hermetic_env, aws, sdk_v3_site)


def test_a_failing_managed_fit_raises_the_sdks_exception_with_a_note_and_a_report(v2):
    plain, hooked = v2.both("v2_fit", FAILED)
    assert_same(plain, hooked)
    assert plain.exception["type"] == "UnexpectedStatusException"
    assert "ExecuteUserScriptError" in plain.exception["message"]
    [name] = hooked.created
    report = assert_reported_once(v2, hooked, f"managed training job {name} failed", "fit")
    assert report["call"]["sdk"] == "v2" and report["call"]["instance_type"] == "ml.m5.xlarge"


def test_a_completed_managed_fit_is_the_sdks_alone(v2):
    plain, hooked = v2.both("v2_fit", COMPLETED)
    assert_same(plain, hooked)
    assert plain.exception is None and "fit returned guest-" in plain.stdout
    assert "smdiag" not in hooked.stderr and v2.reports() == []


def test_a_fit_refused_at_create_is_reported_without_a_job(v2):
    plain, hooked = v2.both("v2_fit", refused=("ResourceLimitExceeded", QUOTA))
    assert_same(plain, hooked)
    assert plain.exception["type"] == "ResourceLimitExceeded"  # botocore's ClientError of that code
    assert "(ResourceLimitExceeded) when calling the CreateTrainingJob operation" in plain.exception["message"]
    assert [call[1] for call in plain.api][-1] == "CreateTrainingJob"
    assert_reported_once(v2, hooked, "managed training job failed", "fit")


def test_a_failing_managed_processing_job_and_endpoint_are_reported_as_such(v2):
    plain, hooked = v2.both("v2_process", FAILED, resource="processing")
    assert_same(plain, hooked)
    assert plain.exception["type"] == "UnexpectedStatusException" and "Processing job" in plain.exception["message"]
    [name] = hooked.created
    assert_reported_once(v2, hooked, f"managed processing job {name} failed", "process")

    for report in v2.state.glob("failures/*"):  # one report per call: the next assertion counts anew
        shutil.rmtree(report)
    failed = JobState(status="Failed", failure_reason="The primary container for production variant AllTraffic did "
                      "not pass the ping health check.")  # fmt: skip
    plain, hooked = v2.both("v2_deploy", failed, resource="endpoint")
    assert_same(plain, hooked)
    assert plain.exception["type"] == "UnexpectedStatusException" and "ping health check" in plain.exception["message"]
    assert_reported_once(v2, hooked, "managed endpoint guest-endpoint failed", "deploy")


QUOTA = (
    "The account-level service limit 'ml.m5.xlarge for training job usage' is 0 Instances, with current "
    "utilization of 0 Instances and a request delta of 1 Instances. Please use AWS Service Quotas to request "
    "an increase for this quota."
)


def test_a_failing_managed_train_in_sdk_v3_raises_the_sdks_exception_with_a_note_and_a_report(v3):
    plain, hooked = v3.both("v3_train", FAILED)
    assert_same(plain, hooked)
    assert plain.exception["type"] == "FailedStatusError" and "ExecuteUserScriptError" in plain.exception["message"]
    [name] = hooked.created
    report = assert_reported_once(v3, hooked, f"managed training job {name} failed", "train")
    assert report["call"]["sdk"] == "v3" and report["call"]["images"] == [IMAGE]


def test_a_completed_managed_train_and_a_refused_one_in_sdk_v3(v3):
    plain, hooked = v3.both("v3_train", COMPLETED)
    assert_same(plain, hooked)
    assert plain.exception is None and "train returned" in plain.stdout
    assert "smdiag" not in hooked.stderr and v3.reports() == []

    plain, hooked = v3.both("v3_train", refused=("ResourceLimitExceeded", QUOTA))
    assert_same(plain, hooked)
    assert plain.exception["type"] == "ResourceLimitExceeded"  # botocore's ClientError of that code
    assert "(ResourceLimitExceeded) when calling the CreateTrainingJob operation" in plain.exception["message"]
    assert_reported_once(v3, hooked, "managed training job failed", "train")


def test_a_users_own_wait_on_a_sagemaker_core_job_reports_its_failure(v3):
    plain, hooked = v3.both("v3_wait", FAILED)
    assert_same(plain, hooked)
    assert plain.exception["type"] == "FailedStatusError"
    assert_reported_once(v3, hooked, "managed training job guest-core-job failed", "wait")
