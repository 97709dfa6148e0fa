"""The local runner, the book's path: SDK v2 framework estimators in local mode (`fit`, `deploy`,
`predict`, `delete_endpoint`), with failures explained by agent.autowrap. Needs Docker and the framework
images (pulled from ECR on a notebook; built offline by `smdiag images build`)."""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from pathlib import Path

from agent import inputs
from agent.experiments import data
from agent.experiments.runner import Progress, Result, finish, grid, no_progress, reported
from agent.frameworks import ENTRY_POINTS, HYPERPARAMETERS, REGION, SERVING_ENTRY_POINTS, VERSIONS, image_uris
from agent.guest.install import install as install_guest

ROLE = "arn:aws:iam::111111111111:role/local-mode"
"""Local mode needs a role string of the right shape, never a real one."""
CODE_LOCATION = "s3://local-mode-code-unused/code"
"""With local code nothing is uploaded, but without a code location the SDK's deploy asks STS and S3 for
its default bucket, which needs AWS credentials."""


class LocalRunner:
    """One framework after another: every local-mode endpoint serves on the host's port 8080."""

    mode = "local"

    def __init__(self, settings) -> None:
        self.settings = settings

    def check(self, _frameworks: list[str]) -> None:
        inputs.sdk_v2("health --mode local")

    def run_all(self, frameworks, data_dir, quick, scripts, work, progress) -> list[Result]:
        return [
            reported(
                round_trip(_EstimatorTrip(f, data_dir, quick, scripts), data_dir, quick, self.settings, progress),
                progress,
            )
            for f in frameworks
        ]


def missing_images(client, frameworks: list[str]) -> list[str]:
    """The framework images (the URIs both SDK majors resolve) that the engine behind `client` lacks."""
    import docker.errors  # not at the top: `health` runs natively where docker-py is not installed

    missing = []
    for uri in [uri for framework in frameworks for uri in image_uris(framework)]:
        try:
            client.images.get(uri)
        except docker.errors.ImageNotFound:
            missing.append(uri)
    return missing


def round_trip(trip, data_dir: Path, quick: bool, settings, progress: Progress = no_progress) -> Result:
    """train -> deploy -> predict (the test set and the plot grid) -> delete, timed, on either SDK major:
    `trip` is what that major's user writes for each stage."""
    import numpy as np  # optional (smdiag[frameworks]): imported where the data is handled

    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    install_guest()
    framework = trip.framework
    result = Result(framework, "local")
    x_test, y_test = data.load(data_dir / "test_data.csv")
    payload = np.concatenate([x_test, grid()]).astype(np.float32).reshape(-1, 1)
    started = time.perf_counter()
    try:
        progress(framework, "training", trip.training)
        trip.train()
        result.train_s = round(time.perf_counter() - started, 2)
        started = time.perf_counter()
        progress(framework, "deploying", "a local endpoint")
        trip.deploy()
        deploy_s = time.perf_counter() - started
        started = time.perf_counter()
        progress(framework, "predicting", "the test set and the plot's grid")
        predictions = trip.predict(payload)
        predict_s = time.perf_counter() - started
    except Exception as exc:  # noqa: BLE001 - reported by autowrap; the health table names the report
        result.error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        result.report_id = last_report_id(exc, settings.state_dir)
        return result
    finally:
        trip.delete()
    return finish(
        result,
        y_test,
        predictions[: len(x_test)],
        predictions[len(x_test) :],
        {"deploy_s": deploy_s, "predict_s": predict_s},
        quick,
    )


class _EstimatorTrip:
    """SDK v2, the book's path: a framework estimator's `fit`, its `deploy`, `predict`, `delete_endpoint`."""

    training = "estimator.fit in a local container"

    def __init__(self, framework: str, data_dir: Path, quick: bool, scripts: Path) -> None:
        self.framework, self.data_dir, self.quick, self.scripts = framework, data_dir, quick, scripts
        self.endpoint_name = f"smdiag-health-{framework}-{uuid.uuid4().hex[:8]}"
        self.session = self.estimator = self.predictor = None

    def train(self) -> None:
        self.session = _session()
        self.estimator = _estimator(self.framework, self.scripts, self.session, self.quick)
        self.estimator.fit({channel: f"file://{self.data_dir}" for channel in ("train", "validation")})

    def deploy(self) -> None:
        self.predictor = _deploy(self.framework, self.estimator, self.scripts, self.session, self.endpoint_name)

    def predict(self, payload):
        import numpy as np  # optional (smdiag[frameworks]): imported where the data is handled

        if self.framework == "tensorflow":
            return np.asarray(self.predictor.predict({"instances": payload.tolist()})["predictions"]).reshape(-1)
        return np.asarray(self.predictor.predict(payload)).reshape(-1)

    def delete(self) -> None:
        """A failed deploy's endpoint too: its container holds the port."""
        with contextlib.suppress(Exception):
            if self.predictor is not None:
                self.predictor.delete_endpoint()
            elif self.session is not None:
                self.session.sagemaker_client.delete_endpoint(EndpointName=self.endpoint_name)


def _session():
    # the optional SDK: imported only by a local-mode run
    from sagemaker.local import LocalSession

    session = LocalSession(
        sagemaker_config={"SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}}
    )
    session.config = {"local": {"local_code": True}}
    return session


def _estimator(framework: str, scripts: Path, session, quick: bool):
    version, py_version = VERSIONS[framework]
    common = {
        "source_dir": str(scripts),
        "role": ROLE,
        "instance_count": 1,
        "instance_type": "local",
        "sagemaker_session": session,  # the seed's `sesion=` typo silently dropped it
        "code_location": CODE_LOCATION,
        "framework_version": version,
        "py_version": py_version,
        "hyperparameters": HYPERPARAMETERS["quick" if quick else "full"][framework],
    }
    if framework == "tensorflow":
        # the optional SDK: imported only by a local-mode run
        from sagemaker.tensorflow import TensorFlow

        return TensorFlow(entry_point=ENTRY_POINTS[framework], **common)
    if framework == "pytorch":
        # the optional SDK: imported only by a local-mode run
        from sagemaker.pytorch import PyTorch

        return PyTorch(entry_point=ENTRY_POINTS[framework], **common)
    # the optional SDK: imported only by a local-mode run
    from sagemaker.sklearn import SKLearn

    return SKLearn(entry_point=ENTRY_POINTS[framework], **common)


def _deploy(framework: str, estimator, scripts: Path, session, endpoint_name: str):
    """Deploy without the SDK's wait: local mode's create_endpoint returns once /ping answers, after which
    the wait would only sleep its first 30 s poll."""
    if framework == "pytorch":
        # the optional SDK: imported only by a local-mode run
        from sagemaker.deserializers import NumpyDeserializer
        from sagemaker.pytorch import PyTorchModel
        from sagemaker.serializers import NumpySerializer

        version, py_version = VERSIONS[framework]
        model = PyTorchModel(
            model_data=estimator.model_data,
            role=ROLE,
            entry_point=SERVING_ENTRY_POINTS["pytorch"],
            source_dir=str(scripts),
            framework_version=version,
            py_version=py_version,
            sagemaker_session=session,
            code_location=CODE_LOCATION,
        )
        predictor = model.deploy(
            initial_instance_count=1, instance_type="local", endpoint_name=endpoint_name, wait=False
        )
        predictor.serializer, predictor.deserializer = NumpySerializer(), NumpyDeserializer()
        return predictor
    # TensorFlow's create_model does not pass the estimator's code location on to its model.
    extra = {"code_location": CODE_LOCATION} if framework == "tensorflow" else {}
    return estimator.deploy(
        initial_instance_count=1, instance_type="local", endpoint_name=endpoint_name, wait=False, **extra
    )


def last_report_id(exc: BaseException, state_dir: Path) -> str | None:
    """The id of the report autowrap wrote for `exc` (its note says so), for the health table to name."""
    # not at the top: `health` must answer where only the CLI's own packages are (the store needs psutil)
    from agent.failures.store import last_report

    if not any(note.startswith("smdiag:") for note in getattr(exc, "__notes__", [])):
        return None
    with contextlib.suppress(Exception):
        return last_report(state_dir)[1].get("id")
    return None
