"""Naming a local-mode failure: one category, a summary quoting the evidence line; the catalog adds the hint
and the remedy. Pure: importing it loads only agent.failures' data types and catalog, and the text helpers
of agent.container_logs (standard library only).

Evidence is kept by source (agent.failures.types.Evidence) and each rule reads only the sources its cause
can speak through: a registry's refusal is in the engine's pull errors and compose's own lines, never in a
training script's output; "Permission denied" printed by a script is the script's; the engine's reason for
a container it could not start is in `State.Error` and compose's own lines. Rules run in order, the first
match wins: causes that make the later evidence meaningless (no engine, no Compose, no image) come first.

The sources, as the rules name them:
- `exception`: the SDK's exception in the user's process (type, message, errno, traceback);
- `engine`: the engine's facts — why the recorder could not reach it (only when the call went to the
  engine: an exception raised before is the SDK's own, the engine's state stays beside it in the report),
  and each container's `State.Error`;
- `pulls`: the engine's pull errors;
- `compose`: compose's own lines (its progress and errors, without the containers' output);
- `container`: each container's own output (its log), with its exit code, OOMKilled and limits;
- the disks (how full the data-root, the SDK's container_root and the EBS volume are) and the platform.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from agent import container_logs
from agent.failures import catalog
from agent.failures.patterns import ENOSPC, REQUIREMENTS_FAILED, any_of
from agent.failures.types import Container, Diagnosis, Evidence

NETWORK_REFUSED = re.compile(
    r'network "?sagemaker-local"? (was found but has incorrect label|needs to be recreated).*', re.I
)
"""Compose v2+ refusing a network it did not make; v1 refusing one whose driver or options differ."""
SUMMARY_CHARS = 500
SERVING_CALLS = {"deploy", "transform", "serve"}


@dataclass(frozen=True)
class Hit:
    source: str
    """`exception`, `engine`, `pulls`, `compose` or `container:<name>`."""
    line: str


@dataclass(frozen=True)
class Finding:
    """What a rule found: the category and the summary; a hint only where the rule knows better than the
    catalog (a traceback that ends inside a library)."""

    category: str
    summary: str
    hint: str | None = None


class Lines:
    """The evidence as lines by source, searched only in the sources a rule names."""

    def __init__(self, evidence: Evidence) -> None:
        self.evidence = evidence
        self.exception = evidence.exception
        self.containers = evidence.containers
        message = str(self.exception.message or "").splitlines() or [""]
        self.lines: dict[str, list[str]] = {
            "exception": [f"{self.exception.type or ''}: {message[0]}".strip(": "), *message[1:]],
            "pulls": [line for pull in evidence.pull_errors for line in (pull.error or "").splitlines()],
            "compose": list(evidence.compose_output),
        }
        self.lines["engine"] = [
            (evidence.docker.error or "") if self.reached_engine() else "",
            *((c.error or "") for c in self.containers),
        ]
        for container in self.containers:
            self.lines[f"container:{container.name}"] = [container_logs.unprefixed(line) for line in container.logs]

    def find(self, sources: Iterable[str], pattern: str) -> Hit | None:
        """The first line matching `pattern` (a regex, case-insensitive) in the named sources, in order;
        `container` stands for every container's own output."""
        regex = re.compile(pattern, re.I)
        for source in sources:
            names = [s for s in self.lines if s.startswith("container:")] if source == "container" else [source]
            for name in names:
                for line in self.lines.get(name, []):
                    if line and regex.search(line):
                        return Hit(name, line.strip())
        return None

    def reached_engine(self) -> bool:
        """Whether the call went to the engine before it failed: compose ran, a pull or a container was
        seen, or the SDK's exception came from the engine's client or the docker CLI."""
        e = self.evidence
        if e.pull_errors or e.containers or e.compose_output or e.compose_file or e.serving_failed:
            return True
        said = "\n".join([self.exception.message or "", self.exception.traceback or ""])
        return re.search(ENGINE_SPOKE, said, re.I) is not None

    @property
    def studio(self) -> bool:
        return self.evidence.platform == "studio"

    def disk_full(self, role: str) -> bool:
        disk = next((d for d in self.evidence.disks if d.role == role), None)
        return bool(disk and disk.percent is not None and disk.percent >= catalog.FULL_PCT)

    def container_named(self, source: str) -> Container | None:
        name = source.partition(":")[2]
        return next((c for c in self.containers if c.name == name), None)

    @property
    def deploying(self) -> bool:
        """A call that starts a model server: v2's deploy and batch transform, v3's ModelBuilder."""
        return self.evidence.call.kind in SERVING_CALLS or self.evidence.serving_failed


def classify(evidence: Evidence) -> Diagnosis:
    """One category, a one-line summary quoting the evidence, its hint and its remedy (the catalog's). Pure.

    A managed call's rules (agent.failures.classify_remote) are imported here, for a managed call only: they
    build on this module's Finding and diagnosis (an import at the top would be a cycle), and the recorder of
    a local failure need not load them."""
    if evidence.remote is not None:
        from agent.failures import classify_remote

        return classify_remote.classify_remote(evidence)
    found = Lines(evidence)
    finding = next(filter(None, (rule(found) for rule in RULES)), None)
    if finding is None:
        finding = Finding("unknown", found.lines["exception"][0] or "the call failed")
    return diagnosis(finding, evidence)


def diagnosis(finding: Finding, evidence: Evidence) -> Diagnosis:
    """The finding as a diagnosis: its summary bounded, the catalog's hint unless the rule knows better."""
    return Diagnosis(
        finding.category,
        finding.summary[:SUMMARY_CHARS],
        finding.hint or catalog.hint(finding.category, evidence),
        catalog.remedy(finding.category, evidence),
    )


NOT_INSTALLED = r"compose['`]? is not installed"
PATTERNS = {
    "docker_missing": any_of(r"No such file or directory: '(docker|docker-compose)'", r"docker: command not found"),
    "socket_permission": any_of(
        r"permission denied while trying to connect to the docker daemon", r"docker\.sock.*permission denied",
        r"Error while fetching server API version.*PermissionError",
    ),
    "daemon_down": any_of(
        r"cannot connect to the docker daemon",
        r"Error while fetching server API version.*(FileNotFoundError|ConnectionRefusedError|Connection refused)",
    ),
    "compose_too_old": any_of(r"Unsupported config option for services", r"Additional property deploy"),
    "pull_auth": any_of(
        r"no basic auth credentials", r"authorization token has expired", r"unauthorized", r"pull access denied",
        r"(?<!mounts )denied:", r"ecr:BatchGetImage",
    ),
    "image_not_found": any_of(
        r"manifest unknown", r"manifest for .* not found", r"not found: manifest", r"repository does not exist",
        r"no such image", r"could not find image",
    ),
    "registry_unreachable": any_of(
        r"connection refused", r"no such host", r"i/o timeout", r"dial tcp", r"tls handshake",
        r"network is unreachable", r"server misbehaving",
    ),
    "port_in_use": any_of(r"port is already allocated", r"address already in use"),
    "container_not_started": any_of(
        r"Cannot (start|create) (service|container)", r"Error response from daemon", r"Mounts denied",
        r"invalid volume specification", r"could not select device driver",
    ),
    "shm_too_small": any_of(r"insufficient shared memory", r"unexpected bus error", r"bus error.*shm"),
    "training_image_served": any_of(
        r"No module named '[\w.]*serving'", r"No such file or directory: '?nginx", r'"?serve"?: executable file not',
        r"serve: not found", r'exec: "serve"',
    ),
    "model_fn_failed": any_of(
        r"Worker died", r"Backend worker process died", r"Load model failed", r"Failed to load model",
        r"in model_fn", r"model_fn\(",
    ),
    "container_credentials": any_of(
        r"NoCredentialsError", r"Unable to locate credentials", r"\(403\) when calling", r"\(AccessDenied\)",
        r"InvalidAccessKeyId", r"ExpiredToken", r"security token included in the request is invalid",
    ),
    "sdk_container_mismatch": any_of(
        r"/opt/ml/input/config/\S*.*(No such file|not found|does not exist)",
        r"(No such file|FileNotFoundError).*/opt/ml/input/config/",
    ),
    "requirements_failed": REQUIREMENTS_FAILED,
    "not_supported_locally": any_of(
        r"not (currently )?supported (in|for|with) local mode", r"local mode (is )?not supported",
        r"is not supported locally",
        r"could not find local (training job|endpoint|model|transform job|processing job)",
    ),
    "aws_credentials": any_of(
        r"NoCredentialsError", r"Unable to locate credentials", r"PartialCredentialsError", r"ExpiredToken",
        r"security token included in the request is (invalid|expired)", r"InvalidClientTokenId",
    ),
    "sdk_config": any_of(
        r"is not a role", r"get_execution_role", r"local_code", r"region", r"NoRegionError", r"must specify",
        r"is required", r"invalid", r"only supported", r"not supported",
    ),
}  # fmt: skip
"""The lines that name each cause, as the SDK, the engine, compose and the containers print them (the
real texts are in tests/unit/test_classify.py, with the public report each comes from)."""
ENGINE_SPOKE = any_of(
    r"Failed to run: \[", r"Failed to run docker,", r"\['docker(?:-compose)?',", r"Docker is not available",
    r"DockerException",
    r"/site-packages/docker/", PATTERNS["daemon_down"], PATTERNS["socket_permission"],
)  # fmt: skip
"""An exception that came from the engine: compose's or the docker CLI's failure as the SDK raises it, v3's
own check of the engine, docker-py's errors and frames."""
HOST = ("exception", "engine", "compose")
REGISTRY = ("pulls", "compose")
STARTING = ("engine", "compose", "exception")


def _studio(e: Lines) -> Finding | None:
    """Studio's proxy refusing what a notebook's engine allows (a network, privileged, BuildKit, an image)."""
    said = "\n".join(line for source in ("engine", "compose", "pulls", "exception") for line in e.lines[source])
    refused = catalog.studio_refusal(said)
    return refused and Finding(*refused)


def _no_docker(e: Lines) -> Finding | None:
    hit = e.find(["exception"], PATTERNS["docker_missing"])
    probe = e.evidence.compose
    if hit is None and probe and re.search(NOT_INSTALLED, e.lines["exception"][0], re.I):
        if not probe.docker_cli and not probe.standalone:
            hit = Hit("exception", f"{e.lines['exception'][0]} (and no docker CLI on PATH)")
    return hit and Finding("docker_missing", f"no Docker here: {hit.line}")


def _engine(e: Lines) -> Finding | None:
    hit = e.find(["engine"], r"cannot reach the docker engine.*permission denied") or e.find(
        HOST, PATTERNS["socket_permission"]
    )
    if hit:
        return Finding("socket_permission", f"no permission on the Docker engine's socket: {hit.line}")
    hit = e.find(["engine"], r"cannot reach the docker engine") or e.find(HOST, PATTERNS["daemon_down"])
    return hit and Finding("daemon_down", f"the Docker engine is down: {hit.line}")


def _compose(e: Lines) -> Finding | None:
    if re.search(NOT_INSTALLED, e.lines["exception"][0], re.I):
        seen = e.evidence.compose and e.evidence.compose.plugin_version
        if seen:
            return Finding(
                "compose_unrecognised",
                f'SageMaker SDK v2 refuses the Compose plugin: `docker compose version` says {seen!r}, without "v2"',
            )
        return Finding("compose_missing", f"no Docker Compose that SDK v2 accepts: {e.lines['exception'][0]}")
    hit = e.find(["compose", "exception"], PATTERNS["compose_too_old"])
    if hit:
        return Finding("compose_too_old", f"Compose rejected the SDK's compose file: {hit.line}")
    hit = e.find(["compose", "exception"], NETWORK_REFUSED.pattern)
    return hit and Finding("network_conflict", f"Compose refused the sagemaker-local network: {hit.line}")


def _registry(e: Lines) -> Finding | None:
    """The registry speaks through the engine's pull errors and compose's own lines (and the SDK v3's own
    image check); never through a container's output."""
    hit = e.find(REGISTRY, ENOSPC)
    if hit:
        return Finding("disk_full", f"no space left on device while pulling: {hit.line}")
    hit = e.find(REGISTRY, PATTERNS["pull_auth"])
    if hit:
        return Finding("pull_auth", f"the registry refused the pull: {hit.line}")
    hit = e.find([*REGISTRY, "exception"], PATTERNS["image_not_found"])
    if hit:
        return Finding("image_not_found", f"the image was not found: {hit.line}")
    hit = e.find(REGISTRY, PATTERNS["registry_unreachable"])
    return hit and Finding("registry_unreachable", f"the registry is unreachable: {hit.line}")


def _not_started(e: Lines) -> Finding | None:
    """The engine's own reason for a container it could not create or start."""
    hit = e.find(STARTING, PATTERNS["port_in_use"])
    if hit:
        return Finding("port_in_use", _port_taken(e, hit.line))
    hit = e.find([*STARTING, "container"], r"exec format error")
    if hit:
        return Finding("wrong_architecture", f"the image is for another CPU architecture: {hit.line}")
    if e.deploying:
        served = _training_image_served(e)
        if served:
            return served
    hit = e.find(["engine"], r".")
    if hit and re.search(ENOSPC, hit.line, re.I):
        return None  # the engine ran out of room: a disk's story, told by _disk
    hit = hit or e.find(["compose"], PATTERNS["container_not_started"])
    return hit and Finding("container_not_started", f"the engine could not start the container: {hit.line}")


def _port_taken(e: Lines, said: str) -> str:
    """What the engine said; for a deploy the SDK called a success, whose endpoint answered instead, too."""
    if e.evidence.answered_by is None:
        return f"the serving port is taken: {said}"
    holders = ", ".join(e.evidence.answered_by) or "a process outside the engine"
    own = next((c.name for c in e.containers if c.error and c.error.strip() == said), None)
    which = f"this call's container {own}" if own else "this call's container"
    return f"deploy() returned, but its /ping was answered by {holders}: {which} could not start: {said}"


def _oom(e: Lines) -> Finding | None:
    killed = next((c for c in e.containers if c.oom_killed or c.exit_code == 137), None)
    if killed is None:
        return None
    limit = killed.limits.memory
    within = f", memory limit {limit // (1024 * 1024)} MiB" if limit else ""
    how = "OOMKilled, " if killed.oom_killed else ""
    return Finding("oom_killed", f"container {killed.name} was killed for lack of memory ({how}exit 137{within})")


def _disk(e: Lines) -> Finding | None:
    """Which disk filled decides the fix: /dev/shm, the SDK's staging dir, the data-root, or the container's."""
    hit = e.find(["container"], r"/dev/shm") if e.find(["container"], ENOSPC) else None
    hit = hit or e.find(["container"], PATTERNS["shm_too_small"])
    if hit:
        return Finding("shm_too_small", f"/dev/shm is too small in the container: {hit.line}{_shm(e, hit)}")
    host = e.find(["exception"], ENOSPC)
    if host is None and e.exception.errno == 28:
        host = Hit("exception", e.lines["exception"][0])
    if host:
        return Finding("container_root_full", f"no space left where the SDK stages files: {host.line}")
    hit = e.find(["engine", "container"], ENOSPC)
    if hit is None:
        return None
    if e.disk_full("container_root"):
        return Finding("container_root_full", f"the SDK's container_root filled up: {hit.line}")
    if e.disk_full("docker_root") or (e.studio and hit.source == "engine"):  # Studio's data-root: not seen
        return Finding("disk_full", f"Docker's data-root filled up: {hit.line}")
    return Finding("container_disk_full", f"a disk inside the container is full: {hit.line}")


def _shm(e: Lines, hit: Hit) -> str:
    container = e.container_named(hit.source)
    size = container.limits.shm_size if container else None
    return f" (shm_size {size // (1024 * 1024)} MiB)" if size else ""


def _training_image_served(e: Lines) -> Finding | None:
    hit = e.find(["engine", "container"], PATTERNS["training_image_served"])
    return hit and Finding("training_image_served", f"a training image was used for serving: {hit.line}")


def _serving(e: Lines) -> Finding | None:
    if not e.deploying:
        return None
    served = _training_image_served(e)
    if served:
        return served
    hit = e.find(["container"], PATTERNS["model_fn_failed"])
    if hit:
        detail = _error_of(e.container_named(hit.source)) or hit.line
        return Finding("model_fn_failed", f"the model server could not load the model: {detail}")
    serving = [c for c in e.containers if c.status == "running" and c.exit_code is None]
    crashed = next((c for c in e.containers if c.exit_code is not None), None)
    gave_up = e.find(["exception"], r"Giving up, endpoint didn't launch|endpoint")
    if serving and crashed is None and gave_up:
        still = f"serving container {serving[0].name} was still starting when the SDK gave up"
        return Finding("serving_slow", f"{still}: {gave_up.line}")
    if crashed is None and not e.evidence.serving_failed:
        return None
    name = crashed.name if crashed else "the serving container"
    detail = _error_of(crashed) if crashed else None
    said = f"serving container {name} exited before answering /ping" + (f": {detail}" if detail else "")
    return Finding("serving_crashed", said)


def _container_failed(e: Lines) -> Finding | None:
    """A container ran and failed: its own output says why (these rules read nothing else)."""
    for category, what in (
        ("container_credentials", "the container's AWS call was refused"),
        ("sdk_container_mismatch", "the container expects a file local mode did not write"),
        ("requirements_failed", "installing the script's requirements failed"),
    ):
        hit = e.find(["container"], PATTERNS[category])
        if hit:
            return Finding(category, f"{what}: {hit.line}")
    failed = next((c for c in e.containers if c.exit_code not in (None, 0)), None)
    return failed and _script_error(failed)


def _script_error(failed: Container) -> Finding:
    """Blames the script only for a traceback that ends in the script; one ending inside a library or the
    container's toolkit says so, with the script's own line that called it."""
    logs = [container_logs.unprefixed(line) for line in failed.logs]
    found = container_logs.script_traceback(logs)
    if found is None:
        last = next((line.strip() for line in reversed(logs) if line.strip()), "no output")
        said = f"container {failed.name} failed: exit code {failed.exit_code}, last output: {last}"
        return Finding("script_error", said)
    error, frames = found
    if not frames or container_logs.is_user_code(frames[-1][0]):
        where = f" ({frames[-1][0]}, line {frames[-1][1]})" if frames else ""
        return Finding("script_error", f"container {failed.name} failed: {error}{where}")
    library = frames[-1]
    mine = next((f for f in reversed(frames) if container_logs.is_user_code(f[0])), None)
    called = f", called from {mine[0]}, line {mine[1]}" if mine else ""
    return Finding(
        "script_error",
        f"container {failed.name} failed: {error} (raised inside {library[0]}, line {library[1]}{called})",
        "the error was raised inside a library or the container's toolkit, not on a line of your script: read "
        "the error quoted (the inputs, versions or settings it names) and the full log in the report",
    )


def _host_side(e: Lines) -> Finding | None:
    """The SDK's own exception, every container fine (or none run)."""
    kind = str(e.exception.type or "")
    denied = e.find(["exception"], r"\[Errno 13\] Permission denied")  # shutil.Error lists them in its message
    if kind == "PermissionError" or e.exception.errno == 13 or denied:
        frame = _last_frame(str(e.exception.traceback or ""))
        return Finding("host_permission", e.lines["exception"][0] + (f" (in {frame})" if frame else ""))
    hit = e.find(["exception"], PATTERNS["not_supported_locally"])
    if hit:
        return Finding("not_supported_locally", f"not supported in local mode: {hit.line}")
    hit = e.find(["exception"], PATTERNS["aws_credentials"])
    if hit:
        ecr_login = "_ecr_login_if_needed" in str(e.exception.traceback or "")
        images = ", ".join(e.evidence.call.images) or "its image"
        what = f"to log in to ECR and pull {images}" if ecr_login else "for an AWS call"
        return Finding("aws_credentials", f"the SDK found no usable AWS credentials {what}: {hit.line}")
    hit = e.find(["exception"], PATTERNS["sdk_config"])
    if hit is None and kind in ("ValueError", "TypeError", "KeyError") and not e.containers:
        hit = Hit("exception", e.lines["exception"][0])
    return hit and Finding("sdk_config", f"the SDK refused its configuration: {hit.line}")


def _last_frame(traceback: str) -> str | None:
    frames = re.findall(r'File "([^"]+)", line (\d+)', traceback)
    return f"{frames[-1][0]}, line {frames[-1][1]}" if frames else None


def _error_of(container: Container | None) -> str | None:
    """The line that says why a container ended: its traceback's error, else its last error-looking line."""
    logs = [container_logs.unprefixed(line) for line in container.logs] if container else []
    summary = container_logs.traceback_summary(logs)
    if summary:
        return summary
    errors = (line.strip() for line in reversed(logs) if re.search(r"error|exception|fatal|failed", line, re.I))
    return next(errors, None) or next((line.strip() for line in reversed(logs) if line.strip()), None)


RULES = (
    _studio, _no_docker, _engine, _compose, _registry, _not_started, _oom, _disk, _serving, _container_failed,
    _host_side,
)  # fmt: skip
"""In order: the first cause that explains the failure wins."""
