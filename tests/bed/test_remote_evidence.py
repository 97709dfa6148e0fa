"""The recorder's evidence of a failed managed job, against moto over HTTP: the Describe, every host's log
stream (more than one page of streams and of events), the host that failed first, a Create refusal and its
quota, a source the role may not read, and AWS that never answers. The recorder runs as the guest runs it
(`python -m agent.record`, the facts on stdin) unless a test reads one source in-process."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from agent.remote import evidence
from testbed.remote_aws import BUCKET, IMAGE, REGION, ROLE, JobState, ManagedAws, Refusal, sagemaker_quotas

HOSTS = 53
"""More hosts than one DescribeLogStreams page holds (50)."""
LINES = 260
"""More lines per host than one GetLogEvents page (LOG_PAGE_EVENTS) and than the report keeps."""
SECRET = "hf_Zq8v2LmN4pR7sT1uW3xY5zA6bC9dE0fG"


@pytest.fixture(scope="module")
def aws():
    with ManagedAws() as managed:
        yield managed


@pytest.fixture
def env(aws, hermetic_env, tmp_path) -> dict[str, str]:
    return {**hermetic_env, **aws.env(tmp_path)}


def facts(name: str | None, message: str = "", resource: str = "training", **parameters) -> str:
    """What the guest hands the recorder for a failed managed call."""
    return json.dumps(
        {
            "call": {"kind": "fit", "class_name": "Estimator", "sdk": "v2"},
            "started": time.time(),
            "exception": {"type": "UnexpectedStatusException", "message": message},
            "remote": {"resource": resource, "name": name, "region": REGION, "parameters": parameters},
        }
    )


def record(text: str, env: dict[str, str], timeout: float = 60) -> tuple[dict, dict, str]:
    """Run the recorder; its answer, the stored report.json and report.txt."""
    done = subprocess.run(
        [sys.executable, "-m", "agent.record"], input=text, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    answer = json.loads(done.stdout)
    directory = Path(answer["path"])
    return answer, json.loads((directory / "report.json").read_text()), (directory / "report.txt").read_text()


def distributed_logs() -> dict[str, list]:
    """A 53-host job whose algo-37 dies first (CUDA OOM at 231 s); algo-2 aborts after it (NCCL watchdog, 240 s);
    every host writes LINES lines, one a second, the errors inside the last lines kept."""
    logs = {}
    for n in range(1, HOSTS + 1):
        lines = [(float(i), f"algo-{n} step {i} loss 0.{i:03d}") for i in range(LINES)]
        if n == 37:
            lines[230] = (230.0, "Traceback (most recent call last):")
            lines[231] = (231.0, "RuntimeError: CUDA out of memory. Tried to allocate 288.00 MiB (GPU 0)")
        if n == 2:
            lines[240] = (240.0, "[E ProcessGroupNCCL.cpp:475] Some NCCL operations have failed or timed out. SIGABRT")
        logs[f"algo-{n}"] = lines
    return logs


def test_describe_and_every_hosts_logs_name_the_host_that_failed_first(aws, env):
    name = "dist-train-oom"
    reason = 'AlgorithmError: ExecuteUserScriptError:\nExitCode 1\nErrorMessage ""'
    aws.put_job(
        name,
        JobState(failure_reason=reason, logs=distributed_logs(), training_seconds=140),
        Environment={"HF_TOKEN": SECRET},
        ResourceConfig={"InstanceType": "ml.g5.xlarge", "InstanceCount": HOSTS, "VolumeSizeInGB": 50},
    )
    message = f"Error for Training job {name}: Failed. Reason: {reason}"
    started = time.monotonic()
    answer, report, text = record(facts(name, message, instance_count=HOSTS), env)
    print(f"recorder: exception -> report on disk in {time.monotonic() - started:.2f} s ({HOSTS} hosts)")

    remote = report["remote"]
    assert remote["job"]["TrainingJobStatus"] == "Failed" and remote["job"]["FailureReason"] == reason
    assert remote["job"]["ResourceConfig"]["InstanceCount"] == HOSTS
    assert isinstance(remote["job"]["CreationTime"], float) and "ResponseMetadata" not in remote["job"]
    assert remote["parameters"] == {"instance_count": HOSTS}
    assert sorted(log["host"] for log in remote["logs"]) == sorted(f"algo-{n}" for n in range(1, HOSTS + 1))
    by_host = {log["host"]: log for log in remote["logs"]}
    kept = by_host["algo-5"]["lines"]
    assert len(kept) == evidence.REMOTE_LOG_LINES and kept[-1] == f"algo-5 step {LINES - 1} loss 0.{LINES - 1:03d}"
    assert kept[0] == f"algo-5 step {LINES - evidence.REMOTE_LOG_LINES} loss 0.{LINES - evidence.REMOTE_LOG_LINES:03d}"
    assert by_host["algo-37"]["first_error"].startswith("RuntimeError: CUDA out of memory")
    assert by_host["algo-2"]["first_error"].endswith("SIGABRT")
    assert by_host["algo-37"]["first_error_time"] < by_host["algo-2"]["first_error_time"]
    assert by_host["algo-5"]["first_error"] is None
    assert "evidence_errors" not in report
    assert "first failing host: algo-37" in text and "RuntimeError: CUDA out of memory" in text
    assert "ExitCode 1" in text and "status:   Failed" in text
    assert SECRET not in json.dumps(report) and SECRET not in text
    assert answer["category"] == report["category"] == "job_out_of_memory"  # CLASSIFY's rules (r-classify)
    assert "algo-37" in answer["summary"]


def test_a_create_refused_for_its_quota_keeps_the_refusal_and_reads_the_quota(aws, env):
    quota = "ml.p3.2xlarge for training job usage"
    refused = (
        f"The account-level service limit '{quota}' is 0 Instances, with current utilization of 0 Instances "
        "and a request delta of 1 Instances. Please contact AWS support to request an increase for this limit."
    )
    with aws.refuse_create("ResourceLimitExceeded", refused), pytest.raises(ClientError) as raised:
        aws.client("sagemaker").create_training_job(**training_job("never-made"))
    with sagemaker_quotas({quota: 0.0}, codes={quota: "L-2B0FE5EA"}, others=120):
        _, report, text = record(facts("never-made", str(raised.value)), env)

    remote = report["remote"]
    assert remote["refusal"] == {"code": "ResourceLimitExceeded", "operation": "CreateTrainingJob", "message": refused}
    assert remote["quota"] == {"name": quota, "value": 0.0, "code": "L-2B0FE5EA"}
    assert remote["job"] is None and remote["logs"] == []  # no job exists: nothing else was asked
    assert "evidence_errors" not in report
    assert "refused:  CreateTrainingJob: ResourceLimitExceeded" in text and "L-2B0FE5EA" in text
    assert report["category"] == "quota_exceeded" and quota in report["hint"] + report["summary"]


def quota_refusal(quota: str, value: int) -> str:
    return (
        f"The account-level service limit '{quota}' is {value} Instances, with current utilization of {value} "
        "Instances and a request delta of 1 Instances. Please contact AWS support to request an increase for this "
        "limit."
    )


def test_a_quota_never_changed_is_its_default_as_the_preflight_reads_it(aws, env):
    """GetServiceQuota answers NoSuchResourceException for a quota never changed: its default applies (the
    preflight's reading, agent.remote.quotas, shared), the quota is not lost."""
    quota = "ml.g5.12xlarge for training job usage"
    refused = quota_refusal(quota, 2)
    with aws.refuse_create("ResourceLimitExceeded", refused), pytest.raises(ClientError) as raised:
        aws.client("sagemaker").create_training_job(**training_job("never-made-default"))
    with sagemaker_quotas({}, codes={quota: "L-3C0FE5EA"}, unapplied={quota: 2.0}, others=120):
        _, report, text = record(facts("never-made-default", str(raised.value)), env)

    assert report["remote"]["quota"] == {"name": quota, "value": 2.0, "code": "L-3C0FE5EA"}
    assert "evidence_errors" not in report
    assert f"quota:    {quota}: 2.0 applied (L-3C0FE5EA)" in text


def test_a_quota_value_the_role_may_not_read_keeps_the_quota_found_and_says_why(aws, env):
    quota = "ml.g5.24xlarge for training job usage"
    refused = quota_refusal(quota, 0)
    with aws.refuse_create("ResourceLimitExceeded", refused), pytest.raises(ClientError) as raised:
        aws.client("sagemaker").create_training_job(**training_job("never-made-denied"))
    keys = user_denied(aws, "no-quota-value-reader", "servicequotas:GetServiceQuota")
    from moto.core.authorization import enable_iam_authentication

    with sagemaker_quotas({quota: 0.0}, codes={quota: "L-4D0FE5EA"}), enable_iam_authentication():
        _, report, _ = record(facts("never-made-denied", str(raised.value)), {**env, **keys})

    assert report["remote"]["quota"] == {"name": quota, "value": 0.0, "code": "L-4D0FE5EA"}  # the refusal's value
    error = report["evidence_errors"]["quota"]
    assert error.startswith("AccessDenied") and error.endswith("(needs servicequotas:GetServiceQuota)")
    assert report["category"] == "quota_exceeded" and "L-4D0FE5EA" in report["hint"] + report["summary"]


def test_a_log_read_the_role_may_not_make_is_recorded_with_its_permission(aws, env):
    name = "logs-denied"
    aws.put_job(name, JobState(failure_reason="AlgorithmError: ExitCode 1", logs={"algo-1": ["ValueError: x"]}))
    keys = user_denied(aws, "no-log-reader", "logs:GetLogEvents")
    from moto.core.authorization import enable_iam_authentication

    with enable_iam_authentication():
        _, report, text = record(facts(name), {**env, **keys})

    assert report["remote"]["job"]["FailureReason"] == "AlgorithmError: ExitCode 1"  # Describe was allowed
    assert report["remote"]["logs"] == []
    error = report["evidence_errors"]["logs"]
    assert error.startswith("AccessDenied") and error.endswith("(needs logs:GetLogEvents)")
    assert keys["AWS_SECRET_ACCESS_KEY"] not in json.dumps(report)
    assert "not gathered: logs: AccessDenied" in text


def test_one_hosts_log_stream_refused_keeps_the_other_hosts_logs(aws, env):
    """GetLogEvents throttled on algo-2's stream alone: algo-1's and algo-3's logs stay in the report, and the
    report says which stream could not be read and why."""
    name = "one-stream-throttled"
    logs = {f"algo-{n}": [f"algo-{n} step 1", f"algo-{n} step 2"] for n in (1, 2, 3)}
    logs["algo-3"].append("ValueError: bad shape (3,) for input")
    aws.put_job(name, JobState(failure_reason="AlgorithmError: ExitCode 1", logs=logs))
    with aws.refuse_log_reads("algo-2", Refusal("ThrottlingException", "Rate exceeded")):
        _, report, text = record(facts(name, instance_count=3), env)

    by_host = {log["host"]: log for log in report["remote"]["logs"]}
    assert sorted(by_host) == ["algo-1", "algo-3"]
    assert by_host["algo-3"]["first_error"] == "ValueError: bad shape (3,) for input"
    error = report["evidence_errors"]["logs"]
    assert error.startswith("1 of 3 log streams not read whole, the others kept: algo-2 (not read: ThrottlingException")
    assert "(asking logs:GetLogEvents)" in error
    assert "not gathered: logs: 1 of 3 log streams" in text and "ValueError: bad shape" in text


def test_an_endpoint_is_read_with_its_config_and_its_instances_logs(aws, env):
    name = "ep-load-failed"
    state = JobState(
        failure_reason="The primary container for production variant AllTraffic did not pass the ping health check.",
        logs={"i-0a1b2c3d4e5f": ["Load model failed: model, error: Worker died."]},
    )
    sagemaker = aws.client("sagemaker")
    sagemaker.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={"Image": IMAGE})
    sagemaker.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}
        ],
    )
    with aws.next_job(state, "endpoint"):
        sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=name)

    _, report, text = record(facts(name, resource="endpoint"), env)

    job = report["remote"]["job"]
    assert job["EndpointStatus"] == "Failed" and job["EndpointConfig"]["ProductionVariants"][0]["ModelName"] == name
    [log] = report["remote"]["logs"]
    assert log["host"] == "i-0a1b2c3d4e5f" and log["first_error"] == "Load model failed: model, error: Worker died."
    assert "managed endpoint ep-load-failed" in text and "first failing host: i-0a1b2c3d4e5f" in text
    assert report["category"] == "model_load_failed"


def test_aws_that_never_answers_still_gets_a_report_within_the_budget(env):
    with silent_listener() as endpoint:
        _, report, text = record(
            facts("stalled-job"), {**env, "AWS_ENDPOINT_URL": endpoint}, timeout=evidence.REMOTE_BUDGET_S + 30
        )

    errors = report["evidence_errors"]
    assert errors["describe"].startswith("no answer from") and "DescribeTrainingJob" in errors["describe"]
    assert errors["logs"].startswith("not asked: no answer from")
    assert sum(report["evidence_seconds"].values()) <= evidence.REMOTE_BUDGET_S
    assert report["remote"]["job"] is None and "not gathered: describe: no answer" in text


def test_the_gathering_of_one_source_is_cut_at_the_budget(env, monkeypatch):
    """In-process: a budget shorter than one call's timeout still ends the gathering at the budget."""
    for variable in [v for v in os.environ if v.startswith("AWS_")]:
        monkeypatch.delenv(variable)
    with silent_listener() as endpoint:
        for variable, value in {**env, "AWS_ENDPOINT_URL": endpoint}.items():
            if variable.startswith("AWS_"):
                monkeypatch.setenv(variable, value)
        remote, errors, seconds = evidence.gather("processing", "stalled-processing", REGION, {}, budget_s=1.5)
    assert remote.job is None and remote.logs == []
    assert "DescribeProcessingJob" in errors["describe"] or "budget" in errors["describe"]
    assert seconds["describe"] < 1.5 + 2  # the budget, not one call's timeout (aws.CALL_TIMEOUT_S, 5 s)


# ------------------------------------------------------------------------------------------------ helpers


def training_job(name: str) -> dict:
    return {
        "TrainingJobName": name,
        "RoleArn": ROLE,
        "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/out"},
        "ResourceConfig": {"InstanceType": "ml.p3.2xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
    }


def user_denied(aws: ManagedAws, user: str, action: str) -> dict[str, str]:
    """Keys of an IAM user allowed everything but `action` (moto enforces IAM once asked to)."""
    iam = aws.client("iam")
    iam.create_user(UserName=user)
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "*", "Resource": "*"},
            {"Effect": "Deny", "Action": action, "Resource": "*"},
        ],
    }
    iam.put_user_policy(UserName=user, PolicyName="all-but-one", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    return {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}


@contextlib.contextmanager
def silent_listener():
    """An endpoint that accepts every connection and never answers: AWS stalled."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                accepted.append(server.accept()[0])

    worker = threading.Thread(target=accept, daemon=True)
    worker.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        worker.join()
        for connection in accepted:
            connection.close()
        server.close()


def test_the_recorder_loads_boto3_only_for_a_remote_call(hermetic_env, env, aws):
    """A local-mode failure's recorder starts as lean as before: AWS's SDK is loaded by a remote call alone,
    and a remote call's report loads neither docker-py nor YAML (no engine, no compose file to read)."""
    probe = "import sys, agent.record; print(sorted(m for m in ('boto3', 'botocore') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], env=hermetic_env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    aws.put_job("lean-recorder", JobState(status="Failed", failure_reason="AlgorithmError: ExitCode 1"))
    program = f"""
import json, sys
from agent.failures import record
from agent.settings import Settings
answer = record.record({facts("lean-recorder")!r}, Settings.load())
print(json.dumps({{"loaded": sorted(m for m in ("docker", "yaml", "boto3") if m in sys.modules),
                  "category": answer["category"]}}))
"""
    done = subprocess.run([sys.executable, "-c", program], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["loaded"] == ["boto3"] and seen["category"], seen
