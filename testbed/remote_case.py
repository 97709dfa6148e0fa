"""One managed-job failure case as data (testbed/remote_cases.py holds the table): where its text reaches the
user, the call that meets it, and what a right diagnosis says; and how a report is judged against it."""

from __future__ import annotations

from dataclasses import dataclass, field

from testbed.remote_aws import JobState, Refusal

JOBS = ("training", "processing", "transform", "endpoint")


@dataclass(frozen=True)
class RemoteCase:
    id: str
    source: str
    cause: str
    """The cause the thread established, in a user's words."""
    category: str
    evidence: tuple[str, ...]
    fix: tuple[str, ...]
    where: str = "J"
    resource: str = "training"
    refusal: Refusal | None = None
    status: str = "Failed"
    secondary_status: str | None = None
    failure_reason: str | None = None
    transitions: tuple[tuple[str, str], ...] = ()
    logs: dict = field(default_factory=dict)
    """host -> lines, each a text or (seconds after the start, text)."""
    training_seconds: int | None = None
    call: dict = field(default_factory=dict)
    """The call's parameters, in the SDKs' own words: instance_type, instance_count, volume_size, max_run,
    max_wait, spot, checkpoint_s3_uri, entry_point, source_dir, image_uri, subnets, inputs, model_data..."""
    describe_refusal: Refusal | None = None
    """The job's Describe refused while the SDK waits (the client's credentials, not the job)."""
    returns: bool = False
    """The SDK's call returns (a Stopped job): no report from the call; `smdiag job` names it."""
    job_category: str | None = None
    """What `smdiag job NAME` says when it is not `category` (the job outlived the client's error)."""
    wait_timeout: bool = False
    """The user waits with a timeout (sagemaker-core's `wait(timeout=...)`), which runs out."""
    sdks: tuple[str, ...] = ("v2", "v3")

    @property
    def name(self) -> str:
        """The job's (or endpoint's) name, a prefix for SDK v3 (which adds a timestamp)."""
        return f"case-{self.id.lower()}"

    def state(self) -> JobState:
        """The job as Describe* and CloudWatch show it."""
        extra = {}
        if self.resource == "processing":  # what AWS's DescribeProcessingJob has and moto's omits
            count = self.call.get("instance_count", 1)
            extra["processing_resources"] = {"ClusterConfig": {"InstanceCount": count, "VolumeSizeInGB": 30,
                                                               "InstanceType": self.instance_type}}  # fmt: skip
        return JobState(status=self.status, failure_reason=self.failure_reason, secondary_status=self.secondary_status,
                        transitions=list(self.transitions), logs=dict(self.logs),
                        training_seconds=self.training_seconds, extra=extra)  # fmt: skip

    @property
    def instance_type(self) -> str:
        return self.call.get("instance_type", "ml.m5.xlarge")


def toolkit_reason(error: str, exit_code: int, message: str = "", command: str = "") -> str:
    """The FailureReason the training toolkit writes: the error, the exit code, the stderr line it knew."""
    reason = f'AlgorithmError: {error}:\nExitCode {exit_code}\nErrorMessage "{message}"'
    return reason + (f'\nCommand "{command}"' if command else "")


def toolkit_log(*lines: str, start: str = "2024-05-02 10:14:03,112") -> list[str]:
    """A host's stream: the toolkit's start, the user's script's lines, then its own error report."""
    return [
        f"{start} sagemaker-training-toolkit INFO     Imported framework sagemaker_pytorch_container.training",
        f"{start} sagemaker-training-toolkit INFO     Invoking user script",
        *lines,
    ]


SCRIPT_COMMAND = "/opt/conda/bin/python3.10 train.py --epochs 10"
EMPTY_SCRIPT_ERROR = toolkit_reason("ExecuteUserScriptError", 1, command=SCRIPT_COMMAND)
PING_FAILED = ("The primary container for production variant AllTraffic did not pass the ping health check. "
               "Please check CloudWatch logs for this endpoint.")  # fmt: skip
FAILED = (("Starting", "Launching requested ML instances"), ("Downloading", "Downloading input data"),
          ("Training", "Training image download completed. Training in progress."),
          ("Uploading", "Uploading generated training model"), ("Failed", "Training job failed"))  # fmt: skip
SPOT = {"spot": True, "max_run": 3600, "max_wait": 7200}


def meets(text: str | None, entry: str) -> bool:
    """Whether `text` holds one of the entry's "|"-separated words (case-insensitive)."""
    return any(word.lower() in (text or "").lower() for word in entry.split("|"))


def judge(case: RemoteCase, report: dict | None, category: str | None = None) -> list[str]:
    """What a user would notice is wrong with a diagnosis (a report's, or `smdiag job --json`'s; empty: right):
    its category (`category`, else the case's), the summary quoting the evidence, the hint naming the fix."""
    if report is None:
        return ["no report"]
    expected = category or case.category
    problems = [] if report.get("category") == expected else [f"category {report.get('category')}, expected {expected}"]
    problems += [f"the summary does not quote {e!r}" for e in case.evidence if not meets(report.get("summary"), e)]
    return problems + [f"the hint does not name {f!r}" for f in case.fix if not meets(report.get("hint"), f)]
