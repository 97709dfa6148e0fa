"""A user's program for the SDK v3 tests (tests/test_sdk_v3.py): local-mode `ModelTrainer.train()`, run in
an environment with the kernel hook and in one without.

    python guest_program_v3.py RESULT_JSON IMAGE DATA_DIR CONTAINER_ROOT

What the user sees goes to stdout/stderr as the SDK makes it; RESULT_JSON gets the exception (type, message,
notes) and every SDK function called in the main thread (sys.setprofile), for the test to compare: a
generator's consecutive resumptions count as one call (how often a generator over `sys.meta_path` resumes
depends on how many finders there are, and the hook adds one). With
GUEST_SESSION=1 the trainer gets a `Session` (then the SDK writes the AWS credentials into its compose file).

With GUEST_CALL=serve the program serves instead: `ModelBuilder(mode=Mode.LOCAL_CONTAINER)` (TorchServe's local
server, an InferenceSpec, CONTAINER_ROOT as its model path) `.build()` then `.deploy_local()`. With
GUEST_CRASH_ON=TEXT, once the SDK has read TEXT from the container's log (its log agent's debug line) the
program creates `crash-now` in the model path, which the bed image waits for before it exits.
"""

import inspect
import json
import os
import sys

import sagemaker

result_path, image, data_dir, container_root = sys.argv[1:5]
SDK_DIRS = tuple(os.path.join(p, "") for p in sagemaker.__path__)
result = {"sdk_calls": [], "exception": None}


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


sys.setprofile(sdk_calls)
try:
    serve() if os.environ.get("GUEST_CALL") == "serve" else train()
except Exception as exc:
    result["exception"] = {"type": type(exc).__name__, "message": str(exc), "notes": getattr(exc, "__notes__", [])}
finally:
    sys.setprofile(None)
with open(result_path, "w") as out:
    json.dump(result, out)
