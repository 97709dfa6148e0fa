"""The guest's pure parts: whether a call is local (read from plain attributes and arguments only), the Call
built in one place, the facts a capture becomes, and v3's pull tee put back on the client it borrowed."""

from __future__ import annotations

from unittest import mock

import docker

from agent.guest import local
from agent.guest.capture import Capture, Run
from agent.guest.facts import Call, FailureFacts, KeptContainer, RaisedException
from agent.guest.taps_v3 import _CapturedPull


class LocalSession:
    """Named as the SDK's: the guest reads class names, never asks the SDK."""


class PipelineSession:
    pass


class Estimator:
    def __init__(self, **attributes) -> None:
        vars(self).update(attributes)

    def fit(self, inputs=None, wait=True):
        pass

    def deploy(self, initial_instance_count=None, instance_type=None):
        pass


class Member:
    """An enum member as a pydantic model holds it: its name in its own attributes."""

    def __init__(self, name: str) -> None:
        self._name_ = name


def describe(kind: str, obj, *args, **kwargs):
    original = getattr(type(obj), kind, Estimator.fit)
    return local.method(kind)(original, (obj, *args), kwargs)


def test_a_local_estimator_call_is_described_from_its_attributes():
    estimator = Estimator(instance_type="local", image_uri="guest/train:1", sagemaker_session=None)
    assert describe("fit", estimator) == Call(
        kind="fit", class_name="Estimator", instance_type="local", images=["guest/train:1"]
    )
    assert describe("fit", Estimator(instance_type="ml.m5.large", sagemaker_session=LocalSession())).kind == "fit"
    assert describe("fit", Estimator(instance_type="ml.m5.large")) is None


def test_deploy_reads_its_own_instance_type_argument_and_leaves_refused_arguments_to_the_sdk():
    model = Estimator(image_uri="guest/serve:1")
    assert describe("deploy", model, 1, "local").instance_type == "local"
    assert describe("deploy", model, instance_type="ml.m5.large") is None
    assert describe("deploy", model, unknown=1) is None


def test_a_pipeline_session_a_pipeline_variable_and_a_mock_are_not_local():
    assert describe("fit", Estimator(instance_type="local", sagemaker_session=PipelineSession())) is None
    variable = mock.MagicMock(name="ParameterString")
    assert describe("fit", Estimator(instance_type=variable, image_uri=variable)) is None
    mocked = mock.MagicMock(name="Estimator")
    assert local.method("fit")(Estimator.fit, (mocked,), {}) is None
    assert mocked.mock_calls == [] and variable.mock_calls == []  # nothing was asked of them


def test_v3_trainers_and_builders_are_local_in_local_container_mode():
    trainer = Estimator(training_mode=Member("LOCAL_CONTAINER"), training_image="guest/train:1",
                        compute=Estimator(instance_type="local_cpu"), local_container_root="/data/root")  # fmt: skip
    assert describe("train", trainer) == Call(
        kind="train", class_name="Estimator", instance_type="local_cpu", images=["guest/train:1"]
    )
    assert local.container_root(trainer) == "/data/root"
    trainer.training_mode = Member("SAGEMAKER_TRAINING_JOB")
    assert describe("train", trainer) is None

    def build(self, mode=None):
        pass

    builder = Estimator(mode=Member("LOCAL_CONTAINER"), image_uri="guest/serve:1")
    assert local.method("serve")(build, (builder,), {}).images == ["guest/serve:1"]
    assert local.method("serve")(build, (builder,), {"mode": Member("SAGEMAKER_ENDPOINT")}) is None


def test_local_jobs_and_pipeline_steps_are_named_from_their_arguments():
    call = local.job("fit")(None, (LocalSession(),), {"AlgorithmSpecification": {"TrainingImage": "guest/t:1"}})
    assert call == Call(kind="fit", class_name="LocalSession", images=["guest/t:1"])

    def _execute_step(self, step):
        pass

    executor = Estimator(execution=Estimator(pipeline=Estimator(name="guest")))
    step = local.pipeline_step(_execute_step, (executor, Estimator(name="Prepare")), {})
    assert (step.pipeline, step.step, step.step_type, step.instance_type) == ("guest", "Prepare", "Estimator", "local")


def test_a_capture_becomes_the_facts_the_recorder_reads_back():
    capture = Capture(Call(kind="fit", class_name="Estimator", images=["guest/train:1"], sdk="v2"))
    run = Run(["docker-compose", "-f", "/tmp/c/docker-compose.yaml", "up"])
    run.keep(b"Creating algo-1 ... done\n\nalgo-1 | Traceback\n")
    capture.runs.append(run)
    capture.note_pull_error("guest/base:1", "no space left on device")
    capture.kept_containers.append(KeptContainer(name="algo-1", exit_code=1, logs=["boom"]))
    try:
        raise RuntimeError("Failed to run")
    except RuntimeError as exc:
        facts = capture.facts(RaisedException.of(exc))
    assert facts.call.images == ["guest/train:1", "guest/base:1"] and facts.call.sdk == "v2"
    assert facts.compose_files == ["/tmp/c/docker-compose.yaml"]
    assert facts.compose_stream == ["Creating algo-1 ... done", "algo-1 | Traceback"]
    assert facts.exception.type == "RuntimeError" and "raise RuntimeError" in facts.exception.traceback
    assert FailureFacts.from_json(facts.to_json()) == facts


def test_v3s_pull_tee_is_put_back_on_the_client_it_borrowed():
    api = docker.APIClient(base_url="unix:///nonexistent/docker.sock", version="1.41")  # never connects
    pull = _CapturedPull()
    pull.tee(api)
    assert api.pull.__name__ == "pull" and "pull" in vars(api)
    pull.restore()
    assert "pull" not in vars(api) and api.pull.__func__ is type(api).pull

    mocked = mock.MagicMock(name="api")  # a user's mock: put back as it was, its record intact
    pull = _CapturedPull()
    pull.tee(mocked)
    mocked.pull("guest/image", tag="1", stream=True)
    pull.restore()
    mocked.pull.assert_called_once_with("guest/image", tag="1", stream=True)
