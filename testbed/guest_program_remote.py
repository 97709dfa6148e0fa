"""A user's program for the managed-call differential tests (tests/bed/test_remote_guest.py): one managed
SageMaker call, with SDK v2 or v3 (whichever this interpreter has), against moto (`ManagedAws.env()`).

    python guest_program_remote.py SCENARIO RESULT_JSON ROLE BUCKET IMAGE

What the user sees goes to stdout/stderr as the SDK makes it; RESULT_JSON gets the exception (type, message,
notes) and every AWS API call this process made (service, operation, parameters), as botocore's clients
made them, whichever session made the client.
"""

import json
import sys

import boto3
import botocore.client

scenario, result_path, ROLE, BUCKET, IMAGE = sys.argv[1:6]
REGION = "us-east-1"
result = {"api": [], "exception": None}
_make_api_call = botocore.client.BaseClient._make_api_call


def _recorded_call(client, operation, params):
    result["api"].append([client.meta.service_model.service_name, operation, params])
    return _make_api_call(client, operation, params)


botocore.client.BaseClient._make_api_call = _recorded_call


def v2_fit():
    import sagemaker
    from sagemaker.estimator import Estimator

    session = sagemaker.Session(boto_session=boto3.Session(region_name=REGION), default_bucket=BUCKET)
    estimator = Estimator(image_uri=IMAGE, role=ROLE, instance_count=1, instance_type="ml.m5.xlarge",
                          base_job_name="guest", output_path=f"s3://{BUCKET}/out",
                          sagemaker_session=session)  # fmt: skip
    estimator.fit({"train": f"s3://{BUCKET}/train"})
    print("fit returned", estimator.latest_training_job.job_name)


def v2_process():
    import sagemaker
    from sagemaker.processing import ScriptProcessor

    with open("process.py", "w") as script:
        script.write("print('processing')\n")
    session = sagemaker.Session(boto_session=boto3.Session(region_name=REGION), default_bucket=BUCKET)
    processor = ScriptProcessor(command=["python3"], image_uri=IMAGE, role=ROLE, instance_count=1,
                                instance_type="ml.m5.xlarge", sagemaker_session=session)  # fmt: skip
    processor.run(code="process.py", logs=False)  # moto's DescribeProcessingJob has no ProcessingResources for logs
    print("run returned")


def v2_deploy():
    import sagemaker
    from sagemaker.model import Model

    session = sagemaker.Session(boto_session=boto3.Session(region_name=REGION), default_bucket=BUCKET)
    model = Model(image_uri=IMAGE, model_data=f"s3://{BUCKET}/model.tar.gz", role=ROLE, name="guest-model",
                  sagemaker_session=session)  # fmt: skip
    model.deploy(initial_instance_count=1, instance_type="ml.m5.large", endpoint_name="guest-endpoint")
    print("deploy returned")


def v3_train():
    from sagemaker.core.helper.session_helper import Session
    from sagemaker.core.training.configs import Compute, InputData
    from sagemaker.train.model_trainer import ModelTrainer

    session = Session(boto_session=boto3.Session(region_name=REGION), default_bucket=BUCKET)
    trainer = ModelTrainer(training_image=IMAGE, role=ROLE, base_job_name="guest", sagemaker_session=session,
                           compute=Compute(instance_type="ml.m5.xlarge", instance_count=1))  # fmt: skip
    trainer.train(input_data_config=[InputData(channel_name="train", data_source=f"s3://{BUCKET}/train")])
    print("train returned")


def v3_wait():
    """sagemaker-core's own: a job created, then waited for by the user."""
    from sagemaker.core.resources import TrainingJob
    from sagemaker.core.shapes import AlgorithmSpecification, OutputDataConfig, ResourceConfig, StoppingCondition

    job = TrainingJob.create(
        training_job_name="guest-core-job", role_arn=ROLE,
        algorithm_specification=AlgorithmSpecification(training_image=IMAGE, training_input_mode="File"),
        output_data_config=OutputDataConfig(s3_output_path=f"s3://{BUCKET}/out"),
        resource_config=ResourceConfig(instance_type="ml.m5.xlarge", instance_count=1, volume_size_in_gb=30),
        stopping_condition=StoppingCondition(max_runtime_in_seconds=3600),
        session=boto3.Session(region_name=REGION), region=REGION,
    )  # fmt: skip
    job.wait(poll=1)
    print("wait returned")


SCENARIOS = {f.__name__: f for f in (v2_fit, v2_process, v2_deploy, v3_train, v3_wait)}
try:
    SCENARIOS[scenario]()
except Exception as exc:  # noqa: BLE001 - what the user's program would have seen
    result["exception"] = {"type": type(exc).__name__, "message": str(exc), "notes": getattr(exc, "__notes__", [])}
    print(f"raised {type(exc).__name__}: {exc}")
finally:
    with open(result_path, "w") as out:
        json.dump(result, out, default=repr)
