"""The local runner on SageMaker SDK v3: what a v3 user writes for local mode, failures explained by
agent.autowrap as on v2.

- Training: `ModelTrainer(training_mode=Mode.LOCAL_CONTAINER, source_code=SourceCode(...))` in the
  framework's image. v3 runs its own driver there (`sm_train.sh`, which needs bash, python3 and a pip3 on
  PATH), which runs the entry script with the hyperparameters as `--name value` arguments.
- Serving: sagemaker-core's local session, the endpoint API through which v3's `ModelBuilder` creates its
  own LOCAL_CONTAINER models (`create_model` / `create_endpoint_config` / `create_endpoint`, then
  `invoke_endpoint` on the runtime client). It serves the trained `model.tar.gz` with the image's `serve`,
  as v2's local endpoints do. ModelBuilder's model-server path is not used: it pulls its image from a
  registry on every deploy and loads the model with the SDK's own `inference.py`, which needs the SDK
  (sagemaker-serve and cloudpickle) inside the serving image; neither holds for the offline images.

The images are the same as v2's (`smdiag images build`, tagged with the URIs both majors resolve).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from pathlib import Path

from agent.experiments import data
from agent.experiments.local import ROLE, last_report_id
from agent.experiments.runner import Progress, Result, finish, grid, no_progress, reported
from agent.frameworks import ENTRY_POINTS, HYPERPARAMETERS, REGION, SERVING_ENTRY_POINTS, image_uris

TELEMETRY_OFF = {"SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}}
"""The SDK's telemetry calls AWS on every local call: off, as on v2."""
JSON, NPY = "application/json", "application/x-npy"


class LocalV3Runner:
    """One framework after another: every local endpoint serves on the host's port 8080."""

    mode = "local"

    def __init__(self, settings) -> None:
        self.settings = settings

    def check(self, _frameworks: list[str]) -> None:
        from agent import inputs

        inputs.sagemaker_sdk("health --mode local --sdk v3", 3)

    def run_all(self, frameworks, data_dir, quick, scripts, work, progress) -> list[Result]:
        return [
            reported(run_local_v3(f, data_dir, quick, scripts, work, self.settings, progress), progress)
            for f in frameworks
        ]


def run_local_v3(
    framework: str,
    data_dir: Path,
    quick: bool,
    scripts: Path,
    work: Path,
    settings,
    progress: Progress = no_progress,
) -> Result:
    """train -> serve -> predict (the test set and the plot grid) -> delete the endpoint, timed."""
    import os

    import numpy as np

    from agent import autowrap

    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    autowrap.install()
    result = Result(framework, "local")
    uris = image_uris(framework)
    root = work / f"v3-{framework}"
    root.mkdir(parents=True, exist_ok=True)
    x_test, y_test = data.load(data_dir / "test_data.csv")
    payload = np.concatenate([x_test, grid()]).astype(np.float32).reshape(-1, 1)
    endpoint = None
    started = time.perf_counter()
    try:
        progress(framework, "training", "ModelTrainer.train in a local container")
        model_data = _train(framework, uris[0], scripts, data_dir, root, quick)
        result.train_s = round(time.perf_counter() - started, 2)
        started = time.perf_counter()
        progress(framework, "deploying", "a local endpoint")
        endpoint = _Endpoint(framework, uris[-1], model_data, scripts)
        endpoint.deploy()
        deploy_s = time.perf_counter() - started
        started = time.perf_counter()
        progress(framework, "predicting", "the test set and the plot's grid")
        predictions = endpoint.predict(payload)
        predict_s = time.perf_counter() - started
    except Exception as exc:  # noqa: BLE001 - reported by autowrap; the health table names the report
        result.error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        result.report_id = last_report_id(exc, settings.state_dir)
        return result
    finally:
        if endpoint is not None:
            endpoint.delete()
    return finish(
        result,
        y_test,
        predictions[: len(x_test)],
        predictions[len(x_test) :],
        {"deploy_s": deploy_s, "predict_s": predict_s},
        quick,
    )


def _train(framework: str, image: str, scripts: Path, data_dir: Path, root: Path, quick: bool) -> Path:
    """The model's tarball, where v3's local container leaves it under its container root."""
    from sagemaker.core.training.configs import Compute, InputData, SourceCode
    from sagemaker.train.model_trainer import Mode, ModelTrainer

    trainer = ModelTrainer(
        training_image=image,
        training_mode=Mode.LOCAL_CONTAINER,
        source_code=SourceCode(source_dir=str(scripts), entry_script=ENTRY_POINTS[framework]),
        compute=Compute(instance_type="local_cpu", instance_count=1),
        hyperparameters=HYPERPARAMETERS["quick" if quick else "full"][framework],
        role=ROLE,
        local_container_root=str(root),
        base_job_name=f"smdiag-health-{framework}",
    )
    channels = [InputData(channel_name=name, data_source=str(data_dir)) for name in ("train", "validation")]
    trainer.train(input_data_config=channels, wait=True)
    return root / "compressed_artifacts" / "model.tar.gz"


class _Endpoint:
    """A local endpoint of sagemaker-core's local session serving `model_data` from `image`; TensorFlow's
    answers TF Serving's JSON, the others run their entry script's handlers on numpy arrays."""

    def __init__(self, framework: str, image: str, model_data: Path, scripts: Path) -> None:
        from sagemaker.core.local.local_session import LocalSession

        self.framework = framework
        self.session = LocalSession(sagemaker_config=TELEMETRY_OFF)
        self.session.config = {"local": {"local_code": True}}
        self.client = self.session.sagemaker_client
        self.name = f"smdiag-health-{framework}-{uuid.uuid4().hex[:8]}"
        environment = {}
        if framework != "tensorflow":
            program = SERVING_ENTRY_POINTS.get(framework, ENTRY_POINTS[framework])
            environment = {"SAGEMAKER_PROGRAM": program, "SAGEMAKER_SUBMIT_DIRECTORY": f"file://{scripts}"}
        self.container = {"Image": image, "ModelDataUrl": f"file://{model_data}", "Environment": environment}

    def deploy(self) -> None:
        """Returns once the container answers /ping; its container runs until `delete`, even if this fails."""
        self.client.create_model(ModelName=self.name, PrimaryContainer=self.container, ExecutionRoleArn=ROLE)
        variant = {
            "VariantName": "AllTraffic",
            "ModelName": self.name,
            "InitialInstanceCount": 1,
            "InstanceType": "local",
        }
        self.client.create_endpoint_config(EndpointConfigName=self.name, ProductionVariants=[variant])
        self.client.create_endpoint(EndpointName=self.name, EndpointConfigName=self.name)

    def predict(self, payload):
        import io
        import json

        import numpy as np

        runtime = self.session.sagemaker_runtime_client
        if self.framework == "tensorflow":
            body, kind = json.dumps({"instances": payload.tolist()}).encode(), JSON
        else:
            buffer = io.BytesIO()
            np.save(buffer, payload)
            body, kind = buffer.getvalue(), NPY
        response = runtime.invoke_endpoint(EndpointName=self.name, Body=body, ContentType=kind, Accept=kind)
        answer = response["Body"].read()
        status = response["ResponseMetadata"]["HTTPStatusCode"]
        if status != 200:
            raise RuntimeError(f"the endpoint answered {status}: {answer.decode(errors='replace')[:300]}")
        if self.framework == "tensorflow":
            return np.asarray(json.loads(answer)["predictions"]).reshape(-1)
        return np.load(io.BytesIO(answer), allow_pickle=False).reshape(-1)

    def delete(self) -> None:
        """The endpoint (its container stops), its config and its model: all of them, whatever failed."""
        with contextlib.suppress(Exception):
            self.client.delete_endpoint(EndpointName=self.name)
        with contextlib.suppress(Exception):
            self.client.delete_endpoint_config(EndpointConfigName=self.name)
        with contextlib.suppress(Exception):
            self.client.delete_model(ModelName=self.name)
