"""Managed SageMaker jobs as the bed has them: moto's `ThreadedMotoServer` inside the test process, so a test
sets a job's state on moto's own backend (moto completes every job at once, and no API call makes one
fail) while the SDK, the guest and the recorder reach it over HTTP like AWS.

`ManagedAws.env()` points a program at it; `next_job(JobState)` gives the jobs created while it is open the
case's state and log streams; `refuse_create(code, message)` makes the Create call refuse as the service
does; `put_job(name, JobState)` leaves a job behind for `smdiag job NAME` to find after the fact.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

REGION = "us-east-1"
ACCOUNT = "123456789012"
"""moto's default account: the one its backend keeps every resource under."""
ROLE = f"arn:aws:iam::{ACCOUNT}:role/SageMakerRole"
BUCKET = "smdiag-bed-bucket"
IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/smdiag-train:1"
STALL_LIMIT_S = 120
"""The longest a stalled call (`stall_describe`) holds a server thread, should a test never release it."""
LOG_GROUPS = {
    "training": "/aws/sagemaker/TrainingJobs",
    "processing": "/aws/sagemaker/ProcessingJobs",
    "transform": "/aws/sagemaker/TransformJobs",
}
"""The CloudWatch group of each job kind (an endpoint's is `/aws/sagemaker/Endpoints/<name>`)."""
_CREATES = {
    "training": ("create_training_job", "training_job_name"),
    "processing": ("create_processing_job", "processing_job_name"),
    "transform": ("create_transform_job", "transform_job_name"),
    "endpoint": ("create_endpoint", "endpoint_name"),
}
_DESCRIBES = {
    "training": "describe_training_job",
    "processing": "describe_processing_job",
    "transform": "describe_transform_job",
    "endpoint": "describe_endpoint",
}
_STATUS_ATTRIBUTE = {
    "training": "training_job_status",
    "processing": "processing_job_status",
    "transform": "transform_job_status",
    "endpoint": "endpoint_status",
}


@dataclass
class JobState:
    """What a case's job looks like to Describe* and CloudWatch. `logs`: per host (`algo-1`, ...) its lines,
    each a text or `(seconds after the job started, text)` (a distributed case sets which host failed first)."""

    status: str = "Failed"
    failure_reason: str | None = None
    secondary_status: str | None = None
    """Defaults to `status`."""
    transitions: list[tuple[str, str]] = field(default_factory=list)
    """(secondary status, its message), oldest first."""
    logs: dict[str, list] = field(default_factory=dict)
    training_seconds: int | None = None
    extra: dict = field(default_factory=dict)
    """Other attributes of moto's job object, by moto's attribute name (e.g. `resource_config`)."""


@dataclass(frozen=True)
class Refusal:
    """An API call refused as the service refuses it: its error code and message."""

    code: str
    message: str


class ManagedAws:
    """One ThreadedMotoServer on a free port for the life of the context (one per test module is enough)."""

    def __init__(self) -> None:
        self._server = None
        self.endpoint = ""
        self._trials: dict[str, list[str]] = {}

    def __enter__(self) -> ManagedAws:
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        self.client("s3").create_bucket(Bucket=BUCKET)
        return self

    def __exit__(self, *exc_info) -> None:
        from moto.sagemaker.responses import SageMakerResponse

        self._server.stop()
        if "list_training_jobs_for_hyper_parameter_tuning_job" in SageMakerResponse.__dict__:
            del SageMakerResponse.list_training_jobs_for_hyper_parameter_tuning_job

    def reset(self) -> None:
        """Every resource gone (moto's own reset), the bed's bucket made again: a new round of the same jobs."""
        import urllib.request

        reset = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        urllib.request.urlopen(reset, timeout=30).close()
        self.client("s3").create_bucket(Bucket=BUCKET)

    def env(self, directory: Path) -> dict[str, str]:
        """A program's AWS: this server for every service, test keys, the region, no instance metadata, and a
        SageMaker config (in `directory`) with the SDK's telemetry off (offline it only costs seconds)."""
        config = directory / "sagemaker-config.yaml"
        config.write_text("SchemaVersion: '1.0'\nSageMaker:\n  PythonSDK:\n    Modules:\n      TelemetryOptOut: true\n")
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
            "SAGEMAKER_USER_CONFIG_OVERRIDE": str(config),
            "SAGEMAKER_SUPPRESS_V2_WARNING": "1",
        }

    def client(self, service: str):
        import boto3

        return boto3.client(
            service, region_name=REGION, endpoint_url=self.endpoint,
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )  # fmt: skip

    @staticmethod
    def sagemaker_backend():
        from moto.sagemaker.models import sagemaker_backends

        return sagemaker_backends[ACCOUNT][REGION]

    @contextlib.contextmanager
    def next_job(self, state: JobState, resource: str = "training") -> Iterator[list[str]]:
        """Jobs (or endpoints) of `resource` created inside the context get `state`; yields their names."""
        created: list[str] = []

        def apply(job) -> None:
            name = getattr(job, _CREATES[resource][1])
            created.append(name)
            self._apply(resource, job, name, state)

        with _after_create(resource, apply):
            yield created

    @contextlib.contextmanager
    def refuse_create(self, code: str, message: str, resource: str = "training") -> Iterator[None]:
        """The Create call of `resource` refused with the service's error code and message (no job is made)."""
        from moto.core.exceptions import JsonRESTError

        def refuse(*args, **kwargs):
            raise JsonRESTError(code, message)

        with _replaced_create(resource, refuse):
            yield

    @contextlib.contextmanager
    def by_name(self, outcomes: dict[str, JobState | Refusal], resource: str = "training") -> Iterator[list[str]]:
        """Each Create of `resource` whose name starts with a key of `outcomes` gets that key's outcome: its
        state, or refused (a program that runs several cases in a row, each named after its case); other
        Creates are moto's own. Yields the names created."""
        from moto.core.exceptions import JsonRESTError
        from moto.sagemaker.models import SageMakerModelBackend

        method, name_key = _CREATES[resource]
        original = SageMakerModelBackend.__dict__[method]
        created: list[str] = []

        def create(backend, *args, **kwargs):
            name = kwargs.get(name_key) or ""
            outcome = next((o for prefix, o in outcomes.items() if name.startswith(prefix)), None)
            if isinstance(outcome, Refusal):
                raise JsonRESTError(outcome.code, outcome.message)
            made = original(backend, *args, **kwargs)
            if outcome is not None:
                created.append(name)
                self._apply(resource, made, name, outcome)
            return made

        with _replaced_create(resource, create):
            yield created

    @contextlib.contextmanager
    def refuse_describe(self, prefix: str, refusal: Refusal, resource: str = "training") -> Iterator[None]:
        """Describe* of the jobs named `prefix...` refused (expired credentials, throttling while a job runs)."""
        from moto.core.exceptions import JsonRESTError
        from moto.sagemaker.models import SageMakerModelBackend

        method = _DESCRIBES[resource]
        original = SageMakerModelBackend.__dict__[method]

        def describe(backend, name, *args, **kwargs):
            if name.startswith(prefix):
                raise JsonRESTError(refusal.code, refusal.message)
            return original(backend, name, *args, **kwargs)

        setattr(SageMakerModelBackend, method, describe)
        try:
            yield
        finally:
            setattr(SageMakerModelBackend, method, original)

    @contextlib.contextmanager
    def stall_describe(self, prefix: str, resource: str = "training") -> Iterator[threading.Event]:
        """Describe* of the jobs named `prefix...` answered only once the yielded event is set (set on leaving):
        a service that takes the request and keeps the caller waiting. moto's server serves each request in a
        thread of its own, so the other calls are answered meanwhile."""
        from moto.sagemaker.models import SageMakerModelBackend

        method = _DESCRIBES[resource]
        original = SageMakerModelBackend.__dict__[method]
        release = threading.Event()

        def describe(backend, name, *args, **kwargs):
            if name.startswith(prefix):
                release.wait(STALL_LIMIT_S)
            return original(backend, name, *args, **kwargs)

        setattr(SageMakerModelBackend, method, describe)
        try:
            yield release
        finally:
            release.set()
            setattr(SageMakerModelBackend, method, original)

    @contextlib.contextmanager
    def refuse_log_reads(self, host: str, refusal: Refusal) -> Iterator[None]:
        """GetLogEvents of the log streams of `host` (`<job>/algo-2-...`) refused, every other stream answered: a
        throttled or failing read of one host's logs among many."""
        from moto.core.exceptions import JsonRESTError
        from moto.logs.models import LogsBackend

        original = LogsBackend.__dict__["get_log_events"]

        def get_log_events(backend, log_group_name, log_group_id, log_stream_name, *args, **kwargs):
            if log_stream_name.rpartition("/")[2].startswith(f"{host}-"):
                raise JsonRESTError(refusal.code, refusal.message)
            return original(backend, log_group_name, log_group_id, log_stream_name, *args, **kwargs)

        LogsBackend.get_log_events = get_log_events
        try:
            yield
        finally:
            LogsBackend.get_log_events = original

    def put_tuning_job(self, name: str, trials: dict[str, JobState], failure_reason: str | None = None) -> None:
        """A hyperparameter tuning job left `Failed` with `failure_reason`, whose training jobs are `trials` (name:
        state; each made by `put_job`). moto has the tuning job but not the list of its training jobs
        (ListTrainingJobsForHyperParameterTuningJob): the server answers it from `trials`, as the service does,
        for the life of this ManagedAws."""
        self.client("sagemaker").create_hyper_parameter_tuning_job(
            HyperParameterTuningJobName=name,
            HyperParameterTuningJobConfig={"Strategy": "Bayesian", "ResourceLimits": {"MaxNumberOfTrainingJobs": 2,
                                           "MaxParallelTrainingJobs": 2}},
            TrainingJobDefinition={"AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
                                   "RoleArn": ROLE, "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/out"},
                                   "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1,
                                                      "VolumeSizeInGB": 30},
                                   "StoppingCondition": {"MaxRuntimeInSeconds": 3600}},
        )  # fmt: skip
        job = self.sagemaker_backend().hyper_parameter_tuning_jobs[name]
        job.hyper_parameter_tuning_job_status = "Failed"
        job.failure_reason = failure_reason
        for trial, state in trials.items():
            self.put_job(trial, state)
        self._trials[name] = list(trials)
        self._serve_trials()

    def _serve_trials(self) -> None:
        from moto.sagemaker.responses import SageMakerResponse

        if hasattr(SageMakerResponse, "list_training_jobs_for_hyper_parameter_tuning_job"):
            return
        trials, backend = self._trials, self.sagemaker_backend

        def list_trials(response) -> str:
            asked = json.loads(response.body)
            jobs = [backend().training_jobs[n] for n in trials.get(asked["HyperParameterTuningJobName"], [])]
            jobs = [job for job in jobs if asked.get("StatusEquals") in (None, job.training_job_status)]
            jobs.sort(key=lambda job: job.creation_time, reverse=asked.get("SortOrder") == "Descending")
            jobs = jobs[: int(asked.get("MaxResults") or 100)]
            summaries = [{"TrainingJobName": job.training_job_name, "TrainingJobArn": job.arn,
                          "TrainingJobStatus": job.training_job_status, "CreationTime": job.creation_time.timestamp(),
                          "TunedHyperParameters": {}} for job in jobs]  # fmt: skip
            return json.dumps({"TrainingJobSummaries": summaries})

        SageMakerResponse.list_training_jobs_for_hyper_parameter_tuning_job = list_trials

    def put_job(self, name: str, state: JobState, **overrides) -> None:
        """A training job made as another tool would make it, left in `state` (`overrides`: CreateTrainingJob
        parameters)."""
        request = {
            "TrainingJobName": name,
            "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
            "RoleArn": ROLE,
            "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/out"},
            "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
            "StoppingCondition": {"MaxRuntimeInSeconds": 86400},
            **overrides,
        }
        self.client("sagemaker").create_training_job(**request)
        job = self.sagemaker_backend().training_jobs[name]
        self._apply("training", job, name, state)

    def _apply(self, resource: str, job, name: str, state: JobState) -> None:
        setattr(job, _STATUS_ATTRIBUTE[resource], state.status)
        job.failure_reason = state.failure_reason
        if resource == "training":
            job.secondary_status = state.secondary_status or state.status
            transitions = [
                {"Status": status, "StatusMessage": message, "StartTime": job.creation_time}
                for status, message in state.transitions
            ]
            job.secondary_status_transitions = transitions or job.secondary_status_transitions
            if state.training_seconds is not None:  # it trained that long: it ended that much after it started
                job.training_time_in_seconds = state.training_seconds
                job.training_end_time = job.training_start_time + datetime.timedelta(seconds=state.training_seconds)
        for attribute, value in state.extra.items():
            setattr(job, attribute, value)
        if state.logs:
            self._write_logs(resource, name, state.logs)

    @staticmethod
    def _write_logs(resource: str, name: str, logs: dict[str, list]) -> None:
        """The host streams as SageMaker names them, written on moto's logs backend (this runs inside the
        server's own request, which must not call the server back)."""
        from moto.logs.models import logs_backends

        backend = logs_backends[ACCOUNT][REGION]
        group = LOG_GROUPS.get(resource) or f"/aws/sagemaker/Endpoints/{name}"
        if group not in backend.groups:
            backend.create_log_group(group, tags={})
        started_ms = int(time.time() * 1000)
        epoch = started_ms // 1000
        for host, lines in logs.items():
            stream = f"AllTraffic/{host}" if resource == "endpoint" else f"{name}/{host}-{epoch}"
            backend.create_log_stream(group, stream)
            events = []
            for index, line in enumerate(lines):
                seconds, text = line if isinstance(line, tuple) else (index * 0.001, line)
                events.append({"timestamp": started_ms + int(seconds * 1000), "message": text})
            backend.put_log_events(group, stream, sorted(events, key=lambda event: event["timestamp"]))


@contextlib.contextmanager
def _after_create(resource: str, then) -> Iterator[None]:
    """moto's Create of `resource`, followed by `then(the object it made)`."""
    from moto.sagemaker.models import SageMakerModelBackend

    method, _ = _CREATES[resource]
    original = getattr(SageMakerModelBackend, method)

    def create(backend, *args, **kwargs):
        made = original(backend, *args, **kwargs)
        then(made)
        return made

    with _replaced_create(resource, create):
        yield


@contextlib.contextmanager
def _replaced_create(resource: str, replacement) -> Iterator[None]:
    from moto.sagemaker.models import SageMakerModelBackend

    method, _ = _CREATES[resource]
    original = SageMakerModelBackend.__dict__[method]
    setattr(SageMakerModelBackend, method, replacement)
    try:
        yield
    finally:
        setattr(SageMakerModelBackend, method, original)


def quota(name: str, value: float, code: str) -> dict:
    return {"ServiceCode": "sagemaker", "ServiceName": "Amazon SageMaker", "QuotaName": name, "QuotaCode": code,
            "Value": value, "Unit": "None", "Adjustable": True, "GlobalQuota": False}  # fmt: skip


@contextlib.contextmanager
def sagemaker_quotas(
    applied: dict[str, float], codes: dict[str, str] | None = None, others: int = 0,
    unapplied: dict[str, float] | None = None,
) -> Iterator[None]:  # fmt: skip
    """Service Quotas on moto (which knows VPC's only) knows SageMaker's quotas in REGION, in this process:
    `others` quotas, then `applied` (name: applied value; each one's default is 0; its code from `codes`, else
    made up), listed 100 a page as the service does (moto pages nothing). `unapplied` (name: default): quotas
    never changed, whose GetServiceQuota answers NoSuchResourceException as the service's does."""
    from moto.servicequotas.exceptions import NoSuchResource
    from moto.servicequotas.models import ServiceQuotasBackend
    from moto.servicequotas.responses import ServiceQuotasResponse

    kinds = ("processing job usage", "transform job usage", "training warm pool usage", "notebook instance usage")
    defaults = [quota(f"ml.x{n}.large for {kinds[n % len(kinds)]}", 4, f"L-0{n:07X}") for n in range(others)]
    unapplied = unapplied or {}
    code_of = {name: (codes or {}).get(name, f"L-1{n:07X}") for n, name in enumerate([*applied, *unapplied])}
    defaults += [quota(name, 0, code_of[name]) for name in applied]
    defaults += [quota(name, default, code_of[name]) for name, default in unapplied.items()]
    values = {code_of[name]: value for name, value in applied.items()}
    listed, got = ServiceQuotasResponse.list_aws_default_service_quotas, ServiceQuotasBackend.get_service_quota

    def list_defaults(self) -> str:
        asked = json.loads(self.body)
        if asked.get("ServiceCode") != "sagemaker":
            return listed(self)
        mine = defaults if self.region == REGION else []
        start, size = int(asked.get("NextToken") or 0), int(asked.get("MaxResults") or 100)
        page = {"Quotas": mine[start : start + size]}
        if start + size < len(mine):
            page["NextToken"] = str(start + size)
        return json.dumps(page)

    def get_applied(self, service_code: str, quota_code: str) -> dict:
        if service_code != "sagemaker":
            return got(self, service_code, quota_code)
        found = next(q for q in defaults if q["QuotaCode"] == quota_code)
        if quota_code not in values:
            raise NoSuchResource()
        return {**found, "Value": values.get(quota_code, found["Value"])}

    ServiceQuotasResponse.list_aws_default_service_quotas = list_defaults
    ServiceQuotasBackend.get_service_quota = get_applied
    try:
        yield
    finally:
        ServiceQuotasResponse.list_aws_default_service_quotas = listed
        ServiceQuotasBackend.get_service_quota = got
