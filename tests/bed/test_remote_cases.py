"""Every managed-job case of ../shared/REMOTE_FAILURES.md (testbed/remote_cases.py) as its user met it, with the
kernel hook on, against moto (ThreadedMotoServer in this process: testbed/remote_aws.py): SDK v2's `fit`,
`Processor.run`, `Transformer.transform`, `Model.deploy`, and SDK v3's `ModelTrainer.train` for the training
cases. The user still gets the SDK's own exception; smdiag adds its note, its summary on stderr and a report whose
category, summary and hint name the case's cause and fix; `smdiag job NAME` says the same after the fact, also
for a job that Stopped while the call returned.

One program per SDK runs all its cases in a row (testbed/remote_runs.py), once per module: each test reads its
case's part.
"""

from __future__ import annotations

import json
import re
import socket
import threading

import pytest

from testbed import bed, remote_cases
from testbed.remote_aws import ManagedAws, Refusal
from testbed.remote_case import judge
from testbed.remote_runs import Users, job_flag

# One worker runs the module: its programs run once, for all its tests.
pytestmark = [
    pytest.mark.bed,
    pytest.mark.timeout(900 + bed.SDK_BUILD_TIMEOUT_S),
    pytest.mark.xdist_group("remote-cases"),
]

V2 = [c for c in remote_cases.CASES if "v2" in c.sdks]
V3 = [c for c in remote_cases.CASES if "v3" in c.sdks]
WITH_A_JOB = [c for c in remote_cases.CASES if c.where != "C"]
SUMMARY = re.compile(r"^smdiag: managed .*\[(\w+)\]$", re.MULTILINE)
"""The first line of the wrapper's summary of a failed managed call."""
SDK_EXCEPTIONS = {
    ("v2", "C"): "ClientError",
    ("v2", "J"): "UnexpectedStatusException",
    ("v3", "C"): "ClientError",
    ("v3", "J"): "FailedStatusError",
}
"""The class each SDK raises (the exception's own class or a base of it): a refused Create, a job that failed."""


def expected_exception(sdk: str, case) -> str:
    if case.describe_refusal:
        return "ClientError"
    if case.wait_timeout:
        return "TimeoutExceededError"
    return SDK_EXCEPTIONS[sdk, "C" if case.where == "C" else "J"]


@pytest.fixture(scope="module")
def aws():
    with ManagedAws() as managed:
        yield managed


@pytest.fixture(scope="module")
def users(tmp_path_factory, aws, bed_ready) -> Users:
    return Users(tmp_path_factory.mktemp("remote-cases"), aws)


@pytest.fixture(scope="module")
def v2_runs(users):
    return users.run("v2", V2)


@pytest.fixture(scope="module")
def v3_runs(users, sdk_v3_site):
    users.v3_site = sdk_v3_site
    return users.run("v3", V3)


def assert_reported(sdk: str, run) -> None:
    """The SDK's own exception, smdiag's note on it and its summary on stderr, and a right report."""
    case, raised = run.case, run.raised
    if case.returns:
        assert raised is None and run.report is None, f"{case.id}: the SDK returns for a {case.status} job"
        return
    assert raised is not None, f"{case.id}: the call returned"
    assert expected_exception(sdk, case) in raised["classes"], raised
    own_text = case.refusal or case.describe_refusal or Refusal("", (case.failure_reason or ""))
    if own_text.message:  # a wait that ran out has only the SDK's own words
        assert own_text.message.splitlines()[0] in raised["message"]  # the SDK's text, as it made it
    assert run.report is not None, f"{case.id}: no report within the program's wait\n{run.stderr[-3000:]}"
    assert judge(case, run.report) == [], (run.report.get("summary"), run.report.get("hint"))
    [note] = [n for n in raised["notes"] if n.startswith("smdiag")]
    assert case.category in note and "smdiag last-failure" in note
    assert SUMMARY.findall(run.stderr) == [case.category], run.stderr[-3000:]
    if run.job:
        assert run.job in run.stderr


@pytest.mark.parametrize("case", V2, ids=lambda c: c.id)
def test_a_failed_v2_call_is_reported_with_the_cause_and_the_fix(v2_runs, case):
    assert_reported("v2", v2_runs[case.id])


@pytest.mark.parametrize("case", V3, ids=lambda c: c.id)
def test_a_failed_v3_train_is_reported_with_the_cause_and_the_fix(v3_runs, case):
    assert_reported("v3", v3_runs[case.id])


@pytest.mark.parametrize("case", WITH_A_JOB, ids=lambda c: c.id)
def test_smdiag_job_names_the_same_cause_after_the_fact(v2_runs, v3_runs, smdiag, aws, tmp_path, case):
    run = (v2_runs if "v2" in case.sdks else v3_runs)[case.id]
    assert run.job, f"{case.id}: no job was created"
    done = smdiag("job", run.job, *job_flag(case.resource), "--json", env=aws.env(tmp_path))
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    if case.job_category:  # not the job's failure: what the job is doing now
        assert answer["category"] == case.job_category, answer
    else:
        assert judge(case, answer) == [], (answer["category"], answer["summary"], answer["hint"])


def test_a_job_stopped_at_its_max_runtime_is_named_though_fit_returned(v2_runs, smdiag, aws, tmp_path):
    run = v2_runs["F11"]
    assert run.raised is None and run.report is None  # fit() only logged the SDK's warning
    assert "Stopped" in run.stderr
    done = smdiag("job", run.job, env=aws.env(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "max_runtime" in done.stdout and "max_run" in done.stdout


def test_no_report_but_the_failed_calls(users, v2_runs, v3_runs):
    """Each raising call left one report, and the calls that returned none."""
    raised = [r for runs in (v2_runs, v3_runs) for r in runs.values() if r.raised]
    assert len(users.reports()) == len(raised)


@pytest.fixture
def stalled_endpoint():
    """An address that accepts connections and never answers (AWS's API with no route back, a proxy hung)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def hold() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            held.append(connection)

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    listener.close()
    thread.join(10)
    for connection in held:
        connection.close()


def test_smdiag_job_answers_when_cloudwatch_never_answers(v2_runs, smdiag, aws, tmp_path, stalled_endpoint):
    """The recorder's calls are bounded: CloudWatch stalls, the Describe still names the cause, and the logs'
    source is recorded as unanswered."""
    run = v2_runs["T38"]
    env = {**aws.env(tmp_path), "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS": stalled_endpoint}
    done = smdiag("job", run.job, "--json", env=env)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["category"] == "job_disk_full"
    assert "logs" in answer.get("evidence_errors", {}), answer


def test_a_refused_create_is_reported_when_service_quotas_never_answers(users, stalled_endpoint):
    """The quota's lookup (only on ResourceLimitExceeded) stalls: the report still comes, from the refusal."""
    users.env["AWS_ENDPOINT_URL_SERVICE_QUOTAS"] = stalled_endpoint
    try:
        [run] = users.run("v2", [remote_cases.BY_ID["T01"]]).values()
    finally:
        del users.env["AWS_ENDPOINT_URL_SERVICE_QUOTAS"]
    assert judge(run.case, run.report) == []
    assert "quota" in run.report.get("evidence_errors", {}), run.report
