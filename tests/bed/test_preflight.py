"""`smdiag doctor --remote`, the preflight before a managed job, through the real CLI against moto: each case's
state is set in moto (ThreadedMotoServer in this process), and the tests read what the user reads.

moto 5.2's Service Quotas know VPC's defaults only: `sagemaker_quotas` (testbed/remote_aws.py) gives them
SageMaker's quotas of a case, after 250 others so that a reader must page."""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Iterator

import pytest

from testbed import remote_aws
from testbed.remote_aws import ACCOUNT, REGION, JobState, ManagedAws

TRUST_SAGEMAKER = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}
TRUST_EC2 = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}
OTHER_QUOTAS = 250
"""Quotas listed before a case's own: the reader must follow NextToken to reach them."""


def sagemaker_quotas(applied: dict[str, float]):
    return remote_aws.sagemaker_quotas(applied, others=OTHER_QUOTAS)


@pytest.fixture(scope="module")
def aws() -> Iterator[ManagedAws]:
    with ManagedAws() as managed:
        # moto loads a service's backend at its first request (seconds on a loaded machine): before any test.
        managed.client("sts").get_caller_identity()
        managed.client("iam").list_roles()
        managed.client("sagemaker").list_training_jobs()
        managed.client("service-quotas").list_aws_default_service_quotas(ServiceCode="vpc")
        yield managed


@pytest.fixture
def preflight(smdiag, aws, tmp_path):
    """preflight(*args, env={...}) -> CompletedProcess of `smdiag doctor --remote ARGS` against moto."""

    def run(*args: str, env: dict[str, str] | None = None):
        return smdiag("doctor", "--remote", *args, env={**aws.env(tmp_path), **(env or {})}, timeout=60)

    return run


def for_type(instance_type: str, training: float | None, endpoint: float | None = 2) -> dict[str, float]:
    named = {f"{instance_type} for training job usage": training, f"{instance_type} for endpoint usage": endpoint}
    return {name: value for name, value in named.items() if value is not None}


def row(output: str, name: str) -> str:
    """The row of check `name` (its mark, name and text) in doctor's layout."""
    found = [line for line in output.splitlines() if line[3:].startswith(name + " ")]
    assert found, f"no row {name!r} in:\n{output}"
    return found[0]


def role_arn(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:role/{name}"


def make_role(aws: ManagedAws, name: str, trust: dict) -> str:
    aws.client("iam").create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
    return role_arn(name)


# ---------------------------------------------------------------------------------------------- quotas


def test_a_quota_of_zero_is_named_with_its_fix(preflight):
    with sagemaker_quotas(for_type("ml.g5.xlarge", 0)):
        result = preflight("--instance-type", "ml.g5.xlarge")
    assert result.returncode == 1, result.stderr
    assert row(result.stdout, "instance type").startswith("ok ")
    line = row(result.stdout, "training quota")
    assert line.startswith("!! ") and "'ml.g5.xlarge for training job usage' is 0 instances in us-east-1" in line
    assert "ResourceLimitExceeded" in line
    assert "fix: request an increase of 'ml.g5.xlarge for training job usage'" in result.stdout
    assert "aws service-quotas request-service-quota-increase --service-code sagemaker --quota-code L-1" in (
        result.stdout
    )
    assert result.stdout.rstrip().splitlines()[-1].startswith("not ready for managed jobs on ml.g5.xlarge in us-east-1")


def test_a_quota_used_up_by_running_jobs_names_them(preflight, aws):
    big = {"InstanceType": "ml.p3.2xlarge", "InstanceCount": 2, "VolumeSizeInGB": 30}
    aws.put_job("pf-running-a", JobState(status="InProgress"), ResourceConfig=big)
    aws.put_job("pf-running-b", JobState(status="InProgress"), ResourceConfig={**big, "InstanceCount": 1})
    aws.put_job("pf-finished", JobState(status="Completed"), ResourceConfig={**big, "InstanceCount": 4})
    with sagemaker_quotas(for_type("ml.p3.2xlarge", 3)):
        result = preflight("--instance-type", "ml.p3.2xlarge")
    assert result.returncode == 1, result.stderr
    line = row(result.stdout, "training quota")
    assert line.startswith("!! ") and "is 3 instances, 3 in use by 2 running training jobs" in line
    assert "pf-running-a" in line and "pf-running-b" in line and "pf-finished" not in line
    assert "run fewer jobs in parallel (a tuner's max_parallel_jobs)" in result.stdout


def test_a_quota_with_room_left_is_ok(preflight, aws):
    aws.put_job("pf-one-on-m5", JobState(status="InProgress"),
                ResourceConfig={"InstanceType": "ml.m5.4xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30})  # fmt: skip
    with sagemaker_quotas(for_type("ml.m5.4xlarge", 8, endpoint=0)):
        result = preflight("--instance-type", "ml.m5.4xlarge")
    assert result.returncode == 0, result.stdout + result.stderr
    assert row(result.stdout, "training quota").startswith("ok ")
    assert "is 8 instances, 1 in use by 1 running training job (pf-one-on-m5)" in result.stdout
    endpoint = row(result.stdout, "endpoint quota")
    assert endpoint.startswith("-> ") and "deploying to ml.m5.4xlarge would be refused" in endpoint
    assert result.stdout.rstrip().splitlines()[-1] == (
        "ready for managed jobs on ml.m5.4xlarge in us-east-1, as far as smdiag could read"
    )


def test_a_type_the_region_does_not_offer(preflight):
    with sagemaker_quotas(for_type("ml.g5.xlarge", 4)):
        result = preflight("--instance-type", "ml.p5e.48xlarge")
    assert result.returncode == 1
    line = row(result.stdout, "instance type")
    assert line.startswith("!! ") and "ml.p5e.48xlarge is not offered by SageMaker in us-east-1" in line
    assert "no quota request can make it run" in line
    assert "fix: choose another instance type, or a region that offers ml.p5e.48xlarge" in result.stdout


def test_the_preflight_prints_doctors_rows_without_loading_the_local_doctor(preflight):
    """`doctor --remote` checks nothing on this host: its rows and marks load none of the local checks' modules
    (agent.fix.text alone brought in the engine's, docker-py and botocore's session: most of a second)."""
    with sagemaker_quotas(for_type("ml.g5.xlarge", 4)):
        result = preflight("--instance-type", "ml.g5.xlarge", env={"PYTHONPROFILEIMPORTTIME": "1"})
    loaded = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    assert result.returncode == 0 and row(result.stdout, "training quota").startswith("ok "), result.stdout
    assert "agent.remote.preflight" in loaded and "agent.style" in loaded
    assert loaded & {"agent.fix.text", "agent.host.doctor", "agent.engine", "docker"} == set()


# ---------------------------------------------------------------------------------------------- role, bucket, image


def test_a_missing_role(preflight):
    result = preflight("--role", role_arn("pf-no-such-role"))
    assert result.returncode == 1
    line = row(result.stdout, "execution role")
    assert line.startswith("!! ") and f"{role_arn('pf-no-such-role')} does not exist" in line


def test_a_role_that_does_not_trust_sagemaker_and_one_that_does(preflight, aws):
    untrusting = make_role(aws, "pf-ec2-only", TRUST_EC2)
    result = preflight("--role", untrusting)
    assert result.returncode == 1
    assert "does not let sagemaker.amazonaws.com assume it" in row(result.stdout, "execution role")
    assert "aws iam update-assume-role-policy --role-name pf-ec2-only" in result.stdout
    assert '"Principal":{"Service":"ec2.amazonaws.com"}' in result.stdout  # the existing statement is kept

    trusting = make_role(aws, "pf-sagemaker", TRUST_SAGEMAKER)
    result = preflight("--role", trusting)
    assert result.returncode == 0, result.stdout
    assert row(result.stdout, "execution role").startswith(f"ok execution role  {trusting} exists")


def test_without_role_the_sessions_own_role_is_checked(preflight, aws):
    role = make_role(aws, "pf-session", TRUST_SAGEMAKER)
    session = aws.client("sts").assume_role(RoleArn=role, RoleSessionName="notebook")["Credentials"]
    as_role = {"AWS_ACCESS_KEY_ID": session["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": session["SecretAccessKey"],
               "AWS_SESSION_TOKEN": session["SessionToken"]}  # fmt: skip
    result = preflight(env=as_role)
    assert result.returncode == 0, result.stdout + result.stderr
    assert row(result.stdout, "execution role").startswith(
        f"ok execution role  {role} (this session's role) exists and sagemaker.amazonaws.com may assume it"
    )


def test_a_default_bucket_in_another_region(preflight, aws):
    # The default bucket of us-west-2 (the other tests' region keeps its own), made in eu-west-1.
    bucket = f"sagemaker-us-west-2-{ACCOUNT}"
    aws.client("s3").create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    result = preflight("--region", "us-west-2")
    assert result.returncode == 1
    line = row(result.stdout, "default bucket")
    assert line.startswith("!! ") and f"{bucket} is in eu-west-1, not us-west-2" in line
    assert "fix: give the SDK a bucket of us-west-2: Session(default_bucket=...)" in result.stdout


def test_an_image_from_another_region_gets_this_regions_uri(preflight):
    image = "763104351884.dkr.ecr.eu-west-1.amazonaws.com/pytorch-training:2.3.0-gpu-py311"
    result = preflight("--image", image)
    assert result.returncode == 1
    line = row(result.stdout, "image")
    assert line.startswith("!! ") and "is in ECR of eu-west-1, jobs run in us-east-1" in line
    assert "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.3.0-gpu-py311" in result.stdout


def test_an_image_of_another_regions_framework_account(preflight):
    # 217643126080 holds the framework images of me-south-1 (the SDK's image_uri_config), not us-east-1's.
    result = preflight("--image", "217643126080.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.3.0")
    assert result.returncode == 1
    assert "account 217643126080 holds SageMaker framework images for other regions" in row(result.stdout, "image")

    result = preflight("--image", "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.3.0")
    assert result.returncode == 0
    assert row(result.stdout, "image").startswith("ok ")


# ---------------------------------------------------------------------------------------------- refusals, silence


@contextlib.contextmanager
def iam_enforced() -> Iterator[None]:
    """moto checks every request against the caller's IAM policies while inside (it does not by default)."""
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin

    before = settings.INITIAL_NO_AUTH_ACTION_COUNT
    settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
    ActionAuthenticatorMixin.request_count = 0
    try:
        yield
    finally:
        settings.INITIAL_NO_AUTH_ACTION_COUNT = before


def test_a_check_the_caller_may_not_read_says_what_it_needs_and_the_rest_is_answered(preflight, aws):
    iam = aws.client("iam")
    everything, no_getrole = (
        {"Effect": effect, "Action": action, "Resource": "*"}
        for effect, action in (("Allow", "*"), ("Deny", "iam:GetRole"))
    )
    deny = {"Version": "2012-10-17", "Statement": [everything, no_getrole]}
    iam.create_user(UserName="pf-no-getrole")
    iam.put_user_policy(UserName="pf-no-getrole", PolicyName="all-but-getrole", PolicyDocument=json.dumps(deny))
    keys = iam.create_access_key(UserName="pf-no-getrole")["AccessKey"]
    role = make_role(aws, "pf-hidden", TRUST_SAGEMAKER)
    user = {"AWS_ACCESS_KEY_ID": keys["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": keys["SecretAccessKey"]}
    with sagemaker_quotas(for_type("ml.c5.xlarge", 0)), iam_enforced():
        result = preflight("--instance-type", "ml.c5.xlarge", "--role", role, env=user)
    assert result.returncode == 1, result.stderr
    assert row(result.stdout, "execution role").startswith("?? execution role  unknown: needs iam:GetRole")
    assert "'ml.c5.xlarge for training job usage' is 0 instances" in row(result.stdout, "training quota")
    assert row(result.stdout, "default bucket").startswith("ok ")
    assert "Traceback" not in result.stdout + result.stderr


def test_unreachable_aws_is_one_line_and_exit_1(preflight):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # closed again before the CLI runs: nothing listens there
    result = preflight("--instance-type", "ml.g5.xlarge", env={"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"})
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("smdiag: AWS does not answer"), result.stderr
    assert f"127.0.0.1:{port}" in lines[0]


@contextlib.contextmanager
def listening() -> Iterator[socket.socket]:
    """A port that takes connections (into the kernel's backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        sock.setblocking(False)
        yield sock


def url(sock: socket.socket) -> str:
    return f"http://127.0.0.1:{sock.getsockname()[1]}"


def was_called(sock: socket.socket) -> bool:
    """Whether a program connected to the `listening` port."""
    try:
        sock.accept()[0].close()
    except BlockingIOError:
        return False
    return True


def test_a_silent_service_is_unknown_and_the_rest_answers_within_the_deadline(preflight, aws):
    role = make_role(aws, "pf-silent", TRUST_SAGEMAKER)
    with listening() as silent_iam:
        result = preflight("--role", role, env={"AWS_ENDPOINT_URL_IAM": url(silent_iam)})
        assert was_called(silent_iam)
    assert result.returncode == 0, result.stdout + result.stderr
    assert row(result.stdout, "execution role").startswith("?? execution role  unknown: no answer")
    assert row(result.stdout, "default bucket").startswith("ok ")
    assert result.stdout.rstrip().endswith("(1 check unknown: execution role)")


def test_a_preflight_that_read_nothing_but_sts_is_not_ready(preflight, aws):
    """STS answers, every other service is silent: the budget is spent and every source is unread. That is no
    "ready": exit 1, and the verdict says what could not be read and why."""
    with listening() as silent:
        only_sts = {"AWS_ENDPOINT_URL": url(silent), "AWS_ENDPOINT_URL_STS": aws.endpoint}
        typed = preflight("--instance-type", "ml.g5.xlarge", env=only_sts)
        plain = preflight(env=only_sts)
        assert was_called(silent)
    assert typed.returncode == 1, typed.stdout + typed.stderr
    assert row(typed.stdout, "training quota").startswith("?? training quota  unknown: no answer")
    verdict = typed.stdout.rstrip().splitlines()[-1]
    assert verdict.startswith("cannot tell whether managed jobs on ml.g5.xlarge in us-east-1 would run: ")
    assert "training quota" in verdict and "default bucket" in verdict and "not read (no answer" in verdict
    assert "ready for" not in typed.stdout

    assert plain.returncode == 1, plain.stdout + plain.stderr
    assert (
        plain.stdout.rstrip()
        .splitlines()[-1]
        .startswith("cannot tell whether managed jobs in us-east-1 would run: default bucket not read (no answer")
    )
    report = json.loads(preflight("--json", env=only_sts).stdout)
    assert report["healthy"] is False and [row["check"] for row in report["undecided"]] == ["bucket"]


def test_a_quota_the_caller_may_not_read_is_no_ready_for_its_instance_type(preflight, aws):
    keys = denied_user(aws, "pf-no-quotas", "servicequotas:ListAWSDefaultServiceQuotas")
    with sagemaker_quotas(for_type("ml.c5.2xlarge", 4)), iam_enforced():
        result = preflight("--instance-type", "ml.c5.2xlarge", env=keys)
    assert result.returncode == 1, result.stdout + result.stderr
    assert row(result.stdout, "default bucket").startswith("ok ")
    assert result.stdout.rstrip().splitlines()[-1] == (
        "cannot tell whether managed jobs on ml.c5.2xlarge in us-east-1 would run: instance type, training quota "
        "not read (needs servicequotas:ListAWSDefaultServiceQuotas)"
    )


def denied_user(aws: ManagedAws, name: str, action: str) -> dict[str, str]:
    """Keys of an IAM user allowed everything but `action` (enforced inside `iam_enforced`)."""
    iam = aws.client("iam")
    statements = [
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Effect": "Deny", "Action": action, "Resource": "*"},
    ]
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="all-but-one",
                        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}))  # fmt: skip
    keys = iam.create_access_key(UserName=name)["AccessKey"]
    return {"AWS_ACCESS_KEY_ID": keys["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": keys["SecretAccessKey"]}


AWS_AT = {"AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("--instance-type", "g5.xlarge"), "--instance-type 'g5.xlarge' is not a SageMaker instance type"),
        (("--instance-type", "local_gpu"), "local mode needs no quota"),
        (("--role", "SageMakerRole"), "--role 'SageMakerRole' is not an IAM role ARN"),
        (("--role", f"arn:aws:iam::{ACCOUNT}:user/someone"), "is not an IAM role ARN"),
        (("--image", "s3://bucket/image.tar"), "--image 's3://bucket/image.tar' is not an image URI"),
        (("--region", "useast1"), "--region 'useast1' is not an AWS region name"),
        (("--fix",), "--fix checks this host, not AWS"),
    ],
)
def test_bad_input_is_exit_2_one_line_and_no_aws_call(smdiag, args, said):
    with listening() as aws:
        result = smdiag("doctor", "--remote", *args, env={**AWS_AT, "AWS_ENDPOINT_URL": url(aws)})
        assert not was_called(aws)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and said in lines[0] and "(fix: " in lines[0], result.stderr


def test_plain_doctor_asks_aws_nothing(smdiag):
    with listening() as aws:
        result = smdiag("doctor", "--json", env={**AWS_AT, "AWS_ENDPOINT_URL": url(aws)})
        assert not was_called(aws)
    assert "checks" not in json.loads(result.stdout)  # doctor's own report, not the preflight's
    assert "engine" in json.loads(result.stdout)


def test_remote_flags_without_remote_are_bad_input(smdiag):
    result = smdiag("doctor", "--instance-type", "ml.g5.xlarge", "--region", "us-east-1")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "smdiag: --instance-type, --region go with --remote (fix: add --remote, or leave them out)"
    )


def test_json_keeps_the_ids_and_states(preflight, aws):
    role = make_role(aws, "pf-json", TRUST_SAGEMAKER)
    with sagemaker_quotas(for_type("ml.g4dn.xlarge", 0)):
        result = preflight("--instance-type", "ml.g4dn.xlarge", "--role", role, "--json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    states = {check["check"]: check["state"] for check in report["checks"]}
    assert states == {"caller": "ok", "instance_type": "ok", "training_quota": "problem", "endpoint_quota": "ok",
                      "role": "ok", "bucket": "ok", "image": "na"}  # fmt: skip
    assert [problem["check"] for problem in report["problems"]] == ["training_quota"]
    assert report["problems"][0]["fix"].startswith("request an increase of 'ml.g4dn.xlarge for training job usage'")
    assert (report["healthy"], report["region"], report["account"]) == (False, REGION, ACCOUNT)
