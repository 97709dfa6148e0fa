"""The guest and managed calls: which calls of a wrapped entry point are managed (remote), local, or the SDK's
alone (a pipeline session, a mock, a pipeline variable), and the `RemoteCall` read from the SDK object's
plain attributes once the call raised. The SDK v2 objects are the real ones (the host's SDK), made offline;
"the SDK starting a job" is what its own code does: setting the object's attribute that holds the job."""

from __future__ import annotations

import json
import os
import types
from unittest import mock

import boto3
import pydantic
import pytest

from agent.guest import config, handover, remote
from agent.guest.calls import _capture
from agent.guest.capture import ACTIVE, Capture, Remote, capture_here
from agent.guest.facts import Call, FailureFacts, RaisedException, RemoteCall

os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
sagemaker = pytest.importorskip("sagemaker")
from sagemaker.estimator import Estimator, EstimatorBase, _TrainingJob  # noqa: E402
from sagemaker.model import Model  # noqa: E402
from sagemaker.processing import ProcessingInput, ScriptProcessor  # noqa: E402
from sagemaker.tuner import HyperparameterTuner, IntegerParameter, _TuningJob  # noqa: E402
from sagemaker.workflow.parameters import ParameterString  # noqa: E402
from sagemaker.workflow.pipeline_context import PipelineSession  # noqa: E402

ROLE = "arn:aws:iam::111111111111:role/dummy"
IMAGE = "111111111111.dkr.ecr.eu-west-1.amazonaws.com/guest/train:1"
OPT_OUT = {"SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}}


def offline_boto():
    return boto3.Session(region_name="eu-west-1", aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture(scope="module")
def session():
    """The SDK's own Session: no AWS call is made by making it (its bucket is given)."""
    return sagemaker.Session(boto_session=offline_boto(), sagemaker_config=OPT_OUT, default_bucket="guest-bucket")


def estimator(session, **overrides) -> Estimator:
    given = dict(image_uri=IMAGE, role=ROLE, instance_count=2, instance_type="ml.g5.xlarge", sagemaker_session=session,
                 volume_size=50, max_run=3600, use_spot_instances=True, max_wait=7200, checkpoint_s3_uri="s3://b/ckpt",
                 subnets=["subnet-1"], security_group_ids=["sg-1"], output_path="s3://b/out")  # fmt: skip
    return Estimator(**{**given, **overrides})


def describe_fit(obj, *args, **kwargs):
    return remote.method("fit")(EstimatorBase.fit, (obj, *args), kwargs)


def test_a_managed_fit_is_read_after_it_raised_with_the_name_of_the_job_it_started(session):
    fitted = estimator(session)
    described = describe_fit(fitted, {"train": "s3://b/train", "test": mock.MagicMock(name="TrainingInput")})
    assert isinstance(described, Remote) and described.resource == "training"
    assert described.call == Call(kind="fit", class_name="Estimator", instance_type="ml.g5.xlarge", images=[IMAGE])
    refused = described.read()  # Create refused: the SDK started no job
    assert refused.name is None and refused.region == "eu-west-1"
    fitted.latest_training_job = _TrainingJob(session, "guest-2026-01-01-00-00-00-000")  # the SDK's start_new
    assert described.read() == RemoteCall(
        resource="training", name="guest-2026-01-01-00-00-00-000", region="eu-west-1",
        parameters={"instance_type": "ml.g5.xlarge", "instance_count": 2, "image_uri": IMAGE, "role": ROLE,
                    "checkpoint_s3_uri": "s3://b/ckpt", "subnets": ["subnet-1"], "security_group_ids": ["sg-1"],
                    "volume_size_gb": 50, "max_run_s": 3600, "max_wait_s": 7200, "spot": True,
                    "inputs": {"train": "s3://b/train"}},
    )  # fmt: skip


def test_a_job_an_earlier_fit_started_is_not_this_calls(session):
    fitted = estimator(session)
    fitted.latest_training_job = _TrainingJob(session, "earlier-job")
    described = describe_fit(fitted, "s3://b/train")
    assert described.read().name is None
    assert described.read().parameters["inputs"] == {"training": "s3://b/train"}  # the SDK's one channel


def test_local_calls_stay_local_and_pipelines_mocks_and_variables_are_the_sdks_alone(session):
    from sagemaker.local import LocalSession

    local_session = LocalSession(boto_session=offline_boto(), sagemaker_config=OPT_OUT, default_bucket="guest-bucket")
    assert describe_fit(estimator(local_session, instance_type="local", use_spot_instances=False)) == Call(
        kind="fit", class_name="Estimator", instance_type="local", images=[IMAGE]
    )
    pipeline = PipelineSession(boto_session=offline_boto(), sagemaker_config=OPT_OUT, default_bucket="guest-bucket")
    assert describe_fit(estimator(pipeline)) is None
    variable = ParameterString(name="TrainInstanceType", default_value="ml.m5.xlarge")
    assert describe_fit(estimator(session, instance_type=variable)) is None
    image = describe_fit(estimator(session, image_uri=variable))  # managed: the variable is left out of the facts
    assert image.call.images == [] and "image_uri" not in image.read().parameters
    mocked_session = mock.MagicMock(name="sagemaker_session")
    fitted = estimator(session)
    fitted.sagemaker_session = mocked_session
    assert describe_fit(fitted) is None
    mocked = mock.MagicMock(name="Estimator")
    assert describe_fit(mocked) is None
    assert mocked.mock_calls == [] and mocked_session.mock_calls == []  # nothing was asked of them
    assert describe_fit(estimator(session), unknown=1) is None  # the SDK's own TypeError follows


def test_a_tuner_is_read_through_its_estimator(session):
    metrics = [{"Name": "loss", "Regex": "l=(.*)"}]
    tuner = HyperparameterTuner(estimator(session), "loss", {"x": IntegerParameter(1, 3)}, max_jobs=4,
                                metric_definitions=metrics, max_parallel_jobs=2)  # fmt: skip
    described = remote.method("tune")(HyperparameterTuner.fit, (tuner, "s3://b/train"), {})
    assert described.call.kind == "tune" and described.call.instance_type == "ml.g5.xlarge"
    tuner.latest_tuning_job = _TuningJob(session, "guest-tuning")
    read = described.read()
    assert (read.resource, read.name, read.region) == ("tuning", "guest-tuning", "eu-west-1")
    assert read.parameters["max_parallel_jobs"] == 2 and read.parameters["instance_type"] == "ml.g5.xlarge"


def test_a_deploy_names_its_endpoint_and_needs_no_session_yet():
    model = Model(image_uri=IMAGE, model_data="s3://b/model.tar.gz", role=ROLE,
                  vpc_config={"Subnets": ["subnet-1"], "SecurityGroupIds": ["sg-1"]})  # fmt: skip
    deploy = remote.method("deploy")
    described = deploy(Model.deploy, (model, 1, "ml.m5.large"), {"endpoint_name": "guest-endpoint"})
    assert described.resource == "endpoint" and described.call.instance_type == "ml.m5.large"
    model.sagemaker_session = sagemaker.Session(boto_session=offline_boto(), sagemaker_config=OPT_OUT,
                                                default_bucket="guest-bucket")  # as deploy makes it  # fmt: skip
    read = described.read()
    assert (read.name, read.region) == ("guest-endpoint", "eu-west-1")
    assert read.parameters == {"instance_type": "ml.m5.large", "instance_count": 1, "image_uri": IMAGE, "role": ROLE,
                               "subnets": ["subnet-1"], "security_group_ids": ["sg-1"]}  # fmt: skip
    assert isinstance(deploy(Model.deploy, (model, 1, "local"), {}), Call)


def test_a_processor_reads_its_code_and_inputs(session):
    processor = ScriptProcessor(command=["python3"], image_uri=IMAGE, role=ROLE, instance_count=1, volume_size_in_gb=40,
                                instance_type="ml.m5.large", sagemaker_session=session)  # fmt: skip
    inputs = [ProcessingInput(source="s3://b/raw", destination="/opt/ml/processing/input", input_name="raw")]
    described = remote.method("process")(ScriptProcessor.run, (processor, "prepare.py", inputs), {})
    read = described.read()
    assert read.resource == "processing" and read.name is None
    assert read.parameters["entry_point"] == "prepare.py" and read.parameters["inputs"] == {"raw": "s3://b/raw"}
    assert read.parameters["volume_size_gb"] == 40


def test_a_model_trainer_reads_its_private_latest_job_and_its_configs():
    """v2's `sagemaker.modules` ModelTrainer, as its own checks let it be made offline: its output given, its
    source code a plain object of the config's shape (the SDK's own config asks S3 when the trainer is made)."""
    from sagemaker.modules import Session
    from sagemaker.modules.configs import Compute, OutputDataConfig, StoppingCondition
    from sagemaker.modules.train.model_trainer import Mode, ModelTrainer

    trainer = ModelTrainer(
        training_mode=Mode.SAGEMAKER_TRAINING_JOB, training_image=IMAGE, role=ROLE,
        sagemaker_session=Session(boto_session=offline_boto(), default_bucket="guest-bucket"),
        compute=Compute(instance_type="ml.p4d.24xlarge", instance_count=4, volume_size_in_gb=200),
        stopping_condition=StoppingCondition(max_runtime_in_seconds=600),
        output_data_config=OutputDataConfig(s3_output_path="s3://b/out", compression_type="GZIP", kms_key_id="alias/k"),
    )  # fmt: skip
    vars(trainer)["source_code"] = types.SimpleNamespace(source_dir="s3://b/src.tar.gz", entry_script="train.py")
    described = remote.method("train")(ModelTrainer.train, (trainer,), {})
    assert described.call.instance_type == "ml.p4d.24xlarge"
    assert described.read().name is None
    object.__getattribute__(trainer, "__pydantic_private__")["_latest_training_job"] = mock.Mock(
        spec=[], training_job_name="guest-trainer-job"
    )  # spec=[]: a plain object whose one attribute is set on the instance
    read = described.read()
    assert (read.name, read.region) == ("guest-trainer-job", "eu-west-1")
    assert read.parameters == {"instance_type": "ml.p4d.24xlarge", "instance_count": 4, "volume_size_gb": 200,
                               "max_run_s": 600, "entry_point": "train.py", "source_dir": "s3://b/src.tar.gz",
                               "image_uri": IMAGE, "role": ROLE, "output_kms_key": "alias/k"}  # fmt: skip
    trainer.training_mode = Mode.LOCAL_CONTAINER
    assert isinstance(remote.method("train")(ModelTrainer.train, (trainer,), {}), Call)


class TrainingJob(pydantic.BaseModel):
    """Shaped as sagemaker-core's resource: its fields in the instance dict, its session in private attributes."""

    training_job_name: str
    role_arn: str | None = None
    _session: object = pydantic.PrivateAttr(default=None)
    _region: str | None = pydantic.PrivateAttr(default=None)

    def wait(self, poll: int = 5, timeout: int | None = None) -> None:
        pass


TrainingJob.__module__ = "sagemaker.core.resources"


def test_a_sagemaker_core_wait_reads_the_resource_and_the_region_it_was_made_with():
    job = TrainingJob(training_job_name="guest-core-job", role_arn=ROLE)
    describe = remote.resource_wait("training", "training_job_name")
    described = describe(TrainingJob.wait, (job,), {})
    assert described.call == Call(kind="wait", class_name="TrainingJob")
    assert described.read() == RemoteCall(resource="training", name="guest-core-job", parameters={"role": ROLE})
    job._session = offline_boto()
    assert described.read().region == "eu-west-1"
    job._region = "ap-south-1"
    assert described.read().region == "ap-south-1"
    assert describe(TrainingJob.wait, (mock.MagicMock(name="TrainingJob"),), {}) is None


def test_the_facts_of_a_managed_call_go_to_the_recorder_and_back(session):
    fitted = estimator(session)
    capture = _capture(remote.method("fit"), EstimatorBase.fit, (fitted, "s3://b/train"), {})
    assert capture.remote is not None and capture.container_root is None
    fitted.latest_training_job = _TrainingJob(session, "guest-job")
    facts = capture.facts(RaisedException(type="UnexpectedStatusException", message="Failed. Reason: boom"))
    assert facts.remote.name == "guest-job" and facts.compose_stream == [] and facts.kept_containers == []
    assert FailureFacts.from_json(facts.to_json()) == facts
    assert handover.what_failed(facts) == "managed training job guest-job failed"


def test_a_named_profile_is_read_and_the_recorder_reads_as_that_profile(tmp_path, monkeypatch):
    """`boto3.Session(profile_name="prod")`: the recorder asks AWS with that profile, not the environment's keys."""
    config_file = tmp_path / "config"
    config_file.write_text("[profile prod]\nregion = eu-central-1\naws_access_key_id = AKIDPROD\n"
                           "aws_secret_access_key = prod-secret\n")  # fmt: skip
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config_file))
    prod = sagemaker.Session(boto_session=boto3.Session(profile_name="prod"), sagemaker_config=OPT_OUT,
                             default_bucket="guest-bucket")  # fmt: skip
    fitted = estimator(prod)
    capture = _capture(remote.method("fit"), EstimatorBase.fit, (fitted, "s3://b/train"), {})
    facts = capture.facts(RaisedException(type="ClientError", message="refused"))
    assert (facts.remote.profile, facts.remote.region) == ("prod", "eu-central-1")
    assert "prod-secret" not in facts.to_json() and "AKIDPROD" not in facts.to_json()
    environ = {"AWS_ACCESS_KEY_ID": "AKIDENV", "AWS_SECRET_ACCESS_KEY": "env-secret", "PATH": "/bin"}
    env = handover.recorder_env(facts, environ)
    assert env["AWS_PROFILE"] == "prod" and "AWS_ACCESS_KEY_ID" not in env and env["PATH"] == "/bin"
    assert handover.recorder_env(FailureFacts.from_json(facts.to_json()), environ)["AWS_PROFILE"] == "prod"
    unnamed = capture.facts(RaisedException(type="ClientError", message="refused"))
    unnamed.remote.profile = None
    assert handover.recorder_env(unnamed, environ)["AWS_ACCESS_KEY_ID"] == "AKIDENV"


def test_old_and_odd_facts_are_read_tolerantly():
    local_facts = FailureFacts(call=Call(kind="fit"), started=1.0, exception=RaisedException("E", "m"))
    data = json.loads(local_facts.to_json())
    del data["remote"]  # a hook installed by an older smdiag
    assert FailureFacts.from_json(json.dumps(data)).remote is None
    data["remote"] = {"resource": "endpoint", "name": "ep", "parameters": ["odd"], "later": 1}
    facts = FailureFacts.from_json(json.dumps(data))
    assert facts.remote == RemoteCall(resource="endpoint", name="ep")
    assert handover.what_failed(facts) == "managed endpoint ep failed"
    facts.remote.name = None
    assert handover.what_failed(facts) == "managed endpoint failed"
    assert handover.what_failed(local_facts) == "local-mode fit failed"


def test_a_reading_that_fails_still_names_the_resource_and_no_tap_acts_in_a_managed_call(monkeypatch):
    logged = []
    monkeypatch.setattr(config, "log_error", lambda what, exc: logged.append((what, type(exc).__name__)))
    broken = Remote(Call(kind="fit"), "training", lambda exc: 1 / 0)
    assert broken.facts() == RemoteCall(resource="training") and logged == [("remote", "ZeroDivisionError")]
    for active, tapped in ((Capture(Call(kind="fit"), remote=broken), False), (Capture(Call(kind="fit")), True)):
        token = ACTIVE.set(active)
        try:
            assert (capture_here() is active) is tapped
        finally:
            ACTIVE.reset(token)
