"""A user's program for the managed-job cases (tests/bed/test_remote_cases.py, bench/diagnosis.py): the cases
of SPEC_JSON one after the other, each the SDK call its user made against AWS (moto), in an environment where
the kernel hook is on, or not.

    python remote_program.py v2|v3 SPEC_JSON RESULT_JSON

SPEC_JSON: {"cases": [{"id", "name", "resource", "call", "wait_timeout"}, ...], "state_dir", "report_timeout"}.
SDK v2: `Estimator.fit`, `ScriptProcessor.run`, `Transformer.transform`, `Model.deploy`; SDK v3:
`ModelTrainer.train` (and sagemaker-core's `TrainingJob.wait(timeout=...)` for a user who waits with one).
Before each case its id goes to stdout and stderr (`=== case ID`), so the test reads each case's output apart.
After a call raises, the program waits for smdiag's report of it to be on disk (a new report in the state dir,
or none within `report_timeout`). RESULT_JSON: per case the exception (type, its classes, message, notes),
when the SDK raised it (the first time it passed an SDK frame), and the report's directory and mtime.

Nothing of smdiag is imported: the hook wraps the SDK by itself. The SDK's own polling sleeps (5 to 30 s
before its first Describe) are shortened: the tests judge what the user is shown, not the SDK's pace.
"""

import json
import os
import sys
import time
import types

import sagemaker

sdk, spec_path, result_path = sys.argv[1:4]
spec = json.load(open(spec_path))
ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/SageMakerRole"
BUCKET = "smdiag-bed-bucket"
IMAGE = f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/smdiag-train:1"
REPORTS = os.path.join(spec["state_dir"], "failures")


class ShortSleeps(types.ModuleType):
    """`time` for the SDK's waiting module, its sleeps at most 0.05 s."""

    def __getattr__(self, name):
        return getattr(time, name)

    @staticmethod
    def sleep(seconds):
        time.sleep(min(seconds, 0.05))


def write_sources(call: dict) -> None:
    """The user's code, where the case's entry point and source dir name it."""
    entry = call.get("entry_point")
    if entry:
        os.makedirs(os.path.dirname(entry) or ".", exist_ok=True)
        with open(entry, "w") as script:
            script.write("print('training')\n")
    with open("process.py", "w") as script:
        script.write("print('processing')\n")


def v2_call(case: dict):
    from sagemaker.estimator import Estimator
    from sagemaker.model import Model
    from sagemaker.network import NetworkConfig
    from sagemaker.processing import ScriptProcessor

    sagemaker.session.time = ShortSleeps("time")
    call, name = case["call"], case["name"]
    session = sagemaker.Session(default_bucket=BUCKET)
    common = {"role": ROLE, "instance_type": call.get("instance_type", "ml.m5.xlarge"), "sagemaker_session": session}
    image = call.get("image_uri", IMAGE)
    if case["resource"] == "training":
        estimator = Estimator(
            image_uri=image, instance_count=call.get("instance_count", 1), volume_size=call.get("volume_size", 30),
            max_run=call.get("max_run", 86400), max_wait=call.get("max_wait"),
            use_spot_instances=call.get("spot", False), checkpoint_s3_uri=call.get("checkpoint_s3_uri"),
            entry_point=call.get("entry_point"), source_dir=call.get("source_dir"), subnets=call.get("subnets"),
            security_group_ids=call.get("security_group_ids"), **common,
        )  # fmt: skip
        return lambda: estimator.fit(call.get("inputs"), job_name=name)
    if case["resource"] == "processing":
        network = NetworkConfig(subnets=call.get("subnets"), security_group_ids=call.get("security_group_ids"))
        processor = ScriptProcessor(command=["python3"], image_uri=image, instance_count=1, network_config=network,
                                    **common)  # fmt: skip
        return lambda: processor.run(code="process.py", job_name=name)
    model = Model(image_uri=image, model_data=call["model_data"], role=ROLE, sagemaker_session=session,
                  name=f"{name}-model")  # fmt: skip
    if case["resource"] == "transform":
        transformer = model.transformer(1, common["instance_type"], output_path=f"s3://{BUCKET}/batch/out")
        return lambda: transformer.transform(f"s3://{BUCKET}/batch/in/data.csv", content_type="text/csv",
                                             job_name=name)  # fmt: skip
    return lambda: model.deploy(initial_instance_count=1, instance_type=common["instance_type"], endpoint_name=name)


def v3_call(case: dict):
    from sagemaker.core.helper.session_helper import Session
    from sagemaker.core.shapes import StoppingCondition
    from sagemaker.core.training.configs import CheckpointConfig, Compute, InputData, Networking, SourceCode
    from sagemaker.train.model_trainer import ModelTrainer

    call = case["call"]
    options = {}
    if call.get("entry_point"):
        options["source_code"] = SourceCode(source_dir=call.get("source_dir", "."), entry_script=call["entry_point"])
    if call.get("subnets"):
        options["networking"] = Networking(subnets=call["subnets"], security_group_ids=call["security_group_ids"])
    if call.get("checkpoint_s3_uri"):
        options["checkpoint_config"] = CheckpointConfig(s3_uri=call["checkpoint_s3_uri"])
    trainer = ModelTrainer(
        training_image=call.get("image_uri", IMAGE), role=ROLE, base_job_name=case["name"],
        sagemaker_session=Session(default_bucket=BUCKET),
        compute=Compute(instance_type=call.get("instance_type", "ml.m5.xlarge"),
                        instance_count=call.get("instance_count", 1), volume_size_in_gb=call.get("volume_size", 30),
                        enable_managed_spot_training=call.get("spot", False)),
        stopping_condition=StoppingCondition(max_runtime_in_seconds=call.get("max_run", 86400),
                                             max_wait_time_in_seconds=call.get("max_wait")),
        **options,
    )  # fmt: skip
    inputs = [InputData(channel_name=channel, data_source=uri) for channel, uri in call.get("inputs", {}).items()]
    if not case.get("wait_timeout"):
        return lambda: trainer.train(input_data_config=inputs or None)

    def train_then_wait():
        trainer.train(input_data_config=inputs or None, wait=False)
        trainer._latest_training_job.wait(poll=1, timeout=1)

    return train_then_wait


def reports() -> set:
    return set(os.listdir(REPORTS)) if os.path.isdir(REPORTS) else set()


def new_report(before: set) -> dict | None:
    """The report of the call that just raised: a new directory of the state dir with its report.json."""
    deadline = time.monotonic() + spec["report_timeout"]
    while time.monotonic() < deadline:
        for directory in sorted(reports() - before):
            path = os.path.join(REPORTS, directory, "report.json")
            if os.path.exists(path):
                return {"dir": directory, "mtime": os.stat(path).st_mtime}
        time.sleep(0.02)
    return None


SDK_DIRS = tuple(os.path.join(path, "") for path in sagemaker.__path__)
seen: dict = {}


def in_sdk_frame(frame, event, arg):
    if event == "exception" and id(arg[1]) not in seen:
        seen[id(arg[1])] = (arg[1], time.time())  # the exception kept: its id is not reused meanwhile
    return in_sdk_frame


def tracer(frame, event, arg):
    """When the SDK raised: the first moment an exception passes through one of its frames (no line events)."""
    if frame.f_code.co_filename.startswith(SDK_DIRS):
        frame.f_trace_lines = False
        return in_sdk_frame
    return None


def run(case: dict) -> dict:
    for stream in (sys.stdout, sys.stderr):
        print(f"=== case {case['id']}", file=stream, flush=True)
    write_sources(case["call"])
    call = v2_call(case) if sdk == "v2" else v3_call(case)
    before = reports()
    seen.clear()
    sys.settrace(tracer)
    try:
        call()
    except Exception as exc:  # noqa: BLE001 - what the user's program saw
        sys.settrace(None)
        raised = {
            "type": type(exc).__name__,
            "classes": [c.__name__ for c in type(exc).__mro__],
            "message": str(exc),
            "notes": getattr(exc, "__notes__", []),
            "raised_at": seen.get(id(exc), (None, None))[1],
        }
        return {**raised, "report": new_report(before)}
    sys.settrace(None)
    return {"type": None}


results = {}
for each in spec["cases"]:
    results[each["id"]] = run(each)
    with open(result_path, "w") as out:
        json.dump(results, out)
sys.stdout.flush()
sys.stderr.flush()
