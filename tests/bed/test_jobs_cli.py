"""`smdiag job NAME` and `smdiag jobs --failed` as a user runs them, against moto over HTTP: jobs left behind
by another tool, a job stopped at its max runtime (fit() returned), a processing job, bad input refused
before any AWS call, and AWS unreachable in one line."""

from __future__ import annotations

import json
import os
import socket

import pytest

from testbed.remote_aws import ROLE, JobState, ManagedAws


@pytest.fixture(scope="module")
def aws():
    with ManagedAws() as managed:
        yield managed


@pytest.fixture
def aws_env(aws, tmp_path) -> dict[str, str]:
    return aws.env(tmp_path)


def one_line_error(done) -> str:
    """The CLI's refusal: one line on stderr (after the progress lines of the steps it took), no traceback."""
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout
    lines = done.stderr.strip().splitlines()
    assert [line for line in lines if not line.startswith("jobs: ")] == lines[-1:]
    assert lines[-1].startswith("smdiag: ")
    return lines[-1]


def test_job_reads_a_failed_job_left_by_another_tool(aws, aws_env, smdiag):
    aws.put_job(
        "pipeline-step-1",
        JobState(
            failure_reason='AlgorithmError: ExecuteUserScriptError:\nExitCode 1\nErrorMessage ""',
            logs={
                "algo-1": [
                    "epoch 1",
                    "Traceback (most recent call last):",
                    '  File "train.py", line 12, in <module>',
                    "KeyError: 'label'",
                ]
            },
        ),
    )

    done = smdiag("job", "pipeline-step-1", env=aws_env)

    assert done.returncode == 0, done.stderr
    assert "managed training job pipeline-step-1 in us-east-1" in done.stdout
    assert "status:   Failed" in done.stdout and "ExitCode 1" in done.stdout
    assert "first failing host: algo-1" in done.stdout and "KeyError: 'label'" in done.stdout
    assert "not stored" in done.stdout

    as_json = smdiag("job", "pipeline-step-1", "--json", env=aws_env)
    report = json.loads(as_json.stdout)
    assert as_json.returncode == 0 and report["remote"]["job"]["TrainingJobName"] == "pipeline-step-1"
    assert report["remote"]["logs"][0]["first_error"] == "KeyError: 'label'"
    assert report["call"]["kind"] == "job" and report["category"]


def test_job_names_a_job_stopped_at_its_max_runtime(aws, aws_env, smdiag):
    aws.put_job(
        "ran-out-of-time",
        JobState(
            status="Stopped",
            secondary_status="MaxRuntimeExceeded",
            training_seconds=3600,
            transitions=[
                ("Training", "Training image download completed. Training in progress."),
                ("MaxRuntimeExceeded", "Training job stopped: exceeded MaxRuntimeInSeconds"),
            ],
        ),
        StoppingCondition={"MaxRuntimeInSeconds": 3600},
    )

    done = smdiag("job", "ran-out-of-time", "--json", env=aws_env)

    assert done.returncode == 0, done.stderr
    job = json.loads(done.stdout)["remote"]["job"]
    assert job["TrainingJobStatus"] == "Stopped" and job["SecondaryStatus"] == "MaxRuntimeExceeded"
    assert job["StoppingCondition"]["MaxRuntimeInSeconds"] == 3600 and job["TrainingTimeInSeconds"] == 3600
    assert json.loads(done.stdout)["category"] == "max_runtime"  # CLASSIFY's rules (r-classify)
    assert "status:   Stopped / MaxRuntimeExceeded" in smdiag("job", "ran-out-of-time", env=aws_env).stdout


def test_job_reads_a_processing_job_with_its_flag(aws, aws_env, smdiag):
    with aws.next_job(
        JobState(
            failure_reason="AlgorithmError: See job logs for more information",
            logs={"algo-1": ["No space left on device"]},
        ),
        "processing",
    ):
        aws.client("sagemaker").create_processing_job(
            ProcessingJobName="nightly-features",
            RoleArn=ROLE,
            AppSpecification={"ImageUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/p:1"},
            ProcessingResources={
                "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge", "VolumeSizeInGB": 5}
            },
        )

    done = smdiag("job", "nightly-features", "--processing", env=aws_env)

    assert done.returncode == 0, done.stderr
    assert "managed processing job nightly-features" in done.stdout and "No space left on device" in done.stdout
    missing = smdiag("job", "nightly-features", env=aws_env)  # not a training job
    assert missing.returncode == 1
    assert "no training job named nightly-features in us-east-1" in one_line_error(missing)


def test_job_reads_a_tuning_job_through_its_first_failed_trial(aws, aws_env, smdiag):
    trial_logs = ["epoch 1", "Traceback (most recent call last):", "ValueError: learning_rate must be positive"]
    aws.put_tuning_job(
        "hpo-nightly",
        {
            "hpo-nightly-001-a1b2c3": JobState(status="Completed"),
            "hpo-nightly-002-d4e5f6": JobState(
                failure_reason="AlgorithmError: ExitCode 1", logs={"algo-1": trial_logs}
            ),
        },
        failure_reason="No training job succeeded after 5 attempts. For additional details, see the training jobs.",
    )

    done = smdiag("job", "hpo-nightly", "--tuning", env=aws_env)
    as_json = smdiag("job", "hpo-nightly", "--tuning", "--json", env=aws_env)
    missing = smdiag("job", "hpo-nightly", env=aws_env)  # not a training job

    assert done.returncode == 0, done.stderr
    assert "hpo-nightly" in done.stdout and "ValueError: learning_rate must be positive" in done.stdout
    report = json.loads(as_json.stdout)
    job = report["remote"]["job"]
    assert job["HyperParameterTuningJobStatus"] == "Failed"
    assert job["FailedTrainingJob"]["TrainingJobName"] == "hpo-nightly-002-d4e5f6"
    assert report["remote"]["logs"][0]["first_error"] == "ValueError: learning_rate must be positive"
    assert "evidence_errors" not in report
    assert missing.returncode == 1 and "--tuning" in one_line_error(missing)


def test_jobs_failed_lists_the_recent_failures_one_line_each(aws, aws_env, smdiag):
    aws.put_job(
        "listed-failure",
        JobState(
            failure_reason="CapacityError: Unable to provision requested ML compute "
            "capacity. Please retry using a different ML instance type."
        ),
    )
    aws.put_job("listed-success", JobState(status="Completed"))

    done = smdiag("jobs", "--failed", "--since", "1d", "--json", env=aws_env)

    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    names = [job["name"] for job in result["jobs"]]
    assert "listed-failure" in names and "listed-success" not in names
    assert result["classified_from"] == "Describe only"
    line = next(job for job in result["jobs"] if job["name"] == "listed-failure")
    assert line["resource"] == "training" and line["status"] == "Failed"
    assert line["category"] == "insufficient_capacity" and "CapacityError" in line["summary"]
    text = smdiag("jobs", "--failed", env=aws_env).stdout
    assert any(row.split()[3] == "listed-failure" for row in text.splitlines() if "listed-failure" in row)
    assert "Describe only" in text


def user_denied(aws: ManagedAws, user: str, action: str) -> dict[str, str]:
    """Keys of an IAM user allowed everything but `action` (moto enforces IAM once asked to)."""
    iam = aws.client("iam")
    iam.create_user(UserName=user)
    statements = [
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Effect": "Deny", "Action": action, "Resource": "*"},
    ]
    iam.put_user_policy(UserName=user, PolicyName="all-but-one",
                        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}))  # fmt: skip
    key = iam.create_access_key(UserName=user)["AccessKey"]
    return {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}


def test_jobs_failed_keeps_the_other_kinds_when_one_listing_is_refused(aws, aws_env, smdiag):
    from moto.core.authorization import enable_iam_authentication

    aws.put_job("listed-beside-a-refusal", JobState(failure_reason="CapacityError: Unable to provision capacity."))
    no_endpoints = {**aws_env, **user_denied(aws, "jobs-no-list-endpoints", "sagemaker:ListEndpoints")}
    nothing = {**aws_env, **user_denied(aws, "jobs-no-lists", "sagemaker:List*")}
    with enable_iam_authentication():
        done = smdiag("jobs", "--failed", env=no_endpoints)
        as_json = smdiag("jobs", "--failed", "--json", env=no_endpoints)
        refused = smdiag("jobs", "--failed", env=nothing)

    assert done.returncode == 0, done.stderr
    assert any(row.split()[3] == "listed-beside-a-refusal" for row in done.stdout.splitlines() if "beside" in row)
    [line] = [line for line in done.stdout.splitlines() if line.startswith("not read: ")]
    assert line.startswith("not read: endpoints: AccessDenied") and line.endswith("(needs sagemaker:ListEndpoints)")
    result = json.loads(as_json.stdout)
    assert [kind["resource"] for kind in result["not_read"]] == ["endpoint"]
    assert "listed-beside-a-refusal" in [job["name"] for job in result["jobs"]]
    assert refused.returncode == 1  # nothing could be listed
    assert "(needs sagemaker:ListTrainingJobs)" in one_line_error(refused)


def test_jobs_failed_ends_at_its_budget_with_a_line_for_the_job_not_described(aws, aws_env, monkeypatch):
    """In-process, with a budget of 3 s: a Describe the service never answers is a line saying it was not read
    (the budget spent), the other jobs' lines stay, and the command returns."""
    from agent.remote import jobs

    aws.put_job("budget-answered", JobState(failure_reason="CapacityError: Unable to provision capacity."))
    aws.put_job("budget-stalled", JobState(failure_reason="CapacityError: Unable to provision capacity."))
    for variable in [v for v in os.environ if v.startswith("AWS_")]:
        monkeypatch.delenv(variable)
    for variable, value in aws_env.items():
        monkeypatch.setenv(variable, value)
    with aws.stall_describe("budget-stalled"):
        lines, unread = jobs.failed_jobs(86400, None, None, budget_s=3)

    by_name = {line.name: line for line in lines}
    assert unread == []
    assert by_name["budget-answered"].category == "insufficient_capacity"
    stalled = by_name["budget-stalled"]
    assert (stalled.category, stalled.summary) == ("not_read", "not read: the 3 s budget of jobs --failed was spent")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("jobs", "--failed", "--since", "1x"), "--since '1x' is not a duration"),
        (("jobs", "--failed", "--since", "0d"), "--since '0d' is no time at all"),
        (("jobs", "--since", "1d"), "add --failed"),
        (("jobs", "--failed", "--region", "mars"), "--region 'mars' is not an AWS region"),
        (("job", "bad_name!"), "is not a SageMaker job or endpoint name"),
        (("job", "x", "--processing", "--endpoint"), "--processing and --endpoint name different kinds"),
        (("job", "x", "--tuning", "--transform"), "--transform and --tuning name different kinds"),
    ],
)
def test_bad_input_is_refused_in_one_line_before_any_aws_call(args, says, smdiag, tmp_path):
    # AWS points nowhere: a refusal that asked it would say so instead.
    done = smdiag(*args, env={"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_DEFAULT_REGION": "us-east-1"})
    assert done.returncode == 2
    assert says in one_line_error(done)


def test_unreachable_aws_is_one_line_and_exit_1(aws_env, smdiag):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        nowhere = {**aws_env, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{closed.getsockname()[1]}"}
        job = smdiag("job", "any-job", env=nowhere)
        jobs = smdiag("jobs", "--failed", env=nowhere)
    assert job.returncode == 1 and "cannot read the training job any-job" in one_line_error(job)
    assert jobs.returncode == 1 and "ListTrainingJobs" in one_line_error(jobs)


def test_no_credentials_is_one_line_and_exit_1(smdiag):
    done = smdiag("job", "any-job", env={"AWS_DEFAULT_REGION": "us-east-1"})  # hermetic: no keys, no profile
    assert done.returncode == 1
    assert "no AWS credentials found" in one_line_error(done)
