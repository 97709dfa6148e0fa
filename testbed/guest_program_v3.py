"""A user's program for the SDK v3 tests (tests/test_sdk_v3.py): local-mode `ModelTrainer.train()`, run in
an environment with the kernel hook and in one without.

    python guest_program_v3.py RESULT_JSON IMAGE DATA_DIR CONTAINER_ROOT

What the user sees goes to stdout/stderr as the SDK makes it; RESULT_JSON gets the exception (type, message,
notes) and every SDK function called in the main thread (sys.setprofile), for the test to compare: a
generator's consecutive resumptions count as one call (how often a generator over `sys.meta_path` resumes
depends on how many finders there are, and the hook adds one). With
GUEST_SESSION=1 the trainer gets a `Session` (then the SDK writes the AWS credentials into its compose file).

With GUEST_CALL=taps it calls, outside any local call, each SDK v3 step the guest taps, with the engine and
the subprocess module mocked as the SDK's own unit tests do (`docker.from_env` a MagicMock); with
GUEST_CALL=entry_points it calls each v3 entry point the guest wraps, in local mode, with inputs the SDK
refuses at once. RESULT_JSON's `outside` then holds what each returned or raised, and what the mocks saw.
The SDK's patched modules are imported first; then SMDIAG_DISABLE_AFTER_IMPORT=1 sets SMDIAG_DISABLE=1 (as
`%env` in a running kernel does), and GUEST_START_WHEN=FILE creates FILE.ready and waits for FILE.

With GUEST_CALL=serve the program serves instead: `ModelBuilder(mode=Mode.LOCAL_CONTAINER)` (TorchServe's local
server, an InferenceSpec, CONTAINER_ROOT as its model path) `.build()` then `.deploy_local()`. With
GUEST_CRASH_ON=TEXT, once the SDK has read TEXT from the container's log (its log agent's debug line) the
program creates `crash-now` in the model path, which the bed image waits for before it exits.
"""

import importlib
import inspect
import json
import os
import subprocess
import sys
import time
from unittest import mock

import sagemaker

result_path, image, data_dir, container_root = sys.argv[1:5]
SDK_DIRS = tuple(os.path.join(p, "") for p in sagemaker.__path__)
ROLE = "arn:aws:iam::111111111111:role/dummy"
result = {"sdk_calls": [], "exception": None}
CALL = os.environ.get("GUEST_CALL", "train")
PATCHED = (
    "sagemaker.train.model_trainer", "sagemaker.train.local.local_container", "sagemaker.serve.model_builder",
    "sagemaker.serve.mode.local_container_mode", "sagemaker.core.local.image", "sagemaker.core.local.entities",
    "sagemaker.core.local.local_session",
)  # fmt: skip
"""The modules the guest patches for SDK v3 (agent.guest.patches)."""


GENERATOR_FLAGS = inspect.CO_GENERATOR | inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR


def sdk_calls(frame, event, _arg):
    if event == "call" and frame.f_code.co_filename.startswith(SDK_DIRS):
        name = f"{frame.f_globals.get('__name__')}.{frame.f_code.co_qualname}"
        calls = result["sdk_calls"]
        if not (frame.f_code.co_flags & GENERATOR_FLAGS and calls and calls[-1] == name):
            calls.append(name)


def train():
    from sagemaker.core.training.configs import Compute, InputData
    from sagemaker.train.model_trainer import Mode, ModelTrainer

    session = None
    if os.environ.get("GUEST_SESSION") == "1":
        from sagemaker.core.helper.session_helper import Session

        session = Session()
    trainer = ModelTrainer(
        training_image=image,
        training_mode=Mode.LOCAL_CONTAINER,
        compute=Compute(instance_type="local_cpu", instance_count=1),
        role="arn:aws:iam::111111111111:role/dummy",
        local_container_root=container_root,
        base_job_name="guest",
        sagemaker_session=session,
    )
    trainer.train(input_data_config=[InputData(channel_name="train", data_source=data_dir)], wait=True)


def attempt(name: str, call) -> None:
    """What `call` returned or raised, under `name` in the result."""
    try:
        outcome = {"returned": repr(call())}
    except Exception as exc:  # noqa: BLE001 - the SDK's own answer is what is compared
        outcome = {"raised": type(exc).__name__, "message": str(exc), "notes": getattr(exc, "__notes__", [])}
    result["outside"][name] = outcome


def taps():
    from sagemaker.core.local import entities
    from sagemaker.core.local import image as core_image
    from sagemaker.serve.mode import local_container_mode
    from sagemaker.serve.utils.types import ModelServer
    from sagemaker.train.local import local_container

    def mocked_client():
        with mock.patch("docker.from_env") as from_env:
            client = local_container_mode._get_docker_client()
            client.api.pull("guest/image", tag="1", stream=True)
            client.api.pull.assert_called_once_with("guest/image", tag="1", stream=True)
            return client is from_env.return_value, client.api.pull.mock_calls

    def model_server():
        model = os.path.join(container_root, "model")
        with mock.patch("docker.from_env") as from_env, mock.patch.object(local_container_mode.time, "sleep"):
            server = local_container_mode.LocalContainerMode(
                model_server=ModelServer.TORCHSERVE, inference_spec=None, schema_builder=None,
                session=mock.MagicMock(), model_path=model, env_vars={"GUEST": "1"},
            )  # fmt: skip
            server.create_server(image="guest/image:1", container_timeout_seconds=5, secret_key="key",
                                 container_config={}, ping_fn=lambda: (True, "pong"))  # fmt: skip
            return type(server.client.api.pull).__name__, from_env.return_value.mock_calls

    def pull_steps():
        with mock.patch("subprocess.check_output") as check_output:
            core_image._pull_image("guest/image:1")
            local_container._pull_image("guest/image:1")
            return check_output.mock_calls

    def streamed(module):
        process = subprocess.Popen(
            ["sh", "-c", "echo one; echo two; sleep 1"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        return module._stream_output(process)

    def hosting():
        container = core_image._HostingContainer(["sh", "-c", "echo hosting"])
        container.start()
        container.join()

    attempt("mocked_client", mocked_client)
    attempt("model_server", model_server)
    attempt("pull_steps", pull_steps)
    attempt("stream_output", lambda: streamed(core_image))
    attempt("stream_output_trainer", lambda: streamed(local_container))
    attempt("hosting", hosting)
    attempt("wait_for_serving", lambda: entities._wait_for_serving_container(1, timeout=5))


def entry_points():
    from sagemaker.core.local.local_session import LocalSagemakerClient
    from sagemaker.core.training.configs import Compute, InputData
    from sagemaker.serve.mode.function_pointers import Mode as ServeMode
    from sagemaker.serve.model_builder import ModelBuilder
    from sagemaker.train.model_trainer import Mode, ModelTrainer

    opt_out = {"SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}}
    session = mock.MagicMock(sagemaker_config=opt_out, config=None, local_mode=True)
    trainer = ModelTrainer(training_image=image, training_mode=Mode.LOCAL_CONTAINER, role=ROLE, base_job_name="guest",
                           compute=Compute(instance_type="local_cpu", instance_count=1),
                           local_container_root=container_root)  # fmt: skip
    absent = InputData(channel_name="train", data_source=os.path.join(data_dir, "absent"))
    attempt("train", lambda: trainer.train(input_data_config=[absent]))
    builder = ModelBuilder(mode=ServeMode.LOCAL_CONTAINER, role_arn=ROLE, sagemaker_session=session)
    for name in ("build", "deploy", "deploy_local"):
        attempt(name, getattr(builder, name))
    client = LocalSagemakerClient(sagemaker_session=session)
    for name in ("create_training_job", "create_processing_job", "create_transform_job", "create_endpoint"):
        attempt(name, getattr(client, name))


def serve():
    import logging

    from sagemaker.core.helper.session_helper import Session
    from sagemaker.serve.builder.schema_builder import SchemaBuilder
    from sagemaker.serve.mode.function_pointers import Mode
    from sagemaker.serve.model_builder import ModelBuilder
    from sagemaker.serve.spec.inference_spec import InferenceSpec
    from sagemaker.serve.utils.types import ModelServer

    class Echo(InferenceSpec):
        def load(self, model_dir):
            return None

        def invoke(self, input_object, model):
            return input_object

    crash_on = os.environ.get("GUEST_CRASH_ON")
    if crash_on:

        class CrashSignal(logging.Handler):
            def emit(self, record):
                if crash_on in record.getMessage():
                    open(os.path.join(container_root, "crash-now"), "w").close()

        agent = logging.getLogger("sagemaker.serve.utils.logging_agent")
        agent.setLevel(logging.DEBUG)
        agent.addHandler(CrashSignal())
    builder = ModelBuilder(
        inference_spec=Echo(),
        schema_builder=SchemaBuilder("a", "b"),
        image_uri=image,
        model_server=ModelServer.TORCHSERVE,
        dependencies={"auto": False},  # the SDK's dependency probe runs without the environment's region
        mode=Mode.LOCAL_CONTAINER,
        model_path=container_root,
        role_arn="arn:aws:iam::111111111111:role/dummy",
        sagemaker_session=Session(default_bucket="guest-bucket"),
    )
    builder.build()
    builder.deploy_local()


if CALL in ("taps", "entry_points"):
    for name in PATCHED:
        importlib.import_module(name)
    result["outside"] = {}
if os.environ.get("SMDIAG_DISABLE_AFTER_IMPORT") == "1":
    os.environ["SMDIAG_DISABLE"] = "1"
if os.environ.get("GUEST_START_WHEN"):  # the SDK imported, wait for the test's word (it changes things meanwhile)
    go = os.environ["GUEST_START_WHEN"]
    open(go + ".ready", "w").close()
    while not os.path.exists(go):
        time.sleep(0.05)

sys.setprofile(sdk_calls)
try:
    {"serve": serve, "taps": taps, "entry_points": entry_points}.get(CALL, train)()
except Exception as exc:
    result["exception"] = {"type": type(exc).__name__, "message": str(exc), "notes": getattr(exc, "__notes__", [])}
finally:
    sys.setprofile(None)
with open(result_path, "w") as out:
    json.dump(result, out)
