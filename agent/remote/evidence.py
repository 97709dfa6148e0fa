"""The recorder's evidence of a managed job or endpoint, read with the user's own credentials, read-only.

Sources, in order, all within one time budget (REMOTE_BUDGET_S): the refusal of a Create call parsed from
the SDK's exception (no job exists then, so nothing else is asked but, on ResourceLimitExceeded, the quota
from Service Quotas); the Describe* of the job or endpoint; the CloudWatch log stream of every host, the
last lines of each and its first error line. A source that fails leaves its field empty and says why, with
the permission it lacks, under its key (`describe`, `logs`, `quota`): never fatal to the report. A host's log
stream that cannot be read (throttled, refused) keeps what was read of it and the other hosts' logs; the
streams not read whole are named under `logs`. Once AWS
gives no answer at all, the sources after it are not asked (each would wait out its own timeout).
"""

from __future__ import annotations

import dataclasses
import datetime
import re
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from agent.failures.patterns import parse_refusal
from agent.failures.types import HostLog, RemoteEvidence
from agent.remote import quotas
from agent.remote.aws import (
    AwsUnavailable,
    Deadline,
    asked,
    client,
    error_code,
    in_parallel,
    is_unavailable,
    why_not,
)

if TYPE_CHECKING:
    from agent.failures.types import FailureFacts
    from agent.settings import Settings

REMOTE_BUDGET_S = 10.0
"""The whole gathering's time: the user waits for the report after their exception."""
REMOTE_LOG_LINES = 200
"""Last lines kept per host stream."""
LOG_PAGE_EVENTS = 100
"""Events asked per GetLogEvents page (the tail is read backwards, page by page, up to REMOTE_LOG_LINES)."""
MAX_LOG_PAGES = 10
"""Pages read per stream at most: CloudWatch may answer empty pages before the end."""
STREAM_PAGE = 50
"""DescribeLogStreams' largest page."""
MAX_HOST_STREAMS = 64
"""Streams read per job at most (one per host, more for transform jobs' data logs)."""
MAX_LINE_CHARS = 2000
MAX_UNREAD_NAMED = 5
"""Streams named, with why, in the line saying which could not be read whole."""

_QUOTA_NAME = re.compile(r"service limit '(?P<name>[^']+)' is (?P<value>[\d.]+)")
ERROR_LINE = re.compile(
    r"(?:^|[\s>\]|:])(?:[a-z_]\w*\.)*[A-Z]\w*(?:Error|Exception|Exit|Interrupt)(?::|\s*$)"  # an exception's line
    r"|(?i:\bexit\s?code\s*[:=]?\s*-?[1-9]\d*|\bSignal\s+\d+\b|\bSIG(?:ABRT|KILL|SEGV|BUS)\b|\bMPI_ABORT\b"
    r"|\bNCCL\b.*\b(?:error|timed?\s?out)\b|executable file not found|\[FATAL\b|No space left on device"
    r"|\bErrno 28\b|\bout of memory\b|Worker died)"
)
"""A log line that names an error: a traceback's last line, an exit code, a signal, an MPI or NCCL abort, a
missing executable, a full disk, memory."""
_EPOCH_SUFFIX = re.compile(r"-\d{9,}$")


@dataclasses.dataclass(frozen=True)
class Kind:
    """How one kind of resource is read: its Describe call, its status's key, and where its logs are."""

    describe: str
    """The boto3 method; its IAM action is sagemaker:<the same in CamelCase>."""
    name_parameter: str
    status: str
    log_group: str
    """`{name}` in it is the resource's name; streams are then not prefixed by it."""


KINDS = {
    "training": Kind("describe_training_job", "TrainingJobName", "TrainingJobStatus", "/aws/sagemaker/TrainingJobs"),
    "processing": Kind(
        "describe_processing_job", "ProcessingJobName", "ProcessingJobStatus", "/aws/sagemaker/ProcessingJobs"
    ),
    "transform": Kind(
        "describe_transform_job", "TransformJobName", "TransformJobStatus", "/aws/sagemaker/TransformJobs"
    ),
    "endpoint": Kind("describe_endpoint", "EndpointName", "EndpointStatus", "/aws/sagemaker/Endpoints/{name}"),
    "tuning": Kind(
        "describe_hyper_parameter_tuning_job",
        "HyperParameterTuningJobName",
        "HyperParameterTuningJobStatus",
        "/aws/sagemaker/TrainingJobs",
    ),
}


def iam_action(method: str) -> str:
    """A boto3 method's IAM action name: `describe_training_job` → `DescribeTrainingJob` (of `sagemaker:`)."""
    return "".join(part.capitalize() for part in method.split("_"))


def gather_remote(facts: FailureFacts, settings: Settings) -> tuple[RemoteEvidence, dict[str, str], dict[str, float]]:
    """The evidence of the managed call the guest saw fail (`facts.remote`), bounded by REMOTE_BUDGET_S."""
    call = facts.remote
    return gather(call.resource, call.name, call.region, call.parameters, facts.exception.message or "")


def gather(
    resource: str,
    name: str | None,
    region: str | None,
    parameters: dict,
    exception_message: str = "",
    budget_s: float = REMOTE_BUDGET_S,
) -> tuple[RemoteEvidence, dict[str, str], dict[str, float]]:
    """The evidence, what could not be read and why (by source), and each source's seconds."""
    reading = Reading(resource, region, Deadline(budget_s))
    return read(reading, name, parameters, exception_message), reading.errors, reading.seconds


def read(reading: Reading, name: str | None, parameters: dict, exception_message: str = "") -> RemoteEvidence:
    """`gather`'s evidence, read within `reading` (which then holds what failed, and whether AWS was silent)."""
    resource = reading.resource
    refusal = parse_refusal(exception_message)
    found: dict = {"refusal": refusal}
    created = refusal is None or not refusal["operation"].startswith("Create")
    if refusal is not None and refusal["code"] == "ResourceLimitExceeded":
        found["quota"] = reading.source("quota", quotas.LIST_ACTION, _quota, refusal)
    if created and name:
        job = found["job"] = reading.source("describe", _describe_action(resource), _describe, name)
        if job is not None and resource in EXTRA_DESCRIBES:
            action, extra = EXTRA_DESCRIBES[resource]
            job.update(reading.source("describe", action, extra, job) or {})
        log_name = _failed_trial(job) if resource == "tuning" else name
        if log_name:
            found["logs"] = reading.source("logs", "logs:GetLogEvents", _host_logs, log_name) or []
    return RemoteEvidence(resource, name, reading.region or reading.region_asked(), dict(parameters), **found)


def _describe_action(resource: str) -> str:
    return "sagemaker:" + iam_action(KINDS[resource].describe)


@dataclasses.dataclass
class Reading:
    """One gathering's shared state: the budget, the clients made once, what failed and how long each took."""

    resource: str
    region: str | None
    deadline: Deadline
    errors: dict[str, str] = dataclasses.field(default_factory=dict)
    seconds: dict[str, float] = dataclasses.field(default_factory=dict)
    silent: str | None = None
    """Why AWS gave no answer (credentials, region, timeout): the sources after it are not asked."""
    _clients: dict = dataclasses.field(default_factory=dict)

    def client(self, service: str):
        if service not in self._clients:
            self._clients[service] = client(service, self.region, self.deadline)
        return self._clients[service]

    def region_asked(self) -> str | None:
        """The region the default chain gave, when a client was made (the guest knew none)."""
        made = next(iter(self._clients.values()), None)
        return made.meta.region_name if made is not None else None

    def source(self, key: str, action: str, read: Callable, *args):
        """`read(self, *args)`, or None with the reason under `errors[key]` (a source asked twice keeps its
        first); its time added under `seconds[key]`. It runs in a thread of its own, given what is left of
        the budget: a call that overruns its timeout cannot hold the report."""
        started = time.monotonic()
        outcome: dict = {}

        def run() -> None:
            try:
                outcome["value"] = read(self, *args)
            except Exception as exc:  # noqa: BLE001 - a source that fails is a line of the report, never fatal
                outcome["error"] = exc

        try:
            if self.silent is not None:
                raise AwsUnavailable(f"not asked: {self.silent}")
            worker = threading.Thread(target=run, name=f"remote-{key}", daemon=True)
            worker.start()
            worker.join(self.deadline.left())
            if "error" in outcome:
                raise outcome["error"]
            if "value" not in outcome:
                raise AwsUnavailable(f"no answer within the {self.deadline.seconds:g} s budget")
            return outcome["value"]
        except Exception as exc:  # noqa: BLE001 - as above
            self.errors.setdefault(key, why_not(exc, getattr(exc, "action", action)))
            if is_unavailable(exc) and self.silent is None:
                self.silent = self.errors[key]
            return None
        finally:
            self.seconds[key] = round(self.seconds.get(key, 0) + time.monotonic() - started, 3)


def _describe(reading: Reading, name: str) -> dict:
    """The Describe* of the resource, JSON-safe."""
    kind = KINDS[reading.resource]
    return json_safe(getattr(reading.client("sagemaker"), kind.describe)(**{kind.name_parameter: name}))


def _endpoint_config(reading: Reading, endpoint: dict) -> dict:
    """An endpoint's config (its variants' model, instance type and count), under `EndpointConfig`."""
    if not endpoint.get("EndpointConfigName"):
        return {}
    config = reading.client("sagemaker").describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    return {"EndpointConfig": json_safe(config)}


def _first_failed_trial(reading: Reading, tuning_job: dict) -> dict:
    """A tuning job's first failed training job, under `FailedTrainingJob`: its logs are the tuning job's."""
    sagemaker = reading.client("sagemaker")
    failed = asked(
        "sagemaker:ListTrainingJobsForHyperParameterTuningJob",
        sagemaker.list_training_jobs_for_hyper_parameter_tuning_job,
        HyperParameterTuningJobName=tuning_job["HyperParameterTuningJobName"], StatusEquals="Failed",
        SortBy="CreationTime", SortOrder="Ascending", MaxResults=1,
    )["TrainingJobSummaries"]  # fmt: skip
    if not failed:
        return {}
    trial = sagemaker.describe_training_job(TrainingJobName=failed[0]["TrainingJobName"])
    return {"FailedTrainingJob": json_safe(trial)}


EXTRA_DESCRIBES = {
    "endpoint": ("sagemaker:DescribeEndpointConfig", _endpoint_config),
    "tuning": ("sagemaker:DescribeTrainingJob", _first_failed_trial),
}
"""What more a resource's Describe needs to be read whole, and the permission it takes."""


def _failed_trial(job: dict | None) -> str | None:
    return ((job or {}).get("FailedTrainingJob") or {}).get("TrainingJobName")


def json_safe(value):
    """A boto3 response as JSON holds it: datetimes as epoch seconds, ResponseMetadata dropped."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    if isinstance(value, datetime.datetime):
        return value.timestamp()
    return value


# ------------------------------------------------------------------------------------------------ logs


def _host_logs(reading: Reading, name: str) -> list[HostLog]:
    """The last lines of every host's stream of the job `name`, each with its first error line."""
    logs = reading.client("logs")
    group_pattern = KINDS["training" if reading.resource == "tuning" else reading.resource].log_group
    group = group_pattern.format(name=name)
    prefix = "" if "{name}" in group_pattern else f"{name}/"
    try:
        streams = _stream_names(logs, group, prefix, reading.deadline)
    except Exception as exc:
        if error_code(exc) == "ResourceNotFoundException":  # no log group: the job never ran a container
            return []
        exc.action = "logs:DescribeLogStreams"
        raise
    host_of = _endpoint_host if "{name}" in group_pattern else _job_host
    tails = in_parallel(lambda stream: _tail(logs, group, stream, reading.deadline), streams)
    errors = [error for _, error in tails if error is not None]
    if errors and not any(events for events, _ in tails):
        raise errors[0]  # nothing read of any stream: the source's own failure (a refusal names its permission)
    host_logs, unread = logs_read(streams, tails, prefix, host_of)
    if unread:
        reading.errors.setdefault("logs", unread)
    return host_logs


def logs_read(
    streams: list[str], tails: list[tuple[list[tuple[float, str]], BaseException | None]], prefix: str,
    host_of: Callable[[str, str], str | None],
) -> tuple[list[HostLog], str | None]:  # fmt: skip
    """Each stream's HostLog (the lines read, also of a stream whose reading failed part way), and one line
    naming the streams that could not be read whole and why (the error code and the IAM action), or None.
    Pure."""
    host_logs, failed = [], []
    for stream, (events, error) in zip(streams, tails, strict=True):
        host = host_of(stream, prefix)
        if events:
            host_logs.append(_host_log(stream, host, events))
        if error is not None:
            part = "in part" if events else "not read"
            failed.append(f"{host or stream} ({part}: {why_not(error, 'logs:GetLogEvents')})")
    if not failed:
        return host_logs, None
    shown = "; ".join(failed[:MAX_UNREAD_NAMED]) + (f"; and {len(failed) - MAX_UNREAD_NAMED} more" if
                                                     len(failed) > MAX_UNREAD_NAMED else "")  # fmt: skip
    return host_logs, f"{len(failed)} of {len(streams)} log streams not read whole, the others kept: {shown}"


def _stream_names(logs, group: str, prefix: str, deadline: Deadline) -> list[str]:
    """The group's streams under `prefix`, in name order, every page (by nextToken) up to MAX_HOST_STREAMS."""
    names: list[str] = []
    token, seen = None, set()
    while len(names) < MAX_HOST_STREAMS and deadline.left():
        page = logs.describe_log_streams(
            logGroupName=group, limit=STREAM_PAGE,
            **({"logStreamNamePrefix": prefix} if prefix else {}), **({"nextToken": token} if token else {}),
        )  # fmt: skip
        names += [s["logStreamName"] for s in page.get("logStreams", [])]
        token = page.get("nextToken")
        if not token or token in seen:
            break
        seen.add(token)
    return names[:MAX_HOST_STREAMS]


def _tail(logs, group: str, stream: str, deadline: Deadline) -> tuple[list[tuple[float, str]], Exception | None]:
    """The stream's last REMOTE_LOG_LINES lines with their times, oldest first: from the end, each page the
    one before (nextBackwardToken) until the token repeats (the stream's start) or enough lines are read; and
    the error that ended the reading early, if one did (the lines read before it are kept)."""
    lines: list[tuple[float, str]] = []
    token = None
    for _ in range(MAX_LOG_PAGES):
        if not deadline.left():
            break
        try:
            page = logs.get_log_events(
                logGroupName=group, logStreamName=stream, startFromHead=False, limit=LOG_PAGE_EVENTS,
                **({"nextToken": token} if token else {}),
            )  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - one stream unread must not lose the other hosts' logs
            return lines[-REMOTE_LOG_LINES:], exc
        lines = [
            (event["timestamp"] / 1000, line[:MAX_LINE_CHARS])
            for event in page.get("events", [])
            for line in (event.get("message") or "").rstrip("\n").split("\n")
        ] + lines
        previous, token = token, page.get("nextBackwardToken")
        if len(lines) >= REMOTE_LOG_LINES or not token or token == previous:
            break
    return lines[-REMOTE_LOG_LINES:], None


def _host_log(stream: str, host: str | None, events: list[tuple[float, str]]) -> HostLog:
    first = next(((when, line) for when, line in events if ERROR_LINE.search(line)), None)
    error, error_time = first[::-1] if first else (None, None)
    return HostLog(stream, host, [line for _, line in events], error, error_time, events[-1][0] if events else None)


def _job_host(stream: str, prefix: str) -> str | None:
    """`<job>/algo-2-1700000000` → `algo-2` (transform: `<job>/i-0abc-1700000000/data-log` → `i-0abc`)."""
    first = stream[len(prefix) :].split("/")[0]
    return _EPOCH_SUFFIX.sub("", first) or None


def _endpoint_host(stream: str, prefix: str) -> str | None:
    """An endpoint's `AllTraffic/i-0abc...` → `i-0abc...` (the instance)."""
    return stream.rsplit("/", 1)[-1] or None


# ----------------------------------------------------------------------------------------------- quota


def _quota(reading: Reading, refusal: dict) -> dict | None:
    """The Service Quotas entry the refusal names ("'ml.p3.2xlarge for training job usage' is 0 Instances"):
    its code from the defaults' list (by name), its applied value (agent.remote.quotas: the default when none
    was applied). When the value cannot be read, the quota found stays, with the refusal's own value, and why
    is recorded under `quota`."""
    named = _QUOTA_NAME.search(refusal["message"])
    if named is None:
        return None
    found = quotas.find(reading.client("service-quotas"), {named["name"]}, reading.deadline).get(named["name"])
    if found is None:
        return None
    value = found["Value"]
    if isinstance(value, Exception):
        reading.errors.setdefault("quota", why_not(value, quotas.GET_ACTION))
        value = float(named["value"])
    return {"name": named["name"], "value": value, "code": found["QuotaCode"]}
