"""The rules for a managed job that failed (agent.failures.classify_remote runs them after the refusals and the
states that are no failure of the job's), and the lines that name each cause. Pure.

In order: the service's own failure and the image make everything after them meaningless; the entry point,
the model's artifact, the disk, the VPC, permissions and the input data explain a script that never ran
properly; then the dependencies, the model server, memory, a crash, a distributed job's first failing host,
and last the script's own traceback, read from the logs (the FailureReason holds 1,024 characters at most).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from agent import container_logs
from agent.failures.classify import Finding
from agent.failures.patterns import ENOSPC, REQUIREMENTS_FAILED, any_of

if TYPE_CHECKING:
    from agent.failures.classify_remote import Job

REMOTE_PATTERNS = {
    "capacity": any_of(
        r"CapacityError", r"Unable to provision requested ML compute capacity", r"Insufficient capacity",
        r"waiting for capacity",
    ),
    "not_offered": any_of(
        r"instance type \S+ is not (supported|available|offered)", r"Invalid value for InstanceType",
        r"'ml\.[\w.]+' at '[\w.]*instanceType' failed to satisfy constraint", r"InstanceType .* not supported",
    ),
    "spot_config": any_of(r"Invalid MaxWaitTimeInSeconds", r"MaxWaitTimeInSeconds.*(EnableManagedSpotTraining|Spot)"),
    "image": any_of(
        r"Cannot find the requested image", r"TrainingImageConfig", r"image \S+ does not exist",
        r"not authorized to pull", r"failed to pull", r"repository \S+ not found", r"Requested image \S+ not found",
    ),
    "entry_point": any_of(
        r'exec: \\?"?[\w./-]+\\?"?: executable file not found', r"\[FATAL tini \(\d+\)\] exec \S+ failed",
        r"No module named '?[\w.-]*/", r'Command "[^"]*-m [\w.-]*/[\w./-]*"',
    ),
    "model_data": any_of(r"Failed to (extract|download) model data"),
    "disk": any_of(ENOSPC, r"Insufficient disk space", r"root folder '/' has only", r"additional volume is mounted"),
    "network": any_of(
        r"Unable to execute request to S3", r"ListObjectsV2 failed", r"Could not connect to the endpoint URL",
        r"ConnectTimeoutError", r"Connection to \S+ timed out", r"Network is unreachable",
        r"Temporary failure in name resolution", r"Failed to establish a new connection",
    ),
    "access": any_of(
        r"AccessDenied", r"Access Denied", r"\(403\)", r"403 Forbidden", r"status code:? 403",
        r"not authorized to perform", r"KMS\w*Exception", r"kms:\w+", r"explicit deny",
    ),
    "input": any_of(
        r"No S3 objects found under S3 URL", r"Data download failed", r"no file found in path /opt/ml/input/data",
        r"/opt/ml/input/data/\S*.*(No such file|not found|does not exist)",
        r"(No such file|FileNotFoundError).*/opt/ml/input/data/",
    ),
    "model_load": any_of(r"Load model failed", r"Worker died", r"Backend worker process died", r"Failed to load model"),
    "framework": r"module '(tensorflow|torch|mxnet|sklearn|xgboost|keras)' has no attribute",
    "memory": any_of(
        r"exit ?code:? ?137\b", r"CUDA out of memory", r"OutOfMemoryError", r"\bMemoryError\b",
        r"Out of memory: Killed process",
    ),
    "crash": any_of(r"exit ?code:? ?139\b", r"Segmentation fault", r"SIGSEGV", r"signal 11\b"),
    "collective": any_of(
        r"NCCL", r"MPI_ABORT", r"watchdog", r"SIGABRT", r"Signal 6\b", r"exitcode ?: ?-6\b", r"ProcessGroupNCCL",
        r"collective operation timeout",
    ),
    "service": any_of(
        r"InternalServerError", r"Internal (server )?error", r"hardware failure", r"Repairing training cluster",
    ),
    "debugger": any_of(r"smdebug", r"debughookconfig\.json"),
    "script": any_of(r"ExecuteUserScriptError", r"AlgorithmError", r"ErrorMessage", r"ExitCode", r"Exit Code"),
}  # fmt: skip
"""The lines that name each cause, as SageMaker, the toolkits and the SDKs write them (the real texts are in
tests/unit/test_classify_remote.py, with the public report each comes from)."""
SAID = ("reason", "logs")
SERVING = {"transform", "endpoint"}
TRUNCATED_AT = 1000
"""A FailureReason this long was cut (SageMaker keeps 1,024 characters)."""


def _simple(category: str, sources: tuple[str, ...], pattern: str, what: str, detail=lambda job: ""):
    """A rule that quotes the first line naming its cause, with the configuration it is measured against."""

    def rule(job: Job) -> Finding | None:
        hit = job.find(sources, pattern)
        return hit and Finding(category, f"{job.what} failed, {what}: {job.where(hit)}{detail(job)}")

    rule.__name__ = f"_{category}"
    return rule


def _service_error(job: Job) -> Finding | None:
    """SageMaker's own failure: said by the reason, or by a transition (a cluster repaired on the way) when no
    host's log holds a traceback through the script (then the script failed of its own cause)."""
    hit = job.find(("reason",), REMOTE_PATTERNS["service"])
    if hit is None and not any(_user_traceback(host.lines) for host in job.hosts):
        hit = job.find(("status",), REMOTE_PATTERNS["service"])
    return hit and Finding("service_error", f"{job.what} failed, on SageMaker's side: {job.where(hit)}")


def _user_traceback(lines: list[str]) -> bool:
    found = container_logs.script_traceback(lines)
    return found is not None and any(container_logs.is_user_code(path) for path, _ in found[1])


def _volume(job: Job) -> str:
    size = job.resources.get("VolumeSizeInGB") or job.parameters.get("volume_size_gb")
    return f" (VolumeSizeInGB {size})" if size else ""


def _keys(job: Job) -> str:
    keys = {job.resources.get("VolumeKmsKeyId"), job.config("OutputDataConfig", "KmsKeyId"),
            job.parameters.get("volume_kms_key"), job.parameters.get("output_kms_key")} - {None, ""}  # fmt: skip
    return f" (KMS keys set: {', '.join(sorted(keys))})" if keys else ""


def _instance(job: Job) -> str:
    instance = job.resources.get("InstanceType") or job.parameters.get("instance_type")
    return f" (instance type {instance})" if instance else ""


def _network(job: Job) -> Finding | None:
    """No route from the job's subnets: S3 unreachable, or pip timing out, in a VPC (or isolated)."""
    hit = job.find(SAID, REMOTE_PATTERNS["network"])
    if hit is None or not (job.in_vpc or re.search(r"Unable to execute request to S3", hit.line, re.I)):
        return None
    where = f" (VpcConfig subnets: {', '.join(job.in_vpc)})" if job.in_vpc else " (no VpcConfig)"
    return Finding("job_network", f"{job.what} failed, its network had no route: {job.where(hit)}{where}")


def _serving(job: Job) -> Finding | None:
    """A model server's own failures (transform jobs, endpoints): a framework it lacks, a model it cannot load."""
    if job.remote.resource not in SERVING:
        return None
    hit = job.find(SAID, REMOTE_PATTERNS["framework"])
    if hit:
        return Finding("model_framework_mismatch", f"{job.what} failed, the model server's framework lacks what "
                       f"the model uses: {job.where(hit)}")  # fmt: skip
    hit = job.find(SAID, REMOTE_PATTERNS["model_load"])
    if hit is None:
        return None
    cause = next(filter(None, (container_logs.traceback_summary(h.lines) for h in job.hosts)), None)
    return Finding("model_load_failed", f"{job.what} failed, the model server could not load the model: "
                   f"{job.where(hit)}" + (f"; the worker's error: {cause}" if cause else ""))  # fmt: skip


def _distributed(job: Job) -> Finding | None:
    """A host failed first, the others failed waiting for it: name that host and its stream. A script's own
    traceback on that host is the script's story (job_script_error names the host too)."""
    hit = job.find(("logs",), REMOTE_PATTERNS["collective"])
    if job.instance_count < 2 or hit is None:
        return None
    first = job.hosts[0] if job.hosts[0].first_error else next(h for h in job.hosts if hit.source == f"log:{h.stream}")
    traceback = container_logs.script_traceback(first.lines)
    if traceback and not re.search(REMOTE_PATTERNS["collective"], traceback[0], re.I):
        return None
    said = first.first_error or next((line for line in first.lines if line.strip()), "")
    also = "" if hit.source == f"log:{first.stream}" else f"; then elsewhere: {job.where(hit)}"
    return Finding("distributed_host_failed", f"{job.what} failed: {first.host or first.stream} failed first "
                   f"(log stream {first.stream}): {said.strip()}{also}")  # fmt: skip


def _script_error(job: Job) -> Finding | None:
    """The script's traceback from the logs, the first failing host's: the FailureReason is often empty or cut."""
    host, found = next(((h, t) for h in job.hosts if (t := container_logs.script_traceback(h.lines))), (None, None))
    if host is None or found is None:
        hit = job.find(("reason",), REMOTE_PATTERNS["script"])
        if hit is None:
            return None
        first = next((h for h in job.hosts if h.first_error), None)
        said = f"{first.first_error} (log stream {first.stream})" if first else hit.line
        unread = job.evidence.evidence_errors.get("logs")
        return Finding("job_script_error", f"{job.what} failed: {said}" + (f" (logs not read: {unread})" if unread
                       else ""))  # fmt: skip
    error, frames = found
    at = f" ({container_logs.where_raised(frames)})" if frames else ""
    place = f" on {host.host}" if host.host and job.instance_count > 1 else ""
    summary = f"{job.what} failed: {error}{at}{place} (log stream {host.stream})"
    return Finding("job_script_error", summary + _reason_note(job.reason))


def _reason_note(reason: str) -> str:
    """What the FailureReason said of it, when it said less than the logs."""
    if not reason.strip():
        return "; the FailureReason was empty"
    message = re.search(r'ErrorMessage "(.*)', reason, re.S)
    if len(reason) >= TRUNCATED_AT or (message and not message.group(1).rstrip().endswith('"')):
        return f"; the FailureReason was cut: {reason.splitlines()[0][:120]}"
    if message and not message.group(1).strip('"\n '):
        return f"; the FailureReason said only: {' '.join(reason.split())[:120]}"
    return ""


def unknown(job: Job) -> Finding:
    """Nothing matched: the FailureReason and the first error line of the logs, quoted."""
    if job.status in ("Completed", "InService"):  # the call raised of its own cause, not the job's
        raised = job.lines["exception"][0]
        return Finding("remote_unknown", f"{job.what} is {job.status}, yet the call raised: {raised}")
    first = next((h for h in job.hosts if h.first_error), None)
    parts = [f"FailureReason: {job.reason.strip()}" if job.reason.strip() else "",
            f"first error in the logs: {first.first_error} (log stream {first.stream})" if first else ""]  # fmt: skip
    told = "; ".join(filter(None, parts)) or job.lines["exception"][0] or "no FailureReason, no log"
    unread = "; ".join(f"{k} not read: {v}" for k, v in job.evidence.evidence_errors.items())
    said = f"{job.what} {job.status or 'failed'}: {told}"
    return Finding("remote_unknown", said + (f" ({unread})" if unread else ""))


FAILED_RULES = (
    _service_error,
    _simple("job_image", ("reason", "status"), REMOTE_PATTERNS["image"], "its image could not be used"),
    _simple("entry_point", SAID, REMOTE_PATTERNS["entry_point"], "the container could not start the program"),
    _simple("model_data", ("reason",), REMOTE_PATTERNS["model_data"], "its model's artifact is unusable"),
    _simple("job_disk_full", SAID, REMOTE_PATTERNS["disk"], "its storage volume is full", _volume),
    _network,
    _simple("job_access_denied", SAID, REMOTE_PATTERNS["access"], "an action was refused", _keys),
    _simple("input_data", SAID, REMOTE_PATTERNS["input"], "its input data was not found"),
    _simple("job_dependencies", SAID, REQUIREMENTS_FAILED, "installing its dependencies failed"),
    _serving,
    _simple("job_out_of_memory", SAID, REMOTE_PATTERNS["memory"], "out of memory", _instance),
    _simple("job_crashed", SAID, REMOTE_PATTERNS["crash"], "a process crashed", _instance),
    _distributed,
    _script_error,
)
"""In order: the first cause that explains the failure wins."""
