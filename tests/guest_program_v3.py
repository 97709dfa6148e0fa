"""A user's program for the SDK v3 tests (tests/test_sdk_v3.py): local-mode `ModelTrainer.train()`, run in
an environment with the kernel hook and in one without.

    python guest_program_v3.py RESULT_JSON IMAGE DATA_DIR CONTAINER_ROOT

What the user sees goes to stdout/stderr as the SDK makes it; RESULT_JSON gets the exception (type, message,
notes) and every SDK function called in the main thread (sys.setprofile), for the test to compare: a
generator's consecutive resumptions count as one call (how often a generator over `sys.meta_path` resumes
depends on how many finders there are, and the hook adds one). With
GUEST_SESSION=1 the trainer gets a `Session` (then the SDK writes the AWS credentials into its compose file).
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


sys.setprofile(sdk_calls)
try:
    train()
except Exception as exc:
    result["exception"] = {"type": type(exc).__name__, "message": str(exc), "notes": getattr(exc, "__notes__", [])}
finally:
    sys.setprofile(None)
with open(result_path, "w") as out:
    json.dump(result, out)
