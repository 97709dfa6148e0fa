"""The managed-job failures users hit (../shared/REMOTE_FAILURES.md's cases, T01...O20, and the families the
table has no case for), each as data: where its text reaches the user, the call that meets it, and what a
right diagnosis says. Shared by tests/bed/test_remote_cases.py and bench/diagnosis.py.

Where the text goes (`where`):
- "C": the Create call is refused with the service's error code and message (no job exists);
- "J": the job's status, secondary status, transitions and FailureReason carry it;
- "L": only the hosts' CloudWatch streams carry it; the FailureReason is what the toolkit writes beside it
  (`AlgorithmError: ExecuteUserScriptError:\\nExitCode 1\\nErrorMessage ""`, or a generic line).

The expected words are written from each case's cause and fix (the thread's), not from smdiag's rules: the
summary must quote every `evidence` entry and the hint must name every `fix` entry; an entry "a|b" is met
by either word (case-insensitive).
"""

from __future__ import annotations

from testbed.remote_aws import BUCKET, Refusal
from testbed.remote_case import FAILED, RemoteCase, toolkit_log, toolkit_reason
from testbed.remote_cases_more import MORE

FIRST: list[RemoteCase] = [
    # F1: quota, or a type not offered at all
    RemoteCase(
        "T01",
        "gabehollombe-aws/jupyter-notebooks#1",
        "the account's quota for the type is 0",
        "quota_exceeded",
        evidence=("ml.p3.2xlarge for training job usage", "0 Instances"),
        fix=("ml.p3.2xlarge for training job usage", "service quotas|service-quotas"),
        where="C",
        refusal=Refusal(
            "ResourceLimitExceeded",
            "The account-level service limit 'ml.p3.2xlarge for training job usage' is 0 Instances, with current "
            "utilization of 0 Instances and a request delta of 1 Instances. Please contact AWS support to request "
            "an increase for this limit.",
        ),
        call={"instance_type": "ml.p3.2xlarge"},
    ),
    RemoteCase(
        "T03",
        "amazon-sagemaker-examples#1543",
        "parallel (tuning) jobs already use the quota",
        "quota_exceeded",
        evidence=("ml.p3.8xlarge for training job usage", "utilization of 3 Instances"),
        fix=("ml.p3.8xlarge for training job usage", "parallel"),
        where="C",
        refusal=Refusal(
            "ResourceLimitExceeded",
            "The account-level service limit 'ml.p3.8xlarge for training job usage' is 2 Instances, with current "
            "utilization of 3 Instances and a request delta of 1 Instances. Please contact AWS support to request "
            "an increase for this limit.",
        ),
        call={"instance_type": "ml.p3.8xlarge"},
    ),
    RemoteCase(
        "F1-offered",
        "REMOTE_FAILURES.md F1",
        "the instance type is not offered in the region",
        "instance_type_not_offered",
        evidence=("ml.g6e.xlarge",),
        fix=("region", "instance type|instance_type"),
        where="C",
        refusal=Refusal(
            "ValidationException",
            "1 validation error detected: Value 'ml.g6e.xlarge' at 'resourceConfig.instanceType' failed to satisfy "
            "constraint: Member must satisfy enum value set: [ml.p4d.24xlarge, ml.m5.large, ml.m5.xlarge, "
            "ml.c5.xlarge, ml.g5.xlarge, ml.p3.2xlarge]",
        ),
        call={"instance_type": "ml.g6e.xlarge"},
    ),
    # F2: capacity
    RemoteCase(
        "T07",
        "DIAGNijmegen/rse-grand-challenge#2631",
        "no capacity for the type right now",
        "insufficient_capacity",
        evidence=("Unable to provision requested ML compute capacity",),
        fix=("instance type|instance_type", "retry"),
        failure_reason="CapacityError: Unable to provision requested ML compute capacity. Please retry using a "
        "different ML instance type.",
        transitions=(
            ("Starting", "Insufficient capacity error from EC2 while launching instances, retrying!"),
            ("Failed", "Training job failed"),
        ),
        call={"instance_type": "ml.p3.2xlarge"},
    ),
    RemoteCase(
        "T10",
        "deep-learning-containers PR#6299",
        "the type is scarce in the region: the job waits for capacity",
        "insufficient_capacity",
        evidence=("waiting for capacity",),
        fix=("instance type|instance_type",),
        status="InProgress",
        secondary_status="Pending",
        transitions=(("Pending", "Training job waiting for capacity"),),
        # v2's fit() waits without a timeout (its user interrupts the kernel): `smdiag job` covers v2's job
        call={"instance_type": "ml.g5.12xlarge"},
        wait_timeout=True,
        sdks=("v3",),
    ),
    # F3: image
    RemoteCase(
        "T13",
        "amazon-sagemaker-examples#1476",
        "the image was never pushed",
        "job_image",
        evidence=("Cannot find the requested image",),
        fix=("image_uri|training_image",),  # v2's Estimator(image_uri=), v3's ModelTrainer(training_image=)
        where="C",
        refusal=Refusal(
            "ValidationException",
            "Cannot find the requested image: 123456789012.dkr.ecr.us-east-1.amazonaws.com/my-byo-train:latest",
        ),
        call={"image_uri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/my-byo-train:latest"},
    ),
    RemoteCase(
        "T14",
        "aws/aws-sdk#117",
        "the image is in a private registry that is not ECR",
        "job_image",
        evidence=("TrainingImageConfig",),
        fix=("TrainingImageConfig|training_image_config|ecr",),
        where="C",
        refusal=Refusal(
            "ValidationException",
            "TrainingImageConfig with TrainingRepositoryAccessMode set to VPC must be provided when using a "
            "training image from a private Docker registry.",
        ),
        call={"image_uri": "registry.example.com:5000/team/train:1.4"},
    ),
    # F4: input data
    RemoteCase(
        "T15",
        "amazon-sagemaker-examples#2489",
        "the upstream step wrote nothing under the S3 prefix",
        "input_data",
        evidence=("No S3 objects found under S3 URL", f"s3://{BUCKET}/prepared/train"),
        fix=("s3",),
        where="C",
        refusal=Refusal(
            "ValidationException",
            f'No S3 objects found under S3 URL "s3://{BUCKET}/prepared/train" given in input data source. Please '
            "ensure that the bucket exists in the selected region (us-east-1), that objects exist under that S3 "
            'prefix, and that the role arn:aws:iam::123456789012:role/SageMakerRole has "s3:ListBucket" '
            f'permissions on bucket "{BUCKET}".',
        ),
        call={"inputs": {"train": f"s3://{BUCKET}/prepared/train"}},
    ),
    RemoteCase(
        "T17",
        "boto/boto3#1397",
        "the channel is named 'training', the algorithm reads 'train'",
        "input_data",
        evidence=("no file found in path /opt/ml/input/data/train",),
        fix=("channel",),
        failure_reason="ClientError: no file found in path /opt/ml/input/data/train",
        transitions=FAILED,
        call={"inputs": {"training": f"s3://{BUCKET}/data/train.csv"}},
    ),
    # F5: entry point / the container's contract
    RemoteCase(
        "T19",
        "sagemaker-python-sdk#966",
        "entry_point is a path inside a subfolder of source_dir",
        "entry_point",
        evidence=("src/train",),
        fix=("source_dir", "entry_point|entry_script"),  # v3: SourceCode(source_dir=, entry_script=)
        failure_reason=toolkit_reason(
            "ExecuteUserScriptError", 1, "/usr/bin/python: No module named src/train", "/usr/bin/python -m src/train"
        ),
        transitions=FAILED,
        logs={
            "algo-1": toolkit_log(
                "/usr/bin/python -m src/train",
                "/usr/bin/python: No module named src/train",
                "2024-05-02 10:14:04,020 sagemaker-training-toolkit ERROR    ExecuteUserScriptError:",
                'Command "/usr/bin/python -m src/train"',
            )
        },
        call={"entry_point": "src/train.py", "source_dir": "."},
    ),
    RemoteCase(
        "T23",
        "sagemaker-python-sdk#222",
        "the bring-your-own image has no executable `train` on PATH",
        "entry_point",
        evidence=('exec: "train": executable file not found in $PATH',),
        fix=("chmod|executable",),
        where="L",
        failure_reason="AlgorithmError: See job logs for more information",
        transitions=FAILED,
        logs={"algo-1": ['exec: "train": executable file not found in $PATH']},
        call={"image_uri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/my-byo-train:latest"},
    ),
    RemoteCase(
        "T24",
        "amazon-sagemaker-examples#3650",
        "no executable `train` on PATH, behind an upload error's prefix",
        "entry_point",
        evidence=('exec: "train": executable file not found in $PATH',),
        fix=("chmod|executable",),
        failure_reason="ClientError: Artifact upload failed:API error (400): OCI runtime create failed: "
        'container_linux.go:380: starting container process caused: exec: "train": executable '
        "file not found in $PATH: unknown",
        transitions=FAILED,
        call={"image_uri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/my-byo-train:latest"},
    ),
    # F6: IAM / SCP
    RemoteCase(
        "T28",
        "wpilibsuite/DetectCoral#20",
        "the account forbids training jobs (an explicit deny)",
        "job_access_denied",
        evidence=("explicit deny", "sagemaker:CreateTrainingJob"),
        fix=("SCP|service control polic",),
        where="C",
        refusal=Refusal(
            "AccessDeniedException",
            "User: arn:aws:sts::123456789012:assumed-role/StudentRole/user is not authorized to perform: "
            "sagemaker:CreateTrainingJob on resource: arn:aws:sagemaker:us-east-1:123456789012:training-job/"
            "case-t28 with an explicit deny",
        ),
    ),
    # F7: VPC
    RemoteCase(
        "T33",
        "sagemaker-python-sdk#1142",
        "the job's subnet has no route out (no NAT): pip times out",
        "job_network",
        evidence=("timed out",),
        fix=("NAT",),
        where="L",
        failure_reason=toolkit_reason(
            "InstallRequirementsError", 1, command="/opt/conda/bin/python3.10 -m pip install -r requirements.txt"
        ),
        transitions=FAILED,
        logs={
            "algo-1": toolkit_log(
                "/opt/conda/bin/python3.10 -m pip install -r requirements.txt",
                "WARNING: Retrying (Retry(total=4, connect=None, read=None, redirect=None, status=None)) after "
                "connection broken by 'ConnectTimeoutError(<pip._vendor.urllib3.connection.HTTPSConnection object at "
                "0x7f1c2b3d4e50>, 'Connection to pypi.org timed out. (connect timeout=15)')': /simple/pandas/",
                "ERROR: Could not find a version that satisfies the requirement pandas==2.2.1 (from versions: none)",
                "2024-05-02 10:19:41,508 sagemaker-training-toolkit ERROR    InstallRequirementsError:",
            )
        },
        call={"subnets": ["subnet-0a1b2c3d"], "security_group_ids": ["sg-0a1b2c3d"]},
    ),
    # F8: dependencies
    RemoteCase(
        "T36",
        "sagemaker-training-toolkit#19",
        "a requirement (an empty setup.py) fails to install",
        "job_dependencies",
        evidence=("InstallModuleError",),
        fix=("requirement",),
        where="L",
        failure_reason=toolkit_reason("InstallModuleError", 1),
        transitions=FAILED,
        logs={
            "algo-1": [
                "2019-12-03 09:59:10,911 sagemaker-containers INFO     Installing module with the following command:",
                "/usr/bin/python -m pip install -U . -r requirements.txt",
                "Processing /opt/ml/code",
                "ERROR: Files/directories not found in /tmp/pip-req-build-7vb2kx0d/pip-egg-info",
                "2019-12-03 09:59:11,038 sagemaker-containers ERROR    InstallModuleError:",
                'Command "/usr/bin/python -m pip install -U . -r requirements.txt"',
            ]
        },
        call={"entry_point": "train.py", "source_dir": "."},
    ),
]

CASES = FIRST + MORE
BY_ID = {case.id: case for case in CASES}
