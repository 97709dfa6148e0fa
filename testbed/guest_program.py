"""A user's program for the differential tests (tests/test_guest.py): the same SageMaker SDK v2 calls,
run once in an environment with the kernel hook and once without.

    python guest_program.py SCENARIO RESULT_JSON [ARG...]

What the user sees goes to stdout/stderr as the SDK makes it; what the test compares beside it goes to
RESULT_JSON: the exception (type, message, notes), every AWS API call (service, operation, parameters)
seen by botocore's event hooks, and every SDK function called in the main thread (sys.setprofile).
With SMDIAG_DISABLE_AFTER_IMPORT=1 the program sets SMDIAG_DISABLE=1 after importing the SDK, as
`%env SMDIAG_DISABLE=1` in a running kernel does; with GUEST_START_WHEN=FILE it creates FILE.ready once
the SDK is imported and waits for FILE before its calls.
"""

import contextlib
import json
import os
import sys
import tempfile
import time

import boto3
import sagemaker

if os.environ.get("SMDIAG_DISABLE_AFTER_IMPORT") == "1":
    os.environ["SMDIAG_DISABLE"] = "1"

SDK_DIR = os.path.dirname(sagemaker.__file__) + os.sep
ROLE = "arn:aws:iam::111111111111:role/dummy"
ECR_IMAGE = "111111111111.dkr.ecr.us-east-1.amazonaws.com/guest/train:1"
OPT_OUT = {"SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}}
scenario, result_path, args = sys.argv[1], sys.argv[2], sys.argv[3:]
result = {"api": [], "sdk_calls": [], "exception": None}

boto = boto3.Session(region_name="us-east-1")
boto.events.register(
    "before-parameter-build",
    lambda model, params, **_: result["api"].append([model.service_model.service_name, model.name, params]),
)


def sdk_calls(frame, event, _arg):
    if event == "call" and frame.f_code.co_filename.startswith(SDK_DIR):
        result["sdk_calls"].append(f"{frame.f_globals.get('__name__')}.{frame.f_code.co_qualname}")


def remote_session():
    return sagemaker.Session(boto_session=boto, sagemaker_config=OPT_OUT, default_bucket="guest-bucket")


def local_session():
    from sagemaker.local import LocalSession

    session = LocalSession(boto_session=boto, sagemaker_config=OPT_OUT, default_bucket="guest-bucket")
    session.config = {"local": {"local_code": True}}
    return session


def pipeline():
    from sagemaker.estimator import Estimator
    from sagemaker.model import Model
    from sagemaker.workflow.functions import JsonGet
    from sagemaker.workflow.model_step import ModelStep
    from sagemaker.workflow.parameters import ParameterString
    from sagemaker.workflow.pipeline import Pipeline
    from sagemaker.workflow.pipeline_context import PipelineSession
    from sagemaker.workflow.steps import TrainingStep

    session = PipelineSession(boto_session=boto, sagemaker_config=OPT_OUT, default_bucket="guest-bucket")
    train_type = ParameterString(name="TrainInstanceType", default_value="ml.m5.xlarge")
    model_type = ParameterString(name="ModelInstanceType", default_value="local")
    first = Estimator(image_uri=ECR_IMAGE, role=ROLE, instance_count=1, instance_type=train_type,
                      sagemaker_session=session, output_path="s3://guest-bucket/out")  # fmt: skip
    train = TrainingStep(name="Train", step_args=first.fit(inputs="s3://guest-bucket/train"))
    chosen = JsonGet(step_name="Train", property_file="choice", json_path="instance_type")
    second = Estimator(image_uri=ECR_IMAGE, role=ROLE, instance_count=1, instance_type=chosen,
                       sagemaker_session=session, output_path="s3://guest-bucket/out2")  # fmt: skip
    retrain = TrainingStep(name="Retrain", step_args=second.fit(inputs="s3://guest-bucket/train"))
    model = Model(image_uri=ECR_IMAGE, model_data=train.properties.ModelArtifacts.S3ModelArtifacts, role=ROLE,
                  sagemaker_session=session)  # fmt: skip
    create = ModelStep(name="Create", step_args=model.create(instance_type=model_type))
    built = Pipeline(name="guest", parameters=[train_type, model_type], steps=[train, retrain, create],
                     sagemaker_session=session)  # fmt: skip
    result["definition"] = json.loads(built.definition())
    print(json.dumps(result["definition"], indent=1, sort_keys=True))
    # Outside a pipeline session: the SDK's own answer to a pipeline variable as a deploy's instance type.
    Model(image_uri=ECR_IMAGE, model_data="s3://guest-bucket/model.tar.gz", role=ROLE,
          sagemaker_session=remote_session()).deploy(initial_instance_count=1, instance_type=model_type)  # fmt: skip


def remote_fit():
    from sagemaker.sklearn import SKLearn

    with open("train.py", "w") as script:
        script.write("print('training')\n")
    estimator = SKLearn(entry_point="train.py", framework_version="1.2-1", instance_type="ml.m5.large",
                        instance_count=1, role=ROLE, sagemaker_session=remote_session())  # fmt: skip
    estimator.fit({"train": "s3://guest-bucket/train"}, wait=False)
    print(estimator.latest_training_job.name.rsplit("-", 7)[0])


def remote_deploy():
    from sagemaker.model import Model
    from sagemaker.predictor import Predictor

    boto.client("s3").create_bucket(Bucket="guest-bucket")
    model = Model(image_uri=ECR_IMAGE, model_data="s3://guest-bucket/model.tar.gz", role=ROLE,
                  sagemaker_session=remote_session(), name="guest-model")  # fmt: skip
    model.deploy(initial_instance_count=1, instance_type="ml.m5.large", endpoint_name="guest-endpoint", wait=False)
    predictor = Predictor("guest-endpoint", sagemaker_session=model.sagemaker_session)
    print(predictor.predict(b"1,2,3"))
    predictor.delete_endpoint()


def mocked_session():
    """A session mocked as the SDK's own unit tests do: every call it gets is recorded."""
    from unittest.mock import MagicMock, Mock

    from sagemaker.session_settings import SessionSettings

    session = MagicMock(name="sagemaker_session", boto_session=Mock(name="boto_session", region_name="us-east-1"),
                        boto_region_name="us-east-1", config=None, local_mode=False, s3_client=None,
                        s3_resource=None, settings=SessionSettings(), default_bucket_prefix=None)  # fmt: skip
    session.default_bucket = Mock(name="default_bucket", return_value="guest-bucket")
    session.sagemaker_config = OPT_OUT
    try:
        from sagemaker.estimator import Estimator
        from sagemaker.model import Model
        from sagemaker.predictor import Predictor

        Estimator(image_uri=ECR_IMAGE, role=ROLE, instance_count=1, instance_type="ml.m5.large",
                  sagemaker_session=session).fit("s3://guest-bucket/train", wait=False)  # fmt: skip
        Model(image_uri=ECR_IMAGE, model_data="s3://guest-bucket/model.tar.gz", role=ROLE, sagemaker_session=session,
              name="guest-model").deploy(initial_instance_count=1, instance_type="ml.m5.large", wait=False)  # fmt: skip
        Predictor("guest-endpoint", sagemaker_session=session).predict(b"1,2,3")
    finally:
        result["mock_calls"] = [repr(call) for call in session.mock_calls]


def local_fit():
    from sagemaker.estimator import Estimator

    Estimator(image_uri=args[0], role=ROLE, instance_count=1, instance_type="local",
              sagemaker_session=local_session()).fit()  # fmt: skip


def local_process():
    from sagemaker.processing import ScriptProcessor

    with open("process.sh", "w") as script:
        script.write("echo processing; ls /opt/ml/processing/input/code\n")
    ScriptProcessor(command=["sh"], image_uri=args[0], role=ROLE, instance_count=1, instance_type="local",
                    sagemaker_session=local_session()).run(code="process.sh")  # fmt: skip


def local_pipeline():
    """A local pipeline of one processing step (the wrapper watches the execution and each step)."""
    from sagemaker.processing import ScriptProcessor
    from sagemaker.workflow.pipeline import Pipeline
    from sagemaker.workflow.pipeline_context import LocalPipelineSession
    from sagemaker.workflow.steps import ProcessingStep

    with open("process.sh", "w") as script:
        script.write("echo processing in a pipeline\n")
    session = LocalPipelineSession(boto_session=boto, default_bucket="guest-bucket")
    session.config = {"local": {"local_code": True}}
    processor = ScriptProcessor(command=["sh"], image_uri=args[0], role=ROLE, instance_count=1, instance_type="local",
                                sagemaker_session=session)  # fmt: skip
    step = ProcessingStep(name="Prepare", step_args=processor.run(code="process.sh"))
    pipeline = Pipeline(name="guest", steps=[step], sagemaker_session=session)
    pipeline.create(ROLE)
    execution = pipeline.start()
    [step] = execution.list_steps()["PipelineExecutionSteps"]
    print(execution.describe()["PipelineExecutionStatus"], step["StepStatus"])


def local_model_trainer():
    """v2's ModelTrainer in local-container mode (the image's own command runs), in a root of its own (compose
    names the project after it; a temporary directory's name is normalized like the SDK's own)."""
    from sagemaker.modules import Session
    from sagemaker.modules.configs import Compute
    from sagemaker.modules.train.model_trainer import Mode, ModelTrainer

    ModelTrainer(training_image=args[0], training_mode=Mode.LOCAL_CONTAINER, role=ROLE, base_job_name="guest",
                 compute=Compute(instance_type="local_cpu", instance_count=1),
                 local_container_root=tempfile.mkdtemp(dir="."),
                 sagemaker_session=Session(boto_session=boto)).train()  # fmt: skip


def sdk_pull():
    """The SDK's own pull step, inside the wrapper's capture where the hook is loaded (as in a local fit)."""
    from sagemaker.local.image import _pull_image

    wrapper = sys.modules.get("smdiag_agent.guest.install")
    with wrapper.explained("fit") if wrapper and not wrapper.disabled() else contextlib.nullcontext():
        _pull_image(args[0])


def mocked(name: str, scenario) -> None:
    """`scenario` as a user's unit test runs it, with `name` (a function of the subprocess module) mocked; the
    calls the mock saw go to the result."""
    from unittest import mock

    with mock.patch(name) as mocked_function:
        try:
            scenario()
        finally:
            result["mock_calls"] = [repr(call) for call in mocked_function.mock_calls]


def mocked_run():
    """A local fit with `subprocess.run` mocked (it answers a MagicMock, so Compose looks absent and the fit
    raises the SDK's ImportError): the mock sees the SDK's calls only."""
    mocked("subprocess.run", local_fit)


def mocked_check_output():
    """The SDK's pull step, inside the wrapper's capture where the hook is loaded, with `subprocess.check_output`
    mocked (the pull "succeeds"): the mock sees the SDK's call, and the pull is its."""
    mocked("subprocess.check_output", sdk_pull)


def two_deploys():
    """Two local deploys (images ARG0 then ARG1, model tarball ARG2) on one serving port (ARG3), the first
    endpoint left serving as a notebook that never deleted it; both endpoints stay up at the end (the program
    ends as a kernel that is shut down: the SDK's serving threads are not joined)."""
    from sagemaker.model import Model

    session = local_session()
    session.config = {"local": {"local_code": True, "serving_port": int(args[3])}}
    for image in args[:2]:
        model = Model(image_uri=image, model_data="file://" + args[2], role=ROLE, sagemaker_session=session,
                      code_location="s3://guest-bucket/code")  # fmt: skip
        model.deploy(initial_instance_count=1, instance_type="local")
        print("deployed", image, flush=True)


SCENARIOS = {
    f.__name__: f
    for f in (
        pipeline,
        remote_fit,
        remote_deploy,
        mocked_session,
        local_fit,
        local_process,
        local_pipeline,
        local_model_trainer,
        sdk_pull,
        mocked_run,
        mocked_check_output,
        two_deploys,
    )  # fmt: skip
}
if os.environ.get("GUEST_START_WHEN"):  # the SDK imported, wait for the test's word (it changes things meanwhile)
    go = os.environ["GUEST_START_WHEN"]
    open(go + ".ready", "w").close()
    while not os.path.exists(go):
        time.sleep(0.05)

sys.setprofile(sdk_calls)
try:
    SCENARIOS[scenario]()
except Exception as exc:  # noqa: BLE001 - what the user's program would have seen
    result["exception"] = {"type": type(exc).__name__, "message": str(exc), "notes": getattr(exc, "__notes__", [])}
    print(f"raised {type(exc).__name__}: {exc}")
finally:
    sys.setprofile(None)
    with open(result_path, "w") as out:
        json.dump(result, out, default=repr)
if scenario == "two_deploys":  # its endpoints' threads never end: leave them running, as a shut-down kernel does
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
