"""Managed jobs' categories (agent.failures.classify_remote names them): the hint of each, in the words of the
caller's SDK major. Data only: agent.failures.catalog makes them categories of its one table, CATALOG. None has
a remedy: the fix is in the user's code or the job's configuration, not on this host.
"""

from __future__ import annotations

SDK_SPELLING = {
    "v2": {
        "volume": "volume_size=<GB>", "max_run": "max_run=<seconds>", "max_wait": "max_wait=<seconds>",
        "spot": "use_spot_instances=True", "checkpoint": "checkpoint_s3_uri='s3://<bucket>/<prefix>'",
        "entry": "source_dir='src', entry_point='train.py'", "instance": "instance_type=",
        "inputs": "fit(inputs={'train': 's3://...'})", "requirements": "source_dir's requirements.txt",
        "vpc": "subnets=, security_group_ids=", "kms": "volume_kms_key=, output_kms_key=",
        "image": "image_uri=", "image_config": "training_repository_access_mode='Vpc'", "environment": "environment=",
        "debugger": "debugger_hook_config=False", "framework": "framework_version=", "model": "Model(model_data=)",
        "reattach": "sagemaker.estimator.Estimator.attach('<name>') (a processing job: "
        "sagemaker.processing.ProcessingJob.from_processing_name(sagemaker_session, '<name>'))",
    },
    "v3": {
        "volume": "Compute(volume_size_in_gb=<GB>)", "max_run": "StoppingCondition(max_runtime_in_seconds=<seconds>)",
        "max_wait": "StoppingCondition(max_wait_time_in_seconds=<seconds>)",
        "spot": "Compute(enable_managed_spot_training=True)",
        "checkpoint": "checkpoint_config=CheckpointConfig(s3_uri='s3://<bucket>/<prefix>')",
        "entry": "SourceCode(source_dir='src', entry_script='train.py')", "instance": "Compute(instance_type=)",
        "inputs": "input_data_config=[InputData(channel_name='train', data_source='s3://...')]",
        "requirements": "SourceCode(requirements='requirements.txt')",
        "vpc": "networking=Networking(subnets=, security_group_ids=)", "kms": "Compute(volume_kms_key_id=)",
        "image": "training_image=", "image_config": "training_image_config=TrainingImageConfig("
        "training_repository_access_mode='Vpc')", "environment": "environment={...}",
        "debugger": "no DebugHookConfig in the job's request", "framework": "the image_uri's framework version",
        "model": "ModelBuilder(model_path='s3://.../model.tar.gz')",
        "reattach": "sagemaker.core.resources.TrainingJob.get('<name>').wait() (ProcessingJob.get, "
        "TransformJob.get likewise)",
    },
}  # fmt: skip
"""How each SDK major spells the parameter a hint names (v3: ModelTrainer's and sagemaker.core.training.configs')."""
BOTH = {key: f"{v2} (SDK v3: {SDK_SPELLING['v3'][key]})" for key, v2 in SDK_SPELLING["v2"].items()}

HINTS = {
    "quota_exceeded": (
        "request a higher value of the quota named in Service Quotas (console: Amazon SageMaker; or `aws "
        "service-quotas request-service-quota-increase --service-code sagemaker --quota-code <code> --desired-value "
        "<n>`); meanwhile another {instance} or fewer instances; parallel jobs count too (a tuner's "
        "max_parallel_jobs, Debugger/profiler rules' processing jobs)"
    ),
    "instance_type_not_offered": (
        "this instance type is not offered for this kind of job in this region, and no quota raises it: choose "
        "another {instance} (`smdiag doctor --remote --instance-type T` checks one) or another region"
    ),
    "insufficient_capacity": (
        "SageMaker had no free capacity of this instance type in the region: retry later, or choose another "
        "{instance} (another size or family), or another region"
    ),
    "job_image": (
        "the job's image could not be pulled: check {image} (account, region, repository and tag; push the image "
        "if it never was), that the execution role may ecr:BatchGetImage on it, and for a registry outside ECR set "
        "{image_config}"
    ),
    "input_data": (
        "a channel's input was not found: check each channel's S3 URI ({inputs}): objects under that prefix, the "
        "bucket in the job's region, the channel name the script reads (/opt/ml/input/data/<channel>), and "
        "s3:ListBucket/s3:GetObject for the execution role"
    ),
    "entry_point": (
        "the container could not start the program: give the script relative to the source directory ({entry}), "
        "not a path inside it; with your own image the `train` (hosting: `serve`) program must be on the image's "
        "PATH and executable (`chmod +x`)"
    ),
    "job_access_denied": (
        "the execution role, a KMS key policy or the account's SCP refused the action quoted: give the role "
        "s3:GetObject/PutObject/ListBucket on the job's buckets and kms:Decrypt, kms:GenerateDataKey on the keys "
        "set ({kms}; in the key policy too); an explicit deny is an SCP's or a permissions boundary's: ask the "
        "account's administrator"
    ),
    "job_network": (
        "the job runs in your VPC ({vpc}) and its subnets have no route out: add an S3 gateway VPC endpoint "
        "(com.amazonaws.<region>.s3) to their route table, a NAT gateway for PyPI (or bake the packages into the "
        "image), interface endpoints for logs, sts and ecr; security groups must allow outbound HTTPS"
    ),
    "job_dependencies": (
        "installing the script's dependencies failed in the job ({requirements}): pin versions that exist for "
        "the container's Python, remove an empty setup.py from the source directory, or bake them into the image"
    ),
    "job_disk_full": (
        "the job's storage volume is full: raise {volume} (default 30 GB); keep checkpoints out of /opt/ml/model "
        "and write large files on the volume (/opt/ml, or the mount the log names), not elsewhere under /"
    ),
    "job_out_of_memory": (
        "the job ran out of memory (exit 137 is the kernel's OOM killer; CUDA out of memory is the GPU's): a "
        "larger {instance}, a smaller batch size, or fewer data-loader workers"
    ),
    "job_crashed": (
        "a process crashed (exit 139: segmentation fault), usually in a native library: match the framework and "
        "CUDA versions to the image, update the library the log names, or try another {instance}"
    ),
    "max_runtime": (
        "SageMaker stopped the job at its maximum runtime: raise {max_run} (at most 28 days), and checkpoint "
        "({checkpoint}) so that a stopped job resumes"
    ),
    "spot_config": (
        "a maximum wait ({max_wait}) needs managed spot ({spot}) and must be >= the maximum runtime: turn spot on, "
        "or drop the maximum wait"
    ),
    "spot_interrupted": (
        "a spot job restarts after an interruption and starts from scratch without checkpoints: set {checkpoint}, "
        "make the script save to and resume from /opt/ml/checkpoints, and raise {max_wait} above the runtime"
    ),
    "distributed_host_failed": (
        "one host failed first and the others failed waiting for it (NCCL/MPI timeouts, SIGABRT): the cause is the "
        "first error in that host's stream, named in the summary; for NCCL errors set NCCL_DEBUG=INFO "
        "({environment}) and let the security group allow all traffic to itself"
    ),
    "debugger_hook_stall": (
        "training stalled with SageMaker Debugger's hook (smdebug) on: turn it off ({debugger}; SDK v2's "
        "framework estimators add it by default) or use a newer framework image"
    ),
    "service_error": (
        "SageMaker failed on its side (internal error or hardware), not your code: run the job again; if it "
        "repeats, open an AWS Support case with the job's ARN"
    ),
    "job_script_error": (
        "the script failed: fix it at the file and line quoted, from the job's log (the FailureReason holds at most "
        "1,024 characters); every host's log is in CloudWatch, in the job's log group (/aws/sagemaker/TrainingJobs, "
        "ProcessingJobs or TransformJobs), one stream per host named after the job"
    ),
    "client_side": (
        "the error was the client's while the SDK waited, not the job's: it may still be running. Renew what "
        "failed (credentials: `aws sso login`, a new session token or the notebook's role; throttling: wait), then "
        "re-attach: {reattach}; `smdiag job <name>` shows its state"
    ),
    "throttled": (
        "SageMaker throttled the Create call (rate exceeded) and no job was created: back off and retry, space out "
        "job launches (a tuner's max_parallel_jobs), or let boto3 retry (retries mode 'adaptive')"
    ),
    "model_data": (
        "the model's artifact could not be fetched or unpacked: point {model} at an existing gzipped tar (files at "
        "its root) that the model's role may read (s3:GetObject, kms:Decrypt); repackage it or fix the URI"
    ),
    "model_framework_mismatch": (
        "the model was saved by another framework version than the serving container's (a TF 1 model in a TF 2 "
        "server): deploy with the version the model was trained with ({framework}), or re-export the model"
    ),
    "model_load_failed": (
        "the model server could not load the model (its worker died): fix model_fn / the inference script at "
        "the error in the endpoint's log (/aws/sagemaker/Endpoints/<name>), and what the model archive holds"
    ),
    "job_completed": "nothing to fix: it completed",
    "job_in_progress": "it is still running: wait for it ({reattach}), or look again with `smdiag job`",
    "job_stopped": "nothing failed: a Stop call (a user, a pipeline, a rule) stopped it; run it again",
    "remote_unknown": (
        "no known cause matched: read the FailureReason and each host's log in the report (CloudWatch "
        "/aws/sagemaker/<kind>/<name>), and `smdiag job <name>` for its state"
    ),
}
"""Each category's hint, `{instance}` and the like being the parameter as SDK_SPELLING spells it."""
