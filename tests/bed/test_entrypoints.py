"""Every SDK v2 local-mode entry point reports its failure: `Transformer.transform`, `Processor.run`, a local
pipeline's step, v2's `ModelTrainer.train`, and a failure before any container runs. Each is provoked for real
with SageMaker SDK v2 against a bed engine, in a user program with `import agent.autowrap`, and shown by the
real `smdiag last-failure`."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import pytest

from testbed import bed

pytestmark = pytest.mark.bed

ROLE = "arn:aws:iam::111111111111:role/dummy"
PLANTED = {
    "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EPPLANT",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/EPPLANTEDSECRET",
}
"""Keys the SDK hands to the containers (and writes into its compose files): absent from every file of ours."""
CRASHING_SERVE = (
    'echo "loading model"; echo "Traceback (most recent call last):" >&2; echo "KeyError: model_fn" >&2; exit 2'
)
PROGRAM = textwrap.dedent(
    """
    import json, logging, os, sys
    import agent.autowrap
    from sagemaker.local import LocalSession
    logging.basicConfig(level=logging.INFO, format="%(name)s %(message)s")  # the SDK's own wait, attempt by attempt
    OPT_OUT = {"SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}}
    session = LocalSession(sagemaker_config=OPT_OUT, default_bucket="ep-bucket")
    session.config = {"local": {"local_code": True, "serving_port": int(os.environ["SERVING_PORT"])}}
    kind, image, work = sys.argv[1], sys.argv[2], sys.argv[3]
    result = {}
    try:
        if kind in ("transform", "transform_bad_strategy"):
            from sagemaker.model import Model
            model = Model(image_uri=image, model_data="file://" + os.path.join(work, "model.tar.gz"), role=ROLE,
                          sagemaker_session=session)
            strategy = "Bogus" if kind == "transform_bad_strategy" else None
            model.transformer(1, "local", strategy=strategy).transform("file://" + os.path.join(work, "data"),
                                                                     content_type="text/csv")
        elif kind == "process":
            from sagemaker.processing import ScriptProcessor
            ScriptProcessor(command=["sh"], image_uri=image, role=ROLE, instance_count=1, instance_type="local",
                            sagemaker_session=session).run(code=os.path.join(work, "process.sh"))
        elif kind == "fit_sharded":  # unsupported in local mode: refused before any container runs
            from sagemaker.estimator import Estimator
            from sagemaker.inputs import TrainingInput
            Estimator(image_uri=image, role=ROLE, instance_count=1, instance_type="local",
                      sagemaker_session=session).fit(
                          TrainingInput("file://" + os.path.join(work, "data"), distribution="ShardedByS3Key"))
        elif kind == "pipeline":
            from sagemaker.processing import ScriptProcessor
            from sagemaker.workflow.pipeline import Pipeline
            from sagemaker.workflow.pipeline_context import LocalPipelineSession
            from sagemaker.workflow.steps import ProcessingStep
            pipeline_session = LocalPipelineSession(default_bucket="ep-bucket")  # opted out in the config file
            pipeline_session.config = {"local": {"local_code": True}}
            processor = ScriptProcessor(command=["sh"], image_uri=image, role=ROLE, instance_count=1,
                                        instance_type="local", sagemaker_session=pipeline_session)
            step = ProcessingStep(name="Prepare", step_args=processor.run(code=os.path.join(work, "process.sh")))
            pipeline = Pipeline(name="entrypoints", steps=[step], sagemaker_session=pipeline_session)
            pipeline.create(ROLE)
            execution = pipeline.start()
            result["status"] = execution.describe()["PipelineExecutionStatus"]
            result["steps"] = [s["StepStatus"] for s in execution.list_steps()["PipelineExecutionSteps"]]
        elif kind == "model_trainer":
            from sagemaker.modules.configs import Compute
            from sagemaker.modules import Session
            from sagemaker.modules.train.model_trainer import Mode, ModelTrainer
            ModelTrainer(training_image=image, training_mode=Mode.LOCAL_CONTAINER, role=ROLE,
                         compute=Compute(instance_type="local_cpu", instance_count=1), base_job_name="ep",
                         sagemaker_session=Session(), local_container_root=os.path.join(work, "root")).train()
    except Exception as exc:
        result.update(type=type(exc).__name__, message=str(exc), notes=getattr(exc, "__notes__", []))
    print(json.dumps(result))
    """
).replace("ROLE", repr(ROLE))


@pytest.fixture
def user(tmp_path, hermetic_env, make_engine, images, moto_endpoint, race_free_compose_path):
    """user(kind, image) -> (stderr, result, report): the program run once against a fresh bed engine, whose
    compose reports each container's exit every time (conftest: Compose v1 loses it on a loaded machine)."""
    program = tmp_path / "user_program.py"
    program.write_text(PROGRAM)
    urllib.request.urlopen(urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST"), timeout=30)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "rows.csv").write_text("1,2\n3,4\n")
    bed.model_tarball(tmp_path)
    config = tmp_path / ".config" / "sagemaker" / "config.yaml"  # the user's SageMaker config ($HOME is tmp_path)
    config.parent.mkdir(parents=True)
    config.write_text("SchemaVersion: '1.0'\nSageMaker:\n  PythonSDK:\n    Modules:\n      TelemetryOptOut: true\n")
    (tmp_path / "process.sh").write_text(
        'echo "processing"\necho "Traceback (most recent call last):" >&2\n'
        "echo '  File \"/opt/ml/processing/input/code/prep.py\", line 7, in <module>' >&2\n"
        'echo "ValueError: column price is missing" >&2\nexit 1\n'
    )
    daemon, _disk = make_engine()
    state = Path(hermetic_env["SMDIAG_STATE_DIR"])
    env = {
        **hermetic_env,
        "DOCKER_HOST": daemon.host,
        "AWS_DEFAULT_REGION": "us-east-1",
        "HOME": str(tmp_path),
        "SAGEMAKER_SUPPRESS_V2_WARNING": "1",
        "AWS_ENDPOINT_URL": moto_endpoint,
        **PLANTED,
        "SERVING_PORT": str(bed.free_port()),
        "PATH": race_free_compose_path,
    }  # fmt: skip: a transform's server on the host, not on its 8080

    def run(kind: str, image: str):
        done = subprocess.run([sys.executable, str(program), kind, image, str(tmp_path)], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=400)  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        result = json.loads(done.stdout.strip().splitlines()[-1])
        reports = sorted(state.glob("failures/*/report.json"))
        return done.stderr, result, json.loads(reports[-1].read_text()) if reports else None

    run.daemon, run.images, run.env = daemon, images, env
    return run


def build(user, tag: str, **scripts: str) -> str:
    with user.daemon.client() as client:
        user.images.build(client, tag, scripts=scripts, cmd=["train"])
    return tag


def shown(smdiag, user) -> str:
    """What `smdiag last-failure` prints; and no planted key in any file smdiag wrote."""
    done = smdiag("last-failure", env=user.env)
    assert done.returncode == 0, done.stderr
    for path in Path(user.env["SMDIAG_STATE_DIR"]).rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            assert not [value for value in PLANTED.values() if value in text], path
    return done.stdout


def test_a_batch_transform_whose_server_crashes_is_reported_before_the_sdks_wait_ends(user, smdiag):
    image = build(user, "ep/bad-serve:1", serve=CRASHING_SERVE, train="exit 0")
    stderr, raised, report = user("transform", image)
    assert raised["type"] == "RuntimeError" and "Giving up" in raised["message"]  # the SDK's own exception
    assert raised["notes"][0].startswith("smdiag: ")
    assert report["call"]["kind"] == "transform" and report["call"]["instance_type"] == "local"
    assert report["category"] == "serving_crashed" and "KeyError: model_fn" in report["summary"]
    [container] = report["containers"]
    assert container["exit_code"] == 2 and "KeyError: model_fn" in container["logs"]
    # The SDK pings every 5 s up to its 120 s: the wrapper stopped at the attempt after the container exited.
    attempts = [int(n) for n in re.findall(r"Checking if serving container is up, attempt: (\d+)", stderr)]
    assert attempts and max(attempts) < 120
    assert "local-mode transform failed" in stderr
    assert "KeyError: model_fn" in shown(smdiag, user)


def test_a_transform_refused_before_any_container_runs_reports_through_transform(user, smdiag):
    image = build(user, "ep/serve:1", serve="exit 0", train="exit 0")
    _stderr, raised, report = user("transform_bad_strategy", image)
    assert raised["type"] == "ValueError" and "BatchStrategy" in raised["message"]
    assert report["call"]["kind"] == "transform" and report["containers"] == []
    assert "Invalid BatchStrategy" in shown(smdiag, user)


def test_a_failing_processing_script_is_script_error_with_file_and_line(user, smdiag):
    image = build(user, "ep/process:1", train="exit 0")
    stderr, raised, report = user("process", image)
    assert raised["type"] == "RuntimeError" and "Failed to run" in raised["message"], stderr[-3000:]
    assert report["call"]["kind"] == "process" and report["call"]["class_name"] == "ScriptProcessor"
    assert report["category"] == "script_error"
    assert "/opt/ml/processing/input/code/prep.py, line 7" in report["summary"]
    assert "smdiag: local-mode process failed [script_error]" in stderr
    assert "ValueError: column price is missing" in shown(smdiag, user)


def test_a_local_pipelines_failed_step_is_reported_by_name(user, smdiag):
    image = build(user, "ep/process:1", train="exit 0")
    stderr, result, report = user("pipeline", image)
    assert "type" not in result  # the SDK turns a step's failure into the execution's status
    assert result["status"] == "Failed" and result["steps"] == ["Failed"]
    assert report["call"]["kind"] == "pipeline" and report["call"]["step"] == "Prepare"
    assert report["call"]["pipeline"] == "entrypoints" and report["category"] == "script_error"
    assert report["exception"]["type"] == "StepExecutionException"
    assert "smdiag: local-mode pipeline failed at step 'Prepare' [script_error]" in stderr
    text = shown(smdiag, user)
    assert "Prepare" in text and "ValueError: column price is missing" in text


def test_an_unsupported_input_is_reported_through_fit_before_any_container(user, smdiag):
    image = build(user, "ep/train:1", train="echo ok")
    _stderr, raised, report = user("fit_sharded", image)
    assert raised["type"] == "RuntimeError" and "FullyReplicated" in raised["message"]
    assert report["call"]["kind"] == "fit" and report["containers"] == []
    assert "FullyReplicated" in shown(smdiag, user)


def test_a_v2_model_trainer_with_a_broken_script_is_script_error(user, smdiag):
    image = build(user, "ep/broken:1", train="exec 2>&1\n" + bed.BROKEN_TRAIN_SCRIPT)
    stderr, raised, report = user("model_trainer", image)
    assert raised["type"] == "RuntimeError" and "Failed to run" in raised["message"], stderr[-3000:]
    assert report["call"]["kind"] == "train" and report["call"]["sdk"] == "v2"
    assert report["category"] == "script_error" and "/opt/ml/code/train.py, line 3" in report["summary"]
    assert "smdiag: local-mode train failed [script_error]" in stderr
    assert "cannot import name 'seeds'" in shown(smdiag, user)
