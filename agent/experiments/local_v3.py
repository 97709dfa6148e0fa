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
import io
import json
import uuid
from pathlib import Path

from agent import inputs
from agent.experiments.local import ROLE, round_trip
from agent.experiments.runner import Result, reported
from agent.frameworks import ENTRY_POINTS, HYPERPARAMETERS, SERVING_ENTRY_POINTS, image_uris

TELEMETRY_OFF = {"SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}}
"""The SDK's telemetry calls AWS on every local call: off, as on v2."""
JSON, NPY = "application/json", "application/x-npy"


class LocalV3Runner:
    """One framework after another: every local endpoint serves on the host's port 8080."""

    mode = "local"

    def __init__(self, settings) -> None:
        self.settings = settings

    def check(self, _frameworks: list[str]) -> None:
        inputs.sagemaker_sdk("health --mode local --sdk v3", 3)

    def run_all(self, frameworks, data_dir, quick, scripts, work, progress) -> list[Result]:
        return [
            reported(
                round_trip(_TrainerTrip(f, data_dir, quick, scripts, work), data_dir, quick, self.settings, progress),
                progress,
            )
            for f in frameworks
        ]


class _TrainerTrip:
    """SDK v3: `ModelTrainer.train`, then an endpoint of sagemaker-core's local session."""

    training = "ModelTrainer.train in a local container"

    def __init__(self, framework: str, data_dir: Path, quick: bool, scripts: Path, work: Path) -> None:
        self.framework, self.data_dir, self.quick, self.scripts = framework, data_dir, quick, scripts
        self.root = work / f"v3-{framework}"
        self.model_data: Path | None = None
        self.endpoint: _Endpoint | None = None

    def train(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        image = image_uris(self.framework)[0]
        self.model_data = _train(self.framework, image, self.scripts, self.data_dir, self.root, self.quick)

    def deploy(self) -> None:
        self.endpoint = _Endpoint(self.framework, image_uris(self.framework)[-1], self.model_data, self.scripts)
        self.endpoint.deploy()

    def predict(self, payload):
        return self.endpoint.predict(payload)

    def delete(self) -> None:
        if self.endpoint is not None:
            self.endpoint.delete()


def _train(framework: str, image: str, scripts: Path, data_dir: Path, root: Path, quick: bool) -> Path:
    """The model's tarball, where v3's local container leaves it under its container root."""
    # the optional SDK: imported only by a local-mode run
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
        # the optional SDK: imported only by a local-mode run
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
        import numpy as np  # optional (smdiag[frameworks]): imported where the data is handled

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
