"""The second half of the managed-job cases (testbed/remote_cases.py has the first, and the table's header):
disk, memory, runtime, spot, distributed, service, opaque script errors, the client; then processing,
transform and endpoints (SDK v2's calls only)."""

from __future__ import annotations

from testbed.remote_aws import BUCKET, Refusal
from testbed.remote_case import (
    EMPTY_SCRIPT_ERROR,
    FAILED,
    PING_FAILED,
    SCRIPT_COMMAND,
    SPOT,
    RemoteCase,
    toolkit_log,
    toolkit_reason,
)

MODEL_DATA = f"s3://{BUCKET}/models/model.tar.gz"

MORE: list[RemoteCase] = [
    # F9: disk
    RemoteCase(
        "T38",
        "sagemaker-python-sdk#128",
        "the data is larger than the volume",
        "job_disk_full",
        evidence=("Data download failed:Insufficient disk space",),
        fix=("volume_size",),
        failure_reason="ClientError: Data download failed:Insufficient disk space",
        transitions=(
            ("Starting", "Launching requested ML instances"),
            ("Downloading", "Downloading input data"),
            ("Failed", "Training job failed"),
        ),
        call={"volume_size": 30},
    ),
    RemoteCase(
        "T39",
        "huggingface/blog#114",
        "the disk fills when the model is saved",
        "job_disk_full",
        evidence=("Artifact upload failed:Insufficient disk space",),
        fix=("volume_size",),
        failure_reason="ClientError: Artifact upload failed:Insufficient disk space",
        transitions=FAILED,
        call={"volume_size": 30},
    ),
    RemoteCase(
        "T42",
        "awslabs/graphstorm#354",
        "large files written under `/`, not where the volume is mounted",
        "job_disk_full",
        evidence=("root folder '/'|No space left on device",),
        fix=("mount",),
        where="L",
        failure_reason=EMPTY_SCRIPT_ERROR,
        transitions=FAILED,
        logs={
            "algo-1": toolkit_log(
                "WARNING: root folder '/' has only 96GB, while the additional volume is mounted to '/tmp'",
                "Traceback (most recent call last):",
                '  File "/opt/ml/code/partition.py", line 212, in <module>',
                "    np.save(os.path.join('/workspace/parts', name), part)",
                "OSError: [Errno 28] No space left on device",
            )
        },
        call={"volume_size": 500, "instance_type": "ml.r5.24xlarge"},
    ),
    # F10: memory, crashes
    RemoteCase(
        "T45",
        "amazon-sagemaker-examples#3046",
        "the batch does not fit the GPU's memory",
        "job_out_of_memory",
        evidence=("CUDA out of memory",),
        fix=("batch",),
        where="L",
        failure_reason=EMPTY_SCRIPT_ERROR,
        transitions=FAILED,
        logs={
            "algo-1": toolkit_log(
                "Traceback (most recent call last):",
                '  File "/opt/ml/code/train.py", line 96, in <module>',
                "    outputs = model(**batch)",
                "RuntimeError: CUDA out of memory. Tried to allocate 288.00 MiB (GPU 0; 15.78 GiB total capacity; "
                "14.21 GiB already allocated; 110.75 MiB free; 14.46 GiB reserved in total by PyTorch)",
            )
        },
        call={"instance_type": "ml.p3.2xlarge"},
    ),
    RemoteCase(
        "F10-137",
        "REMOTE_FAILURES.md F10",
        "the kernel's OOM killer ended the script (SIGKILL)",
        "job_out_of_memory",
        evidence=("137", "memory|OOM"),
        fix=("instance",),
        failure_reason=toolkit_reason("ExecuteUserScriptError", 137, command=SCRIPT_COMMAND),
        transitions=FAILED,
        logs={"algo-1": toolkit_log("epoch 1 step 200 loss 0.61")},
    ),
    RemoteCase(
        "T48",
        "sagemaker-python-sdk#134",
        "a segfault in native code after ~18 h",
        "job_crashed",
        evidence=("139",),
        fix=("segmentation|segfault|SIGSEGV", "native|library"),
        failure_reason="AlgorithmError: Exit Code: 139",
        transitions=FAILED,
        training_seconds=64800,
        logs={"algo-1": ["[2018-01-14 02:11:07] epoch 311 train loss 0.0832"]},
    ),
    # F11: max runtime (the call returns)
    RemoteCase(
        "F11",
        "REMOTE_FAILURES.md F11",
        "the job ran into its max runtime",
        "max_runtime",
        evidence=("MaxRuntimeExceeded",),
        fix=("max_run",),
        status="Stopped",
        secondary_status="MaxRuntimeExceeded",
        transitions=(
            ("Starting", "Launching requested ML instances"),
            ("Training", "Training in progress."),
            ("MaxRuntimeExceeded", "Job stopped because max runtime was exceeded"),
        ),
        training_seconds=3600,
        call={"max_run": 3600},
        returns=True,
    ),
    # F12: spot
    RemoteCase(
        "T52",
        "sagemaker-python-sdk#1011",
        "max_wait given but the spot flag dropped",
        "spot_config",
        evidence=("MaxWaitTimeInSeconds",),
        fix=("spot", "max_wait"),
        where="C",
        refusal=Refusal(
            "ValidationException",
            "Invalid MaxWaitTimeInSeconds. It is only supported when EnableManagedSpotTraining is set to true",
        ),
        call={"max_run": 3600, "max_wait": 7200},
    ),
    RemoteCase(
        "T54",
        "sagemaker-python-sdk#1040",
        "spot interruptions restart the training from scratch: no checkpoints",
        "spot_interrupted",
        evidence=("MaxWaitTimeExceeded|Interrupted",),
        fix=("checkpoint_s3_uri",),
        status="Stopped",
        secondary_status="MaxWaitTimeExceeded",
        training_seconds=3100,
        transitions=(
            ("Starting", "Launching requested ML instances"),
            ("Training", "Training in progress."),
            ("Interrupted", "Training job interrupted due to spot capacity"),
            ("Restarting", "Restarting the training job"),
            ("Training", "Training in progress."),
            ("MaxWaitTimeExceeded", "Job stopped because max wait time was exceeded"),
        ),
        logs={"algo-1": ["epoch 1/20 loss 0.92", "epoch 2/20 loss 0.71", "epoch 1/20 loss 0.93"]},
        call=SPOT,
        returns=True,
    ),
    # F13: distributed
    RemoteCase(
        "T56",
        "Lightning-AI/litData#340",
        "algo-2 aborted after an NCCL timeout; algo-1 only saw its peer go",
        "distributed_host_failed",
        evidence=("algo-2", "SIGABRT|Signal 6|exitcode : -6"),
        fix=("stream",),
        where="L",
        failure_reason=EMPTY_SCRIPT_ERROR,
        transitions=FAILED,
        logs={
            "algo-1": [
                (5.0, "epoch 0:  41%|####      | 812/1980"),
                (1805.0, "torch.distributed.DistBackendError: NCCL communicator was aborted on rank 0."),
                (1806.0, "ERROR:root:Worker process exited: exitcode 1"),
            ],
            "algo-2": [
                (5.0, "epoch 0:  40%|####      | 801/1980"),
                (
                    1800.0,
                    "[rank1]:[E ProcessGroupNCCL.cpp:1182] Watchdog caught collective operation timeout: "
                    "WorkNCCL(SeqNum=5120, OpType=ALLREDUCE) ran for 1800000 milliseconds before timing out.",
                ),
                (1801.0, "exitcode : -6 (pid: 311)"),
                (1801.0, "error_file: <N/A>"),
                (1801.0, "traceback : Signal 6 (SIGABRT) received by PID 311"),
            ],
        },
        call={"instance_count": 2, "instance_type": "ml.g5.12xlarge"},
    ),
    RemoteCase(
        "T59",
        "amazon-sagemaker-examples#3827",
        "rank 2 (on algo-2) died; MPI aborted every rank",
        "distributed_host_failed",
        evidence=("algo-2", "rank 2"),
        fix=("stream",),
        where="L",
        failure_reason=toolkit_reason(
            "ExecuteUserScriptError",
            1,
            command="mpirun --host algo-1:2,algo-2:2 -np 4 smddprun /opt/conda/bin/python3.10 -m mpi4py train.py",
        ),
        transitions=FAILED,
        logs={
            "algo-1": [
                (1.0, "[1,0]<stdout>:step 100 loss 2.31"),
                (62.0, "MPI_ABORT was invoked on rank 2 in communicator MPI COMMUNICATOR 5 DUP FROM 0"),
                (62.0, "with errorcode 1."),
            ],
            "algo-2": [
                (1.0, "[1,2]<stdout>:step 100 loss 2.29"),
                (60.0, "[1,2]<stderr>:Traceback (most recent call last):"),
                (60.0, '[1,2]<stderr>:  File "/opt/ml/code/train.py", line 143, in <module>'),
                (60.0, "[1,2]<stderr>:ValueError: Expected input batch_size (32) to match target batch_size (31)."),
            ],
        },
        call={"instance_count": 2, "instance_type": "ml.p4d.24xlarge"},
    ),
    RemoteCase(
        "T62",
        "sagemaker-python-sdk#1353",
        "the Debugger hook stalls training after the first epoch",
        "debugger_hook_stall",
        evidence=("hook",),
        fix=("debugger_hook_config",),
        where="L",
        status="Stopped",
        secondary_status="MaxRuntimeExceeded",
        training_seconds=86400,
        transitions=(
            ("Training", "Training in progress."),
            ("MaxRuntimeExceeded", "Job stopped because max runtime was exceeded"),
        ),
        logs={
            "algo-1": [
                "[2020-03-02 15:02:41.334 ip-10-2-83-197.ec2.internal:1 INFO json_config.py:90] Creating hook from "
                "json_config at /opt/ml/input/config/debughookconfig.json.",
                "[2020-03-02 15:02:41.335 ip-10-2-83-197.ec2.internal:1 INFO hook.py:151] tensorboard_dir has not been "
                "set for the hook. SMDebug will not be exporting tensorboard summaries.",
                "Epoch 1/10",
                "1875/1875 - 41s - loss: 0.2971 - accuracy: 0.9139",
                "Epoch 2/10",
            ]
        },
        call={"max_run": 86400},
        returns=True,
    ),
    # F14: the service's side
    RemoteCase(
        "F14",
        "REMOTE_FAILURES.md F14",
        "a hardware failure on AWS's side",
        "service_error",
        evidence=("InternalServerError",),
        fix=("retr|again", "support"),
        failure_reason="InternalServerError: We encountered an internal error. Please try again.",
        transitions=(
            ("Training", "Training in progress."),
            ("Training", "Repairing training cluster due to hardware failure"),
            ("Failed", "Training job failed"),
        ),
    ),
    # F15: the script's error, not in the FailureReason
    RemoteCase(
        "T65",
        "huggingface/notebooks#136",
        "the FailureReason is cut: the traceback is in the log",
        "job_script_error",
        evidence=("train.py", "41", "OSError"),
        fix=("log",),
        failure_reason='AlgorithmError: ExecuteUserScriptError:\nExitCode 1\nErrorMessage "raise EnvironmentError(msg)',
        transitions=FAILED,
        logs={
            "algo-1": toolkit_log(
                "Traceback (most recent call last):",
                '  File "train.py", line 41, in <module>',
                "    trainer.push_to_hub(commit_message='End of training')",
                '  File "/opt/conda/lib/python3.8/site-packages/huggingface_hub/repository.py", line 486, in __init__',
                "    raise EnvironmentError(msg)",
                "OSError: Tried to clone a repository in a non-empty folder that isn't a git repository.",
            )
        },
    ),
    RemoteCase(
        "T66",
        "sagemaker-python-sdk#658",
        "the FailureReason has no message: the traceback is in the log",
        "job_script_error",
        evidence=("rnn.py", "112", "ValueError"),
        fix=("log",),
        failure_reason='AlgorithmError: ExecuteUserScriptError:\nCommand "/usr/bin/python -m rnn --batch-size 256"',
        transitions=FAILED,
        logs={
            "algo-1": [
                "Traceback (most recent call last):",
                '  File "/opt/ml/code/rnn.py", line 112, in <module>',
                "    loss = criterion(output, target)",
                "ValueError: Expected input batch_size (256) to match target batch_size (128).",
                "2019-02-25 14:11:16,201 sagemaker-containers ERROR    ExecuteUserScriptError:",
                'Command "/usr/bin/python -m rnn --batch-size 256"',
            ]
        },
    ),
    # F16: the client, not the job
    RemoteCase(
        "T67",
        "sagemaker-python-sdk#645",
        "too many Create calls in a short time",
        "throttled",
        evidence=("Rate exceeded",),
        fix=("back off|backoff|retr",),
        where="C",
        refusal=Refusal("ThrottlingException", "Rate exceeded"),
    ),
    RemoteCase(
        "F16",
        "REMOTE_FAILURES.md F16",
        "the client's credentials expired while the job runs",
        "client_side",
        evidence=("expired|ExpiredToken",),
        fix=("attach",),
        job_category="job_in_progress",
        status="InProgress",
        secondary_status="Training",
        transitions=(("Training", "Training in progress."),),
        describe_refusal=Refusal("ExpiredTokenException", "The security token included in the request is expired"),
    ),
    # processing, transform, endpoints (SDK v2)
    RemoteCase(
        "O02",
        "aws-samples/sagemaker-run-notebook#32",
        "the VPC's subnets have no route to S3",
        "job_network",
        evidence=("Unable to execute request to S3",),
        fix=("endpoint|NAT",),
        resource="processing",
        failure_reason=f"ClientError: Failed to download data. ListObjectsV2 failed for s3://{BUCKET}/notebooks/"
        "input/, nextToken:[null]: Unable to execute request to S3",
        call={"subnets": ["subnet-0a1b2c3d"], "security_group_ids": ["sg-0a1b2c3d"]},
        sdks=("v2",),
    ),
    RemoteCase(
        "O06",
        "amazon-sagemaker-examples#1903",
        "a TensorFlow 1 model in a TensorFlow 2 server",
        "model_framework_mismatch",
        evidence=("has no attribute 'train'",),
        fix=("version",),
        where="L",
        resource="transform",
        failure_reason="ClientError: See job logs for more information",
        logs={
            "i-0c1d2e3f4a5b6c7d8": [
                "2021-02-03T10:21:07.118:[sagemaker logs]: MaxConcurrentTransforms=1, MaxPayloadInMB=6, "
                "BatchStrategy=MULTI_RECORD",
                "2021-02-03T10:21:09.544:[sagemaker logs]: s3://smdiag-bed-bucket/batch/in/data.csv: ClientError: 400",
                "2021-02-03T10:21:09.544:[sagemaker logs]: s3://smdiag-bed-bucket/batch/in/data.csv: Message:",
                '2021-02-03T10:21:09.544:[sagemaker logs]: s3://smdiag-bed-bucket/batch/in/data.csv: { "error": '
                "\"module 'tensorflow' has no attribute 'train'\" }",
            ]
        },
        call={"model_data": MODEL_DATA},
        sdks=("v2",),
    ),
    RemoteCase(
        "O11",
        "deep-learning-containers PR#569",
        "the model data is not a tar.gz",
        "model_data",
        evidence=("valid tar.gz",),
        fix=("tar",),
        resource="endpoint",
        failure_reason=f'Failed to extract model data archive for container "container_1" from URL "{MODEL_DATA}". '
        "Please ensure that the object located at the URL is a valid tar.gz archive.",
        call={"model_data": MODEL_DATA},
        sdks=("v2",),
    ),
    RemoteCase(
        "O12",
        "fraud-detection-using-machine-learning#9",
        "no object at the model data's URL",
        "model_data",
        evidence=("Failed to download model data",),
        fix=("model_data",),
        resource="endpoint",
        failure_reason=f'Failed to download model data for container "container_1" from URL: "{MODEL_DATA}". '
        "Please ensure that there is an object located at the URL and that the role passed to "
        "CreateModel has permissions to download the object.",
        call={"model_data": MODEL_DATA},
        sdks=("v2",),
    ),
    RemoteCase(
        "O16",
        "amazon-sagemaker-examples#628",
        "the bring-your-own image has no executable `serve`",
        "entry_point",
        evidence=('exec: "serve": executable file not found in $PATH',),
        fix=("chmod|executable",),
        where="L",
        resource="endpoint",
        failure_reason=PING_FAILED,
        logs={"i-0a1b2c3d4e5f60718": ['exec: "serve": executable file not found in $PATH']},
        call={"model_data": MODEL_DATA},
        sdks=("v2",),
    ),
    RemoteCase(
        "O20",
        "sagemaker-python-sdk#2284",
        "model_fn raises: the worker dies while loading",
        "model_load_failed",
        evidence=("Worker died|worker process died",),
        fix=("model_fn",),
        where="L",
        resource="endpoint",
        failure_reason=PING_FAILED,
        logs={
            "i-0a1b2c3d4e5f60718": [
                "2021-03-29 08:14:22,406 [INFO ] W-9000-model_1-stdout MODEL_LOG - Traceback (most recent call last):",
                '2021-03-29 08:14:22,407 [INFO ] W-9000-model_1-stdout MODEL_LOG -   File "/opt/ml/model/code/'
                'inference.py", line 14, in model_fn',
                "2021-03-29 08:14:22,407 [INFO ] W-9000-model_1-stdout MODEL_LOG - ModuleNotFoundError: No module "
                "named 'transformers'",
                "2021-03-29 08:14:22,512 [INFO ] W-9000-model_1 com.amazonaws.ml.mms.wlm.WorkerThread - Backend worker "
                "process died.",
                "2021-03-29 08:14:22,618 [WARN ] W-9000-model_1 com.amazonaws.ml.mms.wlm.WorkerLifeCycle - Load model "
                "failed: model, error: Worker died.",
            ]
        },
        call={"model_data": MODEL_DATA},
        sdks=("v2",),
    ),
]
