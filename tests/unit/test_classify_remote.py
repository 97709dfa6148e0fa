"""Managed jobs' failures (../shared/REMOTE_FAILURES.md): each case's exact text, placed where the case puts it
(C: the Create call's ClientError, in the exception and the recorder's refusal; J: the Describe's FailureReason
and status; L: a host's log lines), named with its category, a summary quoting it and a hint naming the fix."""

import pytest

from agent.failures import catalog
from agent.failures.classify import classify
from agent.failures.patterns import parse_refusal
from agent.failures.types import Evidence

JOB = "pt-2026-12-07-06-00-00-123"
V2_FAILED = "Error for Training job {name}: Failed. Reason: {reason}. Check troubleshooting guide for common errors: "
GENERIC = 'AlgorithmError: ExecuteUserScriptError:\nExitCode 1\nErrorMessage ""'
"""What the training toolkit leaves in the FailureReason when the script's stderr named no known exception."""


def evidence(remote: dict, exception: dict | None = None, sdk: str | None = "v2", **more) -> Evidence:
    remote = {"resource": "training", "name": JOB, "region": "us-east-1", "parameters": {}, **remote}
    raised = exception or {"type": "UnexpectedStatusException", "message": "the SDK's wait ended"}
    call = {"kind": "fit", "class_name": "Estimator", **({"sdk": sdk} if sdk else {})}
    return Evidence.from_dict({"call": call, "exception": raised, "remote": remote, **more})


def refused(code: str, message: str, operation: str = "CreateTrainingJob", **remote) -> Evidence:
    """C: a Create refused; botocore's ClientError in the user's process, the refusal as the recorder parsed it."""
    said = f"An error occurred ({code}) when calling the {operation} operation: {message}"
    refusal = {"code": code, "operation": operation, "message": message}
    return evidence({"refusal": refusal, **remote}, {"type": "ClientError", "message": said})


def failed(reason: str, logs: list[dict] = (), resource: str = "training", sdk: str = "v2", **describe) -> Evidence:
    """J (and L): a job the Describe says Failed with this FailureReason; SDK v2's exception repeats it."""
    key = {"training": "TrainingJobStatus", "processing": "ProcessingJobStatus", "transform": "TransformJobStatus",
           "endpoint": "EndpointStatus"}[resource]  # fmt: skip
    job = {key: "Failed", "FailureReason": reason, **describe}
    message = V2_FAILED.format(name=JOB, reason=reason) + "https://docs.aws.amazon.com/sagemaker/latest/dg/..."
    return evidence({"resource": resource, "job": job, "logs": list(logs)}, {"type": "UnexpectedStatusException",
                    "message": message}, sdk=sdk)  # fmt: skip


def host(n: int, lines: list[str], first_error: str | None = None, at: float | None = None, job: str = JOB) -> dict:
    return {"stream": f"{job}/algo-{n}-1765087200", "host": f"algo-{n}", "lines": lines, "first_error": first_error,
            "first_error_time": at}  # fmt: skip


def traceback(path: str, line: int, error: str) -> list[str]:
    return ["Traceback (most recent call last):", f'  File "{path}", line {line}, in <module>', "    main()", error]


P3 = {"ResourceConfig": {"InstanceType": "ml.p3.2xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30}}
TWO_HOSTS = {"ResourceConfig": {"InstanceType": "ml.g5.12xlarge", "InstanceCount": 2, "VolumeSizeInGB": 100}}
VPC = {"VpcConfig": {"Subnets": ["subnet-0a1b2c"], "SecurityGroupIds": ["sg-0d1e2f"]}}
T01 = ("The account-level service limit 'ml.p3.2xlarge for training job usage' is 0 Instances, with current "
       "utilization of 0 Instances and a request delta of 1 Instances. Please contact AWS support to request an "
       "increase for this limit.")  # fmt: skip
T03 = "'ml.p3.8xlarge for training job usage' is 2 Instances, with current utilization of 3 Instances"
T15 = ('No S3 objects found under S3 URL "s3://pipeline-bucket/preprocess/output/train" given in input data source. '
       "Please ensure that the bucket exists in the selected region (us-west-2), that objects exist under that S3 "
       'prefix, and that the role arn:aws:iam::111122223333:role/SageMakerRole has "s3:ListBucket" permissions on '
       'bucket "pipeline-bucket".')  # fmt: skip
SMDEBUG = [
    "[2020-02-26 10:01:12.838 ip-10-0-227-174.ec2.internal:22 INFO json_config.py:90] Creating hook from json_config "
    "at /opt/ml/input/config/debughookconfig.json.",
    "Epoch 1/10",
    "[2020-02-26 10:04:40.102 ip-10-0-227-174.ec2.internal:22 WARNING hook.py:1012] smdebug: the hook could not save "
    "tensors for step 1500",
]

# id: (evidence, category, quoted in the summary, named in the hint)
CASES = {
    "T01": (refused("ResourceLimitExceeded", T01), "quota_exceeded", T01[:90],
            "'ml.p3.2xlarge for training job usage'"),
    "T03": (
        refused("ResourceLimitExceeded", f"The account-level service limit {T03} and a request delta of 1 Instances.",
                "CreateHyperParameterTuningJob", resource="tuning", parameters={"max_parallel_jobs": 3}),
        "quota_exceeded", T03, "max_parallel_jobs (now 3)",
    ),
    "T07": (
        failed("CapacityError: Unable to provision requested ML compute capacity. Please retry using a different ML "
               "instance type.", **P3),
        "insufficient_capacity", "Unable to provision requested ML compute capacity", "instance_type=",
    ),
    "T10": (
        evidence(
            {"job": {"TrainingJobStatus": "InProgress", "SecondaryStatus": "Pending",
                     "SecondaryStatusTransitions": [{"Status": "Pending",
                                                     "StatusMessage": "Training job waiting for capacity"}],
                     "ResourceConfig": {"InstanceType": "ml.g5.12xlarge", "InstanceCount": 1}}},
            {"type": "TimeoutExceededError", "message": "Timeout exceeded while waiting for TrainingJob. Final "
             "Resource State: InProgress. Increase the timeout and try again."}, sdk="v3",
        ),
        "insufficient_capacity", "Pending - Training job waiting for capacity", "Compute(instance_type=)",
    ),
    "T13": (refused("ValidationException", "Cannot find the requested image"), "job_image",
            "Cannot find the requested image", "image_uri="),
    "T14": (
        refused("ValidationException", "TrainingImageConfig with TrainingRepositoryAccessMode set to VPC must be "
                "provided when using a training image from a private Docker registry."),
        "job_image", "must be provided when using a training image from a private Docker registry",
        "training_repository_access_mode='Vpc'",
    ),
    "T15": (refused("ValidationException", T15), "input_data", "No S3 objects found under S3 URL", "fit(inputs="),
    "T17": (failed("no file found in path /opt/ml/input/data/train"), "input_data",
            "no file found in path /opt/ml/input/data/train", "channel name"),
    "T19": (
        failed('AlgorithmError: ExecuteUserScriptError: Command "/usr/bin/python -m src/train"',
               [host(1, ["/usr/bin/python: No module named src/train"], "No module named src/train", 10.0)]),
        "entry_point", '-m src/train"', "source_dir='src', entry_point='train.py'",
    ),
    "T23": (
        failed("AlgorithmError: See job logs for more information",
               [host(1, ['exec: "train": executable file not found in $PATH'])]),
        "entry_point", 'exec: "train": executable file not found in $PATH', "chmod +x",
    ),
    "T24": (
        failed('ClientError: Artifact upload failed:API error (400): OCI runtime create failed: container_linux.go:'
               '349: starting container process caused "exec: \\"train\\": executable file not found in $PATH": '
               "unknown"),
        "entry_point", "OCI runtime create failed", "chmod +x",
    ),
    "T28": (
        refused("AccessDeniedException", "User: arn:aws:sts::111122223333:assumed-role/Student/alice is not authorized "
                "to perform: sagemaker:CreateTrainingJob on resource: arn:aws:sagemaker:us-east-1:111122223333:"
                "training-job/detect-coral with an explicit deny"),
        "job_access_denied", "sagemaker:CreateTrainingJob on resource", "SCP",
    ),
    "T33": (
        failed('AlgorithmError: InstallModuleError:\nCommand "/usr/bin/python -m pip install -r requirements.txt"',
               [host(1, ["WARNING: Retrying (Retry(total=4, connect=None, read=None, redirect=None, status=None)) "
                         "after connection broken by 'ConnectTimeoutError(<pip._vendor.urllib3.connection."
                         "HTTPSConnection object at 0x7f2c>, 'Connection to pypi.org timed out. (connect timeout=15)')'"
                         ": /simple/torch/"])],
               **VPC),
        "job_network", "Connection to pypi.org timed out", "NAT gateway",
    ),
    "T36": (
        failed(GENERIC, [host(1, ["2019-12-03 09:59:11,038 sagemaker-containers ERROR    InstallModuleError:",
                                  'Command "/usr/bin/python -m pip install -U . -r requirements.txt"'])]),
        "job_dependencies", 'pip install -U . -r requirements.txt"', "setup.py",
    ),
    "T38": (failed("ClientError: Data download failed:Insufficient disk space", **P3), "job_disk_full",
            "Data download failed:Insufficient disk space", "volume_size=<GB>"),
    "T39": (failed("ClientError: Artifact upload failed:Insufficient disk space", sdk="v3", **P3), "job_disk_full",
            "Artifact upload failed:Insufficient disk space", "Compute(volume_size_in_gb=<GB>)"),
    "T42": (
        failed(GENERIC, [host(1, ["RuntimeError: root folder '/' has only 96GB, while the additional volume is "
                                  "mounted to '/tmp'"])]),
        "job_disk_full", "root folder '/' has only 96GB", "the mount the log names",
    ),
    "T45": (
        failed(GENERIC, [host(1, [*traceback("/opt/ml/code/train.py", 88, "RuntimeError: CUDA out of memory. Tried to "
                                             "allocate 288.00 MiB (GPU 0; 15.78 GiB total capacity; 14.2 GiB already "
                                             "allocated)")])], **P3),
        "job_out_of_memory", "CUDA out of memory. Tried to allocate 288.00 MiB", "smaller batch size",
    ),
    "T48": (failed("AlgorithmError: Exit Code: 139", **P3), "job_crashed", "Exit Code: 139", "native library"),
    "T52": (
        refused("ValidationException", "Invalid MaxWaitTimeInSeconds. It is only supported when "
                "EnableManagedSpotTraining is set to true"),
        "spot_config", "Invalid MaxWaitTimeInSeconds", "use_spot_instances=True",
    ),
    "T54": (
        evidence({"job": {"TrainingJobStatus": "Completed", "SecondaryStatus": "Completed",
                          "EnableManagedSpotTraining": True,
                          "SecondaryStatusTransitions": [
                              {"Status": "Training", "StatusMessage": "Training image download completed."},
                              {"Status": "Interrupted", "StatusMessage": "Training job interrupted by spot reclaim"},
                              {"Status": "Training", "StatusMessage": "Training image download completed."},
                              {"Status": "Completed", "StatusMessage": "Training job completed"}]}}),
        "spot_interrupted", "no CheckpointConfig", "checkpoint_s3_uri=",
    ),
    "T56": (
        failed(GENERIC, [
            host(1, ["[rank0]: RuntimeError: NCCL communicator was aborted on rank 0"],
                 "[rank0]: RuntimeError: NCCL communicator was aborted on rank 0", 1765089100.0),
            host(2, ["[E ProcessGroupNCCL.cpp:475] [Rank 1] Watchdog caught collective operation timeout",
                     "exitcode  : -6 (pid: 211)", "traceback : Signal 6 (SIGABRT) received by PID 211"],
                 "traceback : Signal 6 (SIGABRT) received by PID 211", 1765089000.0),
        ], **TWO_HOSTS),
        "distributed_host_failed", f"algo-2 failed first (log stream {JOB}/algo-2-1765087200): traceback : Signal 6 "
        "(SIGABRT)", "NCCL_DEBUG=INFO",
    ),
    "T59": (
        failed(GENERIC, [
            host(1, ["MPI_ABORT was invoked on rank 2 in communicator MPI COMMUNICATOR 5 DUP FROM 0"],
                 "MPI_ABORT was invoked on rank 2 in communicator MPI COMMUNICATOR 5 DUP FROM 0", 1765089200.0),
            host(3, ["[1,2]<stderr>:[algo-3:00045] *** Process received signal ***"],
                 "[1,2]<stderr>:[algo-3:00045] *** Process received signal ***", 1765089150.0),
        ], ResourceConfig={"InstanceType": "ml.p3.16xlarge", "InstanceCount": 3}),
        "distributed_host_failed", "algo-3 failed first", "the first error in that host's stream",
    ),
    "T62": (
        evidence({"job": {"TrainingJobStatus": "Stopped", "SecondaryStatus": "MaxRuntimeExceeded",
                          "DebugHookConfig": {"S3OutputPath": "s3://bucket/debug"}},
                  "logs": [host(1, SMDEBUG)]}),
        "debugger_hook_stall", "smdebug: the hook could not save tensors", "debugger_hook_config=False",
    ),
    "T65": (
        failed('ExecuteUserScriptError:\nExitCode 1\nErrorMessage "raise EnvironmentError(msg)',
               [host(1, ["Traceback (most recent call last):", '  File "/opt/ml/code/train.py", line 31, in <module>',
                         '  File "/opt/conda/lib/python3.8/site-packages/transformers/configuration_utils.py", line '
                         '514, in get_config_dict', "    raise EnvironmentError(msg)",
                         "OSError: Can't load config for 'bert-base-uncased-x'."])]),
        "job_script_error", "OSError: Can't load config for 'bert-base-uncased-x'. (/opt/ml/code/train.py, line 31, "
        "raised in /opt/conda/lib/python3.8/site-packages/transformers/configuration_utils.py, line 514)",
        "file and line",
    ),
    "T66": (
        failed(GENERIC, [host(1, ["epoch 0", *traceback("/opt/ml/code/train.py", 42, "KeyError: 'label'")])]),
        "job_script_error", "KeyError: 'label' (/opt/ml/code/train.py, line 42)", "file and line",
    ),
    "T67": (refused("ThrottlingException", "Rate exceeded"), "throttled", "ThrottlingException: Rate exceeded",
            "back off"),
    "O02": (
        failed("ClientError: Failed to download data. ListObjectsV2 failed for s3://notebooks-bucket/input/: "
               "nextToken:[null]: Unable to execute request to S3", resource="processing",
               NetworkConfig={"VpcConfig": {"Subnets": ["subnet-0a1b2c"], "SecurityGroupIds": ["sg-0d1e2f"]}}),
        "job_network", "Unable to execute request to S3", "S3 gateway VPC endpoint",
    ),
    "O06": (
        failed("AlgorithmError: See job logs for more information", resource="transform",
               logs=[host(1, ['{"error": "module \'tensorflow\' has no attribute \'train\'"}'])]),
        "model_framework_mismatch", "module 'tensorflow' has no attribute 'train'", "framework_version=",
    ),
    "O11": (
        failed('Failed to extract model data archive for container "container_1" from URL "s3://bucket/model.tar.gz". '
               "Please ensure that the object located at the URL is a valid tar.gz archive.", resource="endpoint"),
        "model_data", "Failed to extract model data archive", "gzipped tar",
    ),
    "O12": (
        failed('Failed to download model data for container "container_1" from URL: "s3://bucket/fraud/model.tar.gz". '
               "Please ensure that there is an object located at the URL and that the role passed to CreateModel has "
               "permissions to download the object.", resource="endpoint"),
        "model_data", "Failed to download model data", "Model(model_data=)",
    ),
    "O16": (
        failed("The primary container for production variant AllTraffic did not pass the ping health check.",
               resource="endpoint", logs=[host(1, ['exec: "serve": executable file not found in $PATH'])]),
        "entry_point", 'exec: "serve": executable file not found in $PATH', "chmod +x",
    ),
    "O20": (
        failed("The primary container for production variant AllTraffic did not pass the ping health check.",
               resource="endpoint", logs=[host(1, [
                   "2021-03-01T10:00:00,123 [INFO ] W-9000-model_1-stdout MODEL_LOG - Traceback (most recent call "
                   "last):",
                   '2021-03-01T10:00:00,124 [INFO ] W-9000-model_1-stdout MODEL_LOG -   File "/opt/ml/model/code/'
                   'inference.py", line 12, in model_fn',
                   "2021-03-01T10:00:00,125 [INFO ] W-9000-model_1-stdout MODEL_LOG - FileNotFoundError: model.pth",
                   "2021-03-01T10:00:01,000 [INFO ] W-9000-model_1 Load model failed: model, error: Worker died."])]),
        "model_load_failed", "Load model failed: model, error: Worker died.", "model_fn",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_each_case_is_named_with_its_evidence_line_and_its_fix(case):
    built, category, quoted, fix = CASES[case]
    diagnosis = classify(built)
    assert diagnosis.category == category, diagnosis.summary
    assert quoted in diagnosis.summary, diagnosis.summary
    assert fix in diagnosis.hint, diagnosis.hint
    assert diagnosis.remedy is None


def test_a_quota_of_zero_names_the_quota_and_its_code_from_service_quotas():
    built = refused("ResourceLimitExceeded", T01, quota={"name": "ml.p3.2xlarge for training job usage",
                                                         "value": 0.0, "code": "L-2C5A3C8B"})  # fmt: skip
    hint = classify(built).hint
    assert "--quota-code L-2C5A3C8B" in hint and "in use by running jobs" not in hint


def test_a_distributed_jobs_script_error_on_the_first_failing_host_is_the_scripts_and_names_that_host():
    built = failed(GENERIC, [
        host(1, ["[E ProcessGroupNCCL.cpp:475] Watchdog caught collective operation timeout"], "Watchdog", 300.0),
        host(2, traceback("/opt/ml/code/train.py", 17, "ValueError: shard 7 is empty"), "ValueError: shard 7", 200.0),
    ], **TWO_HOSTS)  # fmt: skip
    diagnosis = classify(built)
    assert diagnosis.category == "job_script_error"
    assert "ValueError: shard 7 is empty (/opt/ml/code/train.py, line 17) on algo-2" in diagnosis.summary


MORE = {
    "KMS key the role may not use": (
        failed("ClientError: Data download failed:AccessDeniedException: User: arn:aws:sts::111122223333:assumed-role/"
               "SageMakerRole/SageMaker is not authorized to perform: kms:Decrypt on resource: arn:aws:kms:us-east-1:"
               "111122223333:key/1234abcd", ResourceConfig={"VolumeKmsKeyId": "arn:aws:kms:us-east-1:111122223333:key/"
                                                                            "1234abcd", "InstanceCount": 1}),
        "job_access_denied", "KMS keys set: arn:aws:kms:us-east-1:111122223333:key/1234abcd", "kms:GenerateDataKey",
    ),
    "instance type not offered in the region": (
        refused("ValidationException", "1 validation error detected: Value 'ml.p5.48xlarge' at "
                "'resourceConfig.instanceType' failed to satisfy constraint: Member must satisfy enum value set: "
                "[ml.p4d.24xlarge, ml.g5.xlarge, ml.m5.xlarge]"),
        "instance_type_not_offered", "Value 'ml.p5.48xlarge' at 'resourceConfig.instanceType'", "no quota raises it",
    ),
    "exit 137": (failed('AlgorithmError: ExecuteUserScriptError:\nExitCode 137\nErrorMessage ""', **P3),
                 "job_out_of_memory", "ExitCode 137 (instance type ml.p3.2xlarge)", "larger instance_type="),
    "InternalServerError": (failed("InternalServerError: We encountered an internal error. Please try again."),
                            "service_error", "We encountered an internal error", "AWS Support"),
    "hardware repaired, NCCL errors after": (
        failed(GENERIC, [host(1, ["NCCL WARN Net : Connection closed by remote peer"], "NCCL WARN", 10.0),
                         host(2, ["NCCL WARN Net : Connection closed by remote peer"], "NCCL WARN", 11.0)],
               SecondaryStatusTransitions=[{"Status": "Training", "StatusMessage": "Repairing training cluster due "
                                            "to hardware failure"}], **TWO_HOSTS),
        "service_error", "Repairing training cluster due to hardware failure", "run the job again",
    ),
    "max runtime, fit() returned": (
        evidence({"job": {"TrainingJobStatus": "Stopped", "SecondaryStatus": "MaxRuntimeExceeded",
                          "TrainingTimeInSeconds": 86400, "StoppingCondition": {"MaxRuntimeInSeconds": 86400}}},
                 {"type": "", "message": ""}),
        "max_runtime", "training 86400 s of MaxRuntimeInSeconds 86400", "max_run=<seconds>",
    ),
    "spot out of its max wait, with checkpoints": (
        evidence({"job": {"TrainingJobStatus": "Stopped", "SecondaryStatus": "MaxWaitTimeExceeded",
                          "EnableManagedSpotTraining": True, "TrainingTimeInSeconds": 3500,
                          "CheckpointConfig": {"S3Uri": "s3://bucket/ckpt"},
                          "StoppingCondition": {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 3600}}},
                 sdk="v3"),
        "spot_interrupted", "checkpoints in s3://bucket/ckpt (training 3500 s of MaxWaitTimeInSeconds 3600)",
        "StoppingCondition(max_wait_time_in_seconds=",
    ),
    "expired credentials while waiting, job unknown": (
        evidence({}, {"type": "ClientError", "message": "An error occurred (ExpiredTokenException) when calling the "
                      "DescribeTrainingJob operation: The security token included in the request is expired"}),
        "client_side", "may still run", f"Estimator.attach('{JOB}')",
    ),
    "throttled Describe while the job runs (v3)": (
        evidence({"job": {"TrainingJobStatus": "InProgress", "SecondaryStatus": "Training"}},
                 {"type": "ClientError", "message": "An error occurred (ThrottlingException) when calling the "
                  "DescribeTrainingJob operation (reached max retries: 4): Rate exceeded"}, sdk="v3"),
        "client_side", "still InProgress", f"TrainingJob.get('{JOB}').wait()",
    ),
    "no connection to the API": (
        evidence({"job": None}, {"type": "EndpointConnectionError", "message": 'Could not connect to the endpoint '
                                 'URL: "https://api.sagemaker.us-east-1.amazonaws.com/"'}),
        "client_side", "Could not connect to the endpoint URL", "check the network",
    ),
    "v3's wait timed out while training": (
        evidence({"job": {"TrainingJobStatus": "InProgress", "SecondaryStatus": "Training"}},
                 {"type": "TimeoutExceededError", "message": "Timeout exceeded while waiting for TrainingJob. Final "
                  "Resource State: InProgress. Increase the timeout and try again."}, sdk="v3"),
        "client_side", "Timeout exceeded while waiting for TrainingJob", "wait(timeout=",
    ),
    "expired credentials at Create": (
        refused("ExpiredTokenException", "The security token included in the request is expired"),
        "client_side", "no job exists", "no job was created",
    ),
    "completed": (evidence({"job": {"TrainingJobStatus": "Completed", "SecondaryStatus": "Completed",
                                    "TrainingTimeInSeconds": 812}}, {"type": "", "message": ""}),
                  "job_completed", "is Completed (training 812 s)", "nothing to fix"),
    "running": (evidence({"job": {"TrainingJobStatus": "InProgress", "SecondaryStatus": "Downloading"}},
                         {"type": "", "message": ""}), "job_in_progress", "is InProgress - Downloading", "wait"),
    "stopped by a user": (evidence({"job": {"TrainingJobStatus": "Stopped", "SecondaryStatus": "Stopped"}},
                                   {"type": "", "message": ""}), "job_stopped", "is Stopped", "run it again"),
    "nothing known": (
        failed("ClientError: Please ensure the model is compatible", [host(1, ["fatal: bad magic"], "fatal: bad magic",
                                                                            5.0)]),
        "remote_unknown", "FailureReason: ClientError: Please ensure the model is compatible; first error in the logs: "
        "fatal: bad magic", "FailureReason",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", MORE)
def test_the_families_without_a_case(case):
    built, category, quoted, fix = MORE[case]
    diagnosis = classify(built)
    assert (diagnosis.category, quoted in diagnosis.summary) == (category, True), diagnosis.summary
    assert fix in diagnosis.hint, diagnosis.hint


def test_a_step_403_or_an_nccl_time_out_in_a_vpc_is_no_permission_or_route_problem():
    logs = ["epoch 2 step 403 loss 0.2", "[E ProcessGroupNCCL.cpp:475] Watchdog: collective operation timed out",
            *traceback("/opt/ml/code/train.py", 5, "RuntimeError: shapes differ")]  # fmt: skip
    built = failed(GENERIC, [host(1, logs, "RuntimeError: shapes differ", 9.0)], **VPC)
    assert classify(built).category == "job_script_error"


def test_a_tuning_jobs_failure_is_its_first_failed_training_jobs():
    trial = {"TrainingJobName": "tune-001-abc", "TrainingJobStatus": "Failed",
             "FailureReason": "ClientError: Data download failed:Insufficient disk space",
             "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 5}}  # fmt: skip
    job = {"HyperParameterTuningJobStatus": "Failed", "FailedTrainingJob": trial,
           "FailureReason": "No training job succeeded after 5 attempts. Please take a look at the training job "
                            "failures to get more details."}  # fmt: skip
    diagnosis = classify(evidence({"resource": "tuning", "job": job}))
    assert diagnosis.category == "job_disk_full" and "(VolumeSizeInGB 5)" in diagnosis.summary
    completed = {"HyperParameterTuningJobStatus": "Completed", "FailedTrainingJob": trial}
    assert classify(evidence({"resource": "tuning", "job": completed}, {"type": "", "message": ""})).category == (
        "job_completed"
    )


def test_an_endpoint_out_of_memory_names_its_variants_instance_type():
    variants = {"ProductionVariants": [{"VariantName": "AllTraffic", "InstanceType": "ml.t2.medium"}]}
    logs = [host(1, ["torch.cuda.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"])]
    built = failed("The primary container for production variant AllTraffic did not pass the ping health check.",
                   logs, resource="endpoint", EndpointConfig=variants)  # fmt: skip
    diagnosis = classify(built)
    assert diagnosis.category == "job_out_of_memory" and "ml.t2.medium" in diagnosis.summary


def test_capacity_waited_for_or_a_cluster_repaired_before_a_script_error_is_the_scripts():
    """Transitions tell what happened on the way; a failed job's reason and logs tell why it failed."""
    transitions = [{"Status": "Starting", "StatusMessage": "Insufficient capacity error from EC2 while launching "
                    "instances, retrying!"}, {"Status": "Training", "StatusMessage": "Repairing training cluster due "
                    "to hardware failure"}]  # fmt: skip
    logs = [host(1, traceback("/opt/ml/code/train.py", 9, "ValueError: nan loss"), "ValueError: nan loss", 10.0)]
    built = failed(GENERIC, logs, SecondaryStatusTransitions=transitions)
    diagnosis = classify(built)
    assert diagnosis.category == "job_script_error" and "train.py, line 9" in diagnosis.summary, diagnosis


def test_a_call_that_raised_beside_an_endpoint_in_service_is_not_told_nothing_failed():
    """deploy(endpoint_name="prod") raised before its Create: the name reads an earlier endpoint, in service."""
    raised = {"type": "ValueError", "message": "instance_type must be given"}
    built = evidence({"resource": "endpoint", "name": "prod", "job": {"EndpointStatus": "InService"}}, raised)
    diagnosis = classify(built)
    assert diagnosis.category == "remote_unknown", diagnosis
    assert "InService, yet the call raised: ValueError: instance_type must be given" in diagnosis.summary


def test_the_callers_own_refusal_names_the_callers_identity_not_the_execution_role():
    """fit() uploading its source to S3 refused: no SageMaker call was made, and the role to fix is the notebook's."""
    message = "User: arn:aws:sts::111122223333:assumed-role/Notebook/alice is not authorized to perform: s3:PutObject"
    diagnosis = classify(refused("AccessDenied", message, operation="PutObject"))
    assert diagnosis.category == "job_access_denied", diagnosis
    assert diagnosis.summary.startswith("PutObject was refused (before or beside the job): AccessDenied")
    assert "your own identity" in diagnosis.hint and "give the role" not in diagnosis.hint


def test_a_client_error_while_the_job_failed_is_the_jobs_failure():
    built = failed("ClientError: Data download failed:Insufficient disk space")
    expired = "An error occurred (ExpiredToken) when calling the DescribeTrainingJob operation: expired"
    built.exception = type(built.exception)(type="ClientError", message=expired)
    assert classify(built).category == "job_disk_full"


def stopped_with_the_hook(silent_s: float) -> Evidence:
    """A job stopped at its max runtime, the smdebug hook created, training logged, then `silent_s` of silence."""
    logs = [SMDEBUG[0], "Epoch 1/10", "1875/1875 - 41s - loss: 0.2971", "Epoch 2/10"]
    job = {"TrainingJobStatus": "Stopped", "SecondaryStatus": "MaxRuntimeExceeded", "DebugHookConfig": {},
           "TrainingEndTime": 1765173600.0}  # fmt: skip
    return evidence({"job": job, "logs": [{**host(1, logs), "last_time": 1765173600.0 - silent_s}]})


def test_a_job_stopped_at_its_max_runtime_that_trained_on_after_the_debugger_hook_is_max_runtime():
    assert classify(stopped_with_the_hook(silent_s=5)).category == "max_runtime"


def test_a_job_whose_logs_went_silent_with_the_debugger_hook_on_until_its_max_runtime_stalled():
    diagnosis = classify(stopped_with_the_hook(silent_s=86000))
    assert diagnosis.category == "debugger_hook_stall", diagnosis
    assert "1433 min" in diagnosis.summary and "Epoch 2/10" in diagnosis.summary
    assert "debugger_hook_config=False" in diagnosis.hint


def test_a_spot_job_interrupted_once_that_then_failed_in_its_script_is_the_scripts():
    interrupted = [{"Status": "Interrupted", "StatusMessage": "spot reclaimed"}]
    logs = [host(1, traceback("/opt/ml/code/train.py", 9, "ValueError: nan loss"))]
    built = failed(GENERIC, logs, EnableManagedSpotTraining=True, SecondaryStatusTransitions=interrupted)
    assert classify(built).category == "job_script_error"


def test_a_completed_spot_job_that_resumed_from_its_checkpoints_is_completed():
    """As `smdiag job NAME` reads it: no exception, the job alone."""
    built, *_ = CASES["T54"]
    built.remote.job["CheckpointConfig"] = {"S3Uri": "s3://bucket/ckpt"}
    built.exception = type(built.exception)(type="", message="")
    assert classify(built).category == "job_completed"


def test_without_a_describe_the_reason_the_sdks_exception_repeats_is_read():
    message = V2_FAILED.format(name=JOB, reason="ClientError: Data download failed:Insufficient disk space") + "url"
    built = evidence({"job": None}, {"type": "UnexpectedStatusException", "message": message})
    built.evidence_errors["describe"] = "AccessDeniedException: ... (needs sagemaker:DescribeTrainingJob)"
    diagnosis = classify(built)
    assert diagnosis.category == "job_disk_full" and "Data download failed:Insufficient disk space" in diagnosis.summary


def test_a_create_refused_once_retries_ran_out_reads_the_same_from_the_recorder_and_from_the_exception():
    """botocore adds "(reached max retries: 4)" once its retries ran out; the refusal the recorder stored and the
    rules' own reading of the exception (a report without one) are one parse, and name the same cause."""
    said = ("An error occurred (ThrottlingException) when calling the CreateTrainingJob operation (reached max "
            "retries: 4): Rate exceeded")  # fmt: skip
    refusal = parse_refusal(said)
    assert refusal == {"code": "ThrottlingException", "operation": "CreateTrainingJob", "message": "Rate exceeded"}
    recorded = classify(evidence({"refusal": refusal}, {"type": "ClientError", "message": said}))
    unparsed = classify(evidence({}, {"type": "ClientError", "message": said}))
    assert recorded == unparsed and unparsed.category == "throttled" and "no job exists" in unparsed.summary


def test_an_empty_reason_with_logs_unread_says_why_they_are_missing():
    built = failed(GENERIC)
    built.evidence_errors["logs"] = "AccessDeniedException: ... (needs logs:GetLogEvents)"
    diagnosis = classify(built)
    assert diagnosis.category == "job_script_error" and "needs logs:GetLogEvents" in diagnosis.summary


def test_the_hint_speaks_the_callers_sdk_and_both_when_none_called():
    reason = "ClientError: Artifact upload failed:Insufficient disk space"
    hints = {sdk: classify(failed(reason, sdk=sdk)).hint for sdk in ("v2", "v3")}
    assert "volume_size=<GB>" in hints["v2"] and "volume_size_in_gb" not in hints["v2"]
    assert "Compute(volume_size_in_gb=<GB>)" in hints["v3"] and "volume_size=<GB>" not in hints["v3"]
    job = {"TrainingJobStatus": "Failed", "FailureReason": reason}
    after_the_fact = classify(evidence({"job": job}, {"type": "", "message": ""}, sdk=None)).hint  # smdiag job NAME
    assert "volume_size=<GB>" in after_the_fact and "Compute(volume_size_in_gb=<GB>)" in after_the_fact


def test_every_remote_category_has_a_case_here_and_a_hint():
    named = {category for built, category, *_ in [*CASES.values(), *MORE.values()]}
    assert named == set(catalog.REMOTE)
    none = Evidence.from_dict({})
    assert all(category.hint and category.remedy(none) is None for category in catalog.REMOTE.values())


def test_a_local_call_is_still_classified_by_the_local_rules():
    local = Evidence.from_dict({"call": {"kind": "fit"}, "exception": {"type": "RuntimeError", "message": "x"},
                                "containers": [{"name": "a", "exit_code": 1, "logs": ["ValueError: x"]}]})  # fmt: skip
    assert classify(local).category == "script_error"
