"""Naming a managed job's failure (training, processing, transform, tuning, an endpoint): one category, a summary
quoting the evidence line; the catalog adds the hint. Pure, like agent.failures.classify, which dispatches here
when the evidence has a `remote` part.

The sources, as the rules name them (each rule reads only those its cause speaks in):
- `refusal`: the service's refusal of a Create call (code, operation, message): no job exists;
- `exception`: the SDK's exception in the user's process (a client-side error while it waited speaks here);
- `reason`: the Describe's FailureReason (ExitMessage for processing), or the one the SDK's exception repeats;
- `status`: the Describe's secondary status and its transitions' messages;
- `logs`: each host's CloudWatch stream, the first failing host's (earliest first error) first.
The Describe's configuration (instance count, volume, max runtime, spot, checkpoints, VPC, KMS keys) is the
context a rule's summary measures the evidence against. Rules run in order, the first match wins: a refused
Create, then the states that are no failure of the job's (the client's error, a stop, a wait), then the
causes that make later evidence meaningless (the service, capacity, the image, the entry point) before the
script's own errors.
"""

from __future__ import annotations

import re

from agent import container_logs
from agent.failures import catalog
from agent.failures.classify import Finding, Hit, diagnosis
from agent.failures.patterns import any_of, parse_refusal
from agent.failures.remote_rules import FAILED_RULES, REMOTE_PATTERNS, unknown
from agent.failures.types import Diagnosis, Evidence, HostLog, RemoteEvidence

SDK_REASON = re.compile(r"(?:Failure Reason|Reason): (?P<reason>.*?)(?:\. Check troubleshooting guide.*)?$", re.S)
"""The FailureReason as SDK v2's UnexpectedStatusException and v3's FailedStatusError repeat it."""
SDK_STATUS = re.compile(r"(?:Final Resource State: |: )(?P<status>Failed|Stopped)\b")
STATUS_KEYS = (
    "TrainingJobStatus", "ProcessingJobStatus", "TransformJobStatus", "EndpointStatus",
    "HyperParameterTuningJobStatus",
)  # fmt: skip
RUNNING = {"InProgress", "Stopping", "Pending", "Creating", "Updating", "SystemUpdating", "RollingBack"}
KINDS = {"training": "training job", "processing": "processing job", "transform": "transform job",
         "endpoint": "endpoint", "tuning": "tuning job"}  # fmt: skip

CLIENT_SIDE = {
    "credentials": any_of(
        r"ExpiredToken", r"RequestExpired", r"security token included in the request is (expired|invalid)",
        r"InvalidClientTokenId", r"UnrecognizedClientException", r"NoCredentialsError",
        r"Unable to locate credentials",
    ),
    "throttling": any_of(r"ThrottlingException", r"Rate exceeded", r"TooManyRequests"),
    "network": any_of(
        r"EndpointConnectionError", r"Could not connect to the endpoint URL", r"ConnectTimeoutError",
        r"ReadTimeoutError", r"ConnectionClosedError", r"Connection reset by peer", r"Connect timeout on endpoint",
        r"Read timeout on endpoint",
    ),
    "wait": any_of(r"TimeoutExceededError", r"Timeout exceeded while waiting"),
}  # fmt: skip
"""The client's own errors while the SDK waited on a job (F16), by what the user renews."""
RENEW = {
    "credentials": "the credentials expired or are missing: renew them (`aws sso login`, a new session token, or "
    "the notebook's role)",
    "throttling": "the API throttled the SDK's Describe calls: wait a minute",
    "network": "the SageMaker API could not be reached from here: check the network (proxy, VPC endpoint)",
    "wait": "the SDK's wait timed out: wait longer (wait(timeout=...))",
}
LOGS = ("logs",)
CALLER_DENIED = (
    "your own identity (this notebook's role or your credentials: the ARN the message names) may not make the call "
    "quoted, not the job's execution role: allow it in that identity's policy (a job's Create also needs "
    "iam:PassRole on the execution role); an explicit deny is an SCP's or a permissions boundary's: ask the "
    "account's administrator"
)
"""A refused call was the caller's own (the job, if any, did not make it): the hint names the caller's identity."""
STALL_SILENCE_S = 1800
"""A stopped job whose every host wrote nothing for this long before its end had stalled."""


class Job:
    """A managed call's evidence by source, with the Describe's facts the rules measure against."""

    def __init__(self, evidence: Evidence, remote: RemoteEvidence) -> None:
        self.evidence, self.remote = evidence, remote
        described = remote.job or {}
        trial = described.get("FailedTrainingJob") or {}  # a tuning job's first failed training job
        self.describe = {**trial, **described}
        self.parameters = remote.parameters or {}
        exception = evidence.exception
        message = str(exception.message or "")
        self.refusal = remote.refusal or parse_refusal(message)
        said = SDK_REASON.search(message) if re.search(r"Reason: ", message) else None
        reasons = (trial.get("FailureReason"), described.get("FailureReason"), described.get("ExitMessage"))
        self.reason = "\n".join(str(reason) for reason in reasons if reason)
        self.reason = self.reason or (said.group("reason").strip() if said else "")
        stated = SDK_STATUS.search(message)
        self.status = next((described[k] for k in STATUS_KEYS if described.get(k)), None)  # its own, not a trial's
        self.status = self.status or (stated.group("status") if stated and said else None)
        self.secondary = str(self.describe.get("SecondaryStatus") or "")
        transitions = self.describe.get("SecondaryStatusTransitions") or []
        self.hosts = sorted(remote.logs, key=_first_failing)
        self.lines: dict[str, list[str]] = {
            "refusal": [f"{self.refusal['code']}: {self.refusal['message']}"] if self.refusal else [],
            "exception": [f"{exception.type or ''}: {message}".strip(": "), *(exception.traceback or "").splitlines()],
            "reason": self.reason.splitlines(),
            "status": [
                *(" - ".join(filter(None, (t.get("Status"), t.get("StatusMessage")))) for t in transitions),
                self.secondary,
            ],
        }
        for host in self.hosts:
            self.lines[f"log:{host.stream}"] = [container_logs.unprefixed(line) for line in host.lines]

    def find(self, sources: tuple[str, ...], pattern: str, last: bool = False) -> Hit | None:
        """The first line matching `pattern` in the named sources, in order (each source's last with `last`);
        `logs` stands for every host's stream, the first failing host's first."""
        regex = re.compile(pattern, re.I)
        for source in sources:
            names = [f"log:{host.stream}" for host in self.hosts] if source == "logs" else [source]
            for name in names:
                lines = self.lines.get(name, [])
                for at in reversed(range(len(lines))) if last else range(len(lines)):
                    if lines[at] and regex.search(lines[at]):
                        return Hit(name, _with_detail(lines, at))
        return None

    @property
    def what(self) -> str:
        return f"{KINDS.get(self.remote.resource, self.remote.resource)} {self.remote.name or '(not created)'}"

    def where(self, hit: Hit) -> str:
        """The evidence line with the place it was read: the FailureReason, or a host's stream."""
        if not hit.source.startswith("log:"):
            return hit.line
        stream = hit.source.partition(":")[2]
        host = next((h.host for h in self.hosts if h.stream == stream), None) or stream
        return f"{hit.line} (on {host}, log stream {stream})" if host != stream else f"{hit.line} (log stream {stream})"

    def config(self, *path: str):
        """A value of the Describe's configuration, by its keys (None where the Describe has none)."""
        value = self.describe
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        return value

    @property
    def resources(self) -> dict:
        found = self.config("ResourceConfig") or self.config("ProcessingResources", "ClusterConfig")
        variants = self.config("EndpointConfig", "ProductionVariants") or [{}]
        return found or self.config("TransformResources") or variants[0]

    @property
    def instance_count(self) -> int:
        counted = self.resources.get("InstanceCount") or self.parameters.get("instance_count") or 1
        return max(int(counted), len({h.host for h in self.hosts if h.host}))

    @property
    def spot(self) -> bool:
        return bool(self.config("EnableManagedSpotTraining") or self.parameters.get("spot"))

    @property
    def checkpoint(self) -> str | None:
        return self.config("CheckpointConfig", "S3Uri") or self.parameters.get("checkpoint_s3_uri")

    @property
    def in_vpc(self) -> list[str]:
        """The job's subnets (empty: not in a VPC); network isolation counts as one with no route."""
        vpc = self.config("VpcConfig") or self.config("NetworkConfig", "VpcConfig") or {}
        subnets = list(vpc.get("Subnets") or self.parameters.get("subnets") or [])
        isolated = self.config("EnableNetworkIsolation") or self.config("NetworkConfig", "EnableNetworkIsolation")
        return subnets or (["network isolation"] if isolated else [])

    def silence(self) -> tuple[float, str] | None:
        """How long before the job's end (TrainingEndTime, else its last change) no host wrote a line, and the
        last line written."""
        ended = self.config("TrainingEndTime") or self.config("LastModifiedTime")
        timed = [host for host in self.hosts if host.last_time is not None]
        if not isinstance(ended, (int, float)) or not timed:
            return None
        latest = max(timed, key=lambda host: host.last_time)
        return max(0.0, ended - latest.last_time), _last_line(latest.lines)

    def seconds(self, limit: str) -> str:
        """'training 3600 s of MaxRuntimeInSeconds 3600', as far as the Describe says."""
        ran = self.config("TrainingTimeInSeconds")
        most = self.config("StoppingCondition", limit)
        parts = [f"training {ran} s" if ran is not None else "", f"{limit} {most}" if most is not None else ""]
        return " of ".join(filter(None, parts))


def _with_detail(lines: list[str], at: int) -> str:
    """The line, and the next one when it only names the error (`InstallModuleError:` then its command)."""
    line = lines[at].strip()
    return f"{line} {lines[at + 1].strip()}" if line.endswith(":") and at + 1 < len(lines) else line


def _last_line(lines: list[str]) -> str:
    return next((line for line in reversed(lines) if line.strip()), "")


def _first_failing(host: HostLog) -> tuple:
    """Hosts in the order they failed: the earliest first error, then those with an error, then the rest."""
    return (host.first_error_time is None, host.first_error_time or 0.0, host.first_error is None, host.stream)


def classify_remote(evidence: Evidence) -> Diagnosis:
    """One category for a managed call, a summary quoting its evidence line, and its hint. Pure."""
    job = Job(evidence, evidence.remote)
    finding = next(filter(None, (rule(job) for rule in RULES)), None) or unknown(job)
    return diagnosis(finding, evidence)


# ---------------------------------------------------------------------------------------------- refused at Create


def _refused(job: Job) -> Finding | None:
    """A Create the service refused: nothing ran, the refusal alone speaks."""
    refusal = job.refusal
    if not refusal or re.match(r"(Describe|List|Get)", refusal.get("operation") or ""):
        return None
    operation = refusal.get("operation") or "the Create call"
    created = (
        "no job exists"
        if operation.startswith("Create") or operation == "the Create call"
        else "before or beside the job"
    )
    said = f"{operation} was refused ({created}): {job.lines['refusal'][0]}"
    code = refusal.get("code") or ""
    if code == "ResourceLimitExceeded":
        return Finding("quota_exceeded", said, _quota_hint(job))
    for category, pattern in (
        ("spot_config", REMOTE_PATTERNS["spot_config"]),
        ("instance_type_not_offered", REMOTE_PATTERNS["not_offered"]),
        ("job_image", REMOTE_PATTERNS["image"]),
        ("input_data", REMOTE_PATTERNS["input"]),
        ("throttled", CLIENT_SIDE["throttling"]),
    ):
        if job.find(("refusal",), pattern):
            return Finding(category, said)
    if job.find(("refusal",), CLIENT_SIDE["credentials"]):
        return Finding("client_side", said, f"no job was created: {RENEW['credentials']}, then run the call again")
    if code.startswith("AccessDenied") or job.find(("refusal",), REMOTE_PATTERNS["access"]):
        return Finding("job_access_denied", said, CALLER_DENIED)
    return Finding("remote_unknown", said, "SageMaker refused the request: change what the message names, then run "
                   "the call again")  # fmt: skip


def _quota_hint(job: Job) -> str:
    """The quota's exact name and value (from the refusal, or Service Quotas), and who uses it."""
    message = (job.refusal or {}).get("message", "")
    named = re.search(r"limit '([^']+)' is (\d+) Instances?, with current utilization of (\d+)", message)
    quota = job.remote.quota or {}
    name = quota.get("name") or (named.group(1) if named else "the quota named")
    code = quota.get("code") or "<code>"
    said = f"the quota is '{name}' (quota code {code}, applied value {quota.get('value', named and named.group(2))})"
    used = int(named.group(3)) if named else 0
    if used:
        parallel = job.parameters.get("max_parallel_jobs")
        said += f"; {used} instances of it are in use by running jobs: wait for them, stop them, or lower a " + (
            f"tuner's max_parallel_jobs (now {parallel})" if parallel else "tuner's max_parallel_jobs"
        )
    return f"{said}; " + catalog.hint("quota_exceeded", job.evidence).replace("<code>", code)


# ---------------------------------------------------------------------------------------------- not the job's failure


def _capacity(job: Job) -> Finding | None:
    """No capacity: a failed job's CapacityError, or a job still waiting for instances when the SDK stopped."""
    if job.status in ("Completed", "Stopped"):
        return None
    # a failed job's transitions may tell of capacity it waited for, then got: only its reason says why it failed
    sources = ("reason",) if job.status == "Failed" else ("reason", "status")
    hit = job.find(sources, REMOTE_PATTERNS["capacity"])
    if hit is None:
        return None
    waited = "" if job.status == "Failed" else f" (still {job.status or 'waiting'} when the SDK stopped waiting)"
    instance = job.resources.get("InstanceType") or job.parameters.get("instance_type") or "the instance type"
    return Finding("insufficient_capacity", f"{job.what}: no capacity of {instance}: {hit.line}{waited}")


def _debugger_stall(job: Job) -> Finding | None:
    """A job that stopped or outlasted the SDK's wait with SageMaker Debugger's hook on, and stalled: its hook's
    lines are the last, or every host went silent long before the job ended (SageMaker Debugger is on in most
    v2 jobs: the hook alone, with training going on to the end, is no stall)."""
    waited = job.status in RUNNING and job.evidence.exception.type
    if not (job.status == "Stopped" or waited):
        return None
    hit = job.find(LOGS, REMOTE_PATTERNS["debugger"], last=True)
    if hit is None:
        return None
    silence = job.silence()
    if re.search(REMOTE_PATTERNS["debugger"], _last_line(job.lines[hit.source]), re.I):
        stalled = ""
    elif silence is not None and silence[0] >= STALL_SILENCE_S:
        stalled = f"; no host wrote a line for the last {silence[0] / 60:.0f} min, the last: {silence[1]!r}"
    else:
        return None
    state = f"{job.status} {job.secondary}".strip()
    return Finding("debugger_hook_stall", f"{job.what} stalled ({state}) with the smdebug hook on: "
                           f"{job.where(hit)}{stalled}")  # fmt: skip


def _client_side(job: Job) -> Finding | None:
    """The client's error while the job ran (or its state is unknown): not the job's failure."""
    if job.status not in RUNNING and job.status is not None:
        return None
    for what, pattern in CLIENT_SIDE.items():
        hit = job.find(("exception",), pattern)
        if hit:
            state = f"still {job.status}" if job.status else "in a state the recorder could not read"
            summary = f"the SDK's call failed on the client side ({hit.line}); {job.what} is {state}: it may still run"
            hint = f"{RENEW[what]}. " + catalog.hint("client_side", job.evidence)
            return Finding("client_side", summary, hint.replace("<name>", job.remote.name or "<name>"))
    return None


def _stopped(job: Job) -> Finding | None:
    """Stopped at the maximum runtime (fit() returned), or a spot job interrupted or out of its maximum wait."""
    seen = job.find(("status", "reason"), r"MaxRuntimeExceeded|maximum runtime")
    if seen and job.status in ("Stopped", "Failed", "Stopping"):
        ran = job.seconds("MaxRuntimeInSeconds")
        return Finding("max_runtime", f"{job.what} {job.status} at its maximum runtime: {seen.line}"
                       + (f" ({ran})" if ran else ""))  # fmt: skip
    seen = job.find(("status", "reason"), r"Interrupted|MaxWaitTimeExceeded")
    if not (job.spot and seen) or (job.status == "Completed" and job.checkpoint):
        return None
    if job.status == "Failed" and "MaxWaitTimeExceeded" not in seen.line:
        return None  # interrupted once, then failed of its own cause
    kept = f"checkpoints in {job.checkpoint}" if job.checkpoint else "no CheckpointConfig: it restarts from scratch"
    waited = job.seconds("MaxWaitTimeInSeconds") if "MaxWait" in seen.line else ""
    return Finding("spot_interrupted", f"managed spot {job.what} ({job.status}): {seen.line}; {kept}"
                   + (f" ({waited})" if waited else ""))  # fmt: skip


def _not_failed(job: Job) -> Finding | None:
    """What `smdiag job` says of a job that did not fail."""
    if job.status in (None, "Failed"):
        return None
    state = " - ".join(filter(None, (job.status, job.secondary if job.secondary != job.status else "")))
    ran = job.config("TrainingTimeInSeconds")
    said = f"{job.what} is {state}" + (f" (training {ran} s)" if ran is not None else "")
    if job.status in ("Completed", "InService"):
        # the user's call raised, yet the job or endpoint its name reads is fine: that is not what failed (a
        # deploy that raised before its Create reads an earlier endpoint of the same name)
        return None if job.evidence.exception.type else Finding("job_completed", said)
    return Finding("job_in_progress" if job.status in RUNNING else "job_stopped", said)


RULES = (_refused, _capacity, _debugger_stall, _client_side, _stopped, _not_failed, *FAILED_RULES)
"""In order: the first cause that explains the failure wins."""
