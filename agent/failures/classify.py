"""Naming a local-mode failure: one category, a summary quoting the evidence line, a hint. Pure.

Evidence is kept by source (see agent.evidence) and each rule reads only the sources its cause can speak
through: a registry's refusal is in the engine's pull errors and compose's own lines, never in a training
script's output; "Permission denied" printed by a script is the script's; the engine's reason for a
container it could not start is in `State.Error` and compose's own lines. Rules run in order, the first
match wins: causes that make the later evidence meaningless (no engine, no Compose, no image) come first.
Half of the module is data (a hint per category, the real lines that name each cause), kept beside the
rules that use it.

Sources, as `classify` reads them from the evidence dict:
- `exception`: the SDK's exception in the user's process (type, message, errno, traceback);
- `engine`: the engine's facts — why it cannot be reached, and each container's `State.Error`;
- `pulls`: the engine's pull errors;
- `compose`: compose's own lines (its progress and errors, without the containers' output);
- `container`: each container's own output (its log), with its exit code, OOMKilled and limits;
- `disks`: how full the data-root, the SDK's container_root and the EBS volume are;
- `platform`: where it ran (agent.platform's kind): on Studio the engine's disk is the host's, with a hint
  of its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from agent import container_logs
from agent.host import studio

NETWORK_REFUSED = re.compile(
    r'network "?sagemaker-local"? (was found but has incorrect label|needs to be recreated).*', re.I
)
"""Compose v2+ refusing a network it did not make; v1 refusing one whose driver or options differ."""
FULL_PCT = 95
"""A disk this full, seen after the failure, is the one that ran out of room."""
SUMMARY_CHARS = 500
SERVING_CALLS = {"deploy", "transform", "serve"}

HINTS = {
    "disk_full": (
        "the disk holding Docker's images and containers (its data-root) is full: run `smdiag fix` to free "
        "room (or `smdiag diskguard once`), and move Docker's data-root to the EBS volume with "
        "`sudo smdiag bootstrap`; then run again"
    ),
    "container_root_full": (
        "the disk where the SDK stages local-mode files (its container_root, /tmp by default, on the small "
        "root volume) is full: run `smdiag fix` (it sets `local.container_root` in ~/.sagemaker/config.yaml to "
        "the EBS volume), or set it yourself, and delete old /tmp/tmp* staging dirs; then run again"
    ),
    "container_disk_full": (
        "a disk inside the container ran out of room: write large files under /opt/ml/model, /opt/ml/output "
        "or the input channels (bind mounts on the host) rather than the container's own layer or /tmp, "
        "and check the free space of the host paths shown in the report"
    ),
    "shm_too_small": (
        "/dev/shm in the container is too small for the data-loader workers (Docker gives 64 MB): set "
        'sagemaker_session.config = {"local": {"container_config": {"shm_size": "2g"}}} (SDK >= 2.200), '
        "or use num_workers=0"
    ),
    "docker_missing": (
        "there is no Docker here (no docker CLI or engine): on SageMaker Studio enable Docker access for the "
        "domain (DockerSettings EnableDockerAccess) and install the docker CLI; elsewhere install Docker"
    ),
    "daemon_down": (
        "the Docker engine is not running: run `smdiag fix` to start it (or sudo systemctl start docker), "
        "then run again"
    ),
    "socket_permission": (
        "the engine runs, but this user may not use its socket: add the user to the docker group "
        "(sudo usermod -aG docker $USER, then restart the kernel/login), or point DOCKER_HOST at a socket "
        "this user may use"
    ),
    "compose_missing": (
        'SageMaker SDK v2 needs `docker compose` whose `version` output contains "v2", or a `docker-compose` '
        "binary on PATH: install docker-compose (e.g. pip install docker-compose, or the v2 plugin)"
    ),
    "compose_unrecognised": (
        'SageMaker SDK v2 accepts the `docker compose` plugin only when its version says "v2": run `smdiag fix` '
        "(it adds a `docker-compose` that runs `docker compose`), then run again"
    ),
    "compose_too_old": (
        "this docker-compose is too old for the file the SDK wrote (GPU `deploy:` needs Compose >= 1.28): "
        "install a newer Compose (the v2 plugin, or pip install -U docker-compose)"
    ),
    "network_conflict": (
        "a `sagemaker-local` network that Compose did not make (or made differently) is in the way: run "
        "`smdiag fix` (it removes the network when no container uses it), or `docker network rm sagemaker-local`"
    ),
    "image_not_found": (
        "the image or tag does not exist in its registry: check image_uri, the framework and py versions your "
        "SDK version maps to (sagemaker.image_uris.retrieve), and the region"
    ),
    "pull_auth": (
        "the registry refused the pull: for ECR run `aws ecr get-login-password --region <region> | docker login "
        "--username AWS --password-stdin <registry>` (tokens expire after 12 hours) and check that the role "
        "may ecr:BatchGetImage on that repository"
    ),
    "registry_unreachable": "the registry cannot be reached: check the network, the registry address and any proxy",
    "wrong_architecture": (
        "the image is built for another CPU architecture than this host (exec format error): use an image "
        "for this host's architecture (e.g. an arm64 image on Graviton/Apple silicon) or run on an x86_64 host"
    ),
    "container_not_started": (
        "the engine refused to start the container, for the reason quoted: for a GPU request install the NVIDIA "
        "container runtime or use instance_type='local' (CPU); for a refused mount share the path with Docker "
        "(Docker Desktop: Settings > Resources > File sharing) or set container_root to a path it accepts"
    ),
    "port_in_use": (
        "the serving port is taken (an earlier local endpoint still running?): run `smdiag fix` (it removes "
        "leftover local-mode containers), or delete it with predictor.delete_endpoint(), or stop the container "
        "holding the port (docker ps)"
    ),
    "oom_killed": (
        "the container ran out of memory (killed, exit 137): give it more (local.container_config mem_limit, "
        "or Docker Desktop's memory setting), reduce the batch size or data held in memory, or use a larger "
        "instance"
    ),
    "serving_crashed": (
        "the model server exited at start: read the error quoted and its log in the report (the serving "
        "image's entry point, the model archive's layout, the inference script's imports)"
    ),
    "model_fn_failed": (
        "the model server started but could not load the model (its worker died): fix model_fn / the "
        "inference script at the error quoted, and check the model archive holds what model_fn loads"
    ),
    "training_image_served": (
        "a training image was used for serving (it has no model server): deploy with the framework's inference "
        "image (e.g. PyTorchModel / image_uris.retrieve(..., image_scope='inference'))"
    ),
    "serving_slow": (
        "the model server was still starting when the SDK gave up (its /ping limit is a fixed 120 s): make the "
        "model load faster (smaller model, lazy imports) or set SAGEMAKER_MODEL_SERVER_TIMEOUT / fewer workers; "
        "the container was running, not crashed"
    ),
    "script_error": (
        "the entry script failed: fix it at the file and line shown (the full container log is in the report)"
    ),
    "requirements_failed": (
        "installing the script's requirements failed inside the container: check requirements.txt (versions "
        "that exist for the container's Python), remove an empty setup.py from source_dir, and remember local "
        "containers may have no route to PyPI"
    ),
    "container_credentials": (
        "the code inside the container had no (or insufficient) AWS credentials: local mode forwards the host's "
        "credentials only from environment variables or a profile, not from an instance role in every SDK "
        "version: export AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN, and check the bucket policy"
    ),
    "sdk_container_mismatch": (
        "the container expects a file or key under /opt/ml/input/config that this SDK's local mode does not "
        "write (it exists on SageMaker's managed jobs): upgrade the SDK, or use a container/toolkit version "
        "that matches it"
    ),
    "sdk_config": (
        "the SDK refused its configuration before any container ran: fix the setting the error names (local "
        'files need sagemaker_session.config = {"local": {"local_code": True}}; get_execution_role() works '
        "only on SageMaker compute: pass the role ARN yourself; keep one region)"
    ),
    "not_supported_locally": (
        "this is not supported in local mode (built-in algorithms, jobs and models that exist only on "
        "SageMaker): run it on SageMaker (instance_type='ml.*'), or use a framework container locally"
    ),
    "host_permission": (
        "the SDK (as this user) could not move or delete files the container (as root) wrote into the bind "
        "mounts: run the container as your user, make the script write files readable by others (chmod), or "
        "delete the leftover directory with sudo"
    ),
    **studio.REFUSAL_HINTS,
    "unknown": "read the report's exception and container logs (smdiag last-failure --logs 100)",
}


@dataclass(frozen=True)
class Diagnosis:
    category: str
    summary: str
    hint: str


@dataclass(frozen=True)
class Hit:
    source: str
    """`exception`, `engine`, `pulls`, `compose` or `container:<name>`."""
    line: str


class Evidence:
    """The evidence dict as lines by source, searched only in the sources a rule names."""

    def __init__(self, evidence: dict) -> None:
        self.raw = evidence
        exception = evidence.get("exception") or {}
        self.exception = exception
        self.call = evidence.get("call") or {}
        self.containers = evidence.get("containers") or []
        message = str(exception.get("message") or "").splitlines() or [""]
        self.lines: dict[str, list[str]] = {
            "exception": [f"{exception.get('type') or ''}: {message[0]}".strip(": "), *message[1:]],
            "engine": [evidence.get("engine_error") or "", *((c.get("error") or "") for c in self.containers)],
            "pulls": [line for p in evidence.get("pull_errors") or [] for line in (p.get("error") or "").splitlines()],
            "compose": list(evidence.get("compose_output") or []),
        }  # fmt: skip
        for container in self.containers:
            self.lines[f"container:{container.get('name')}"] = [
                container_logs.unprefixed(line) for line in container.get("logs") or []
            ]

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

    @property
    def studio(self) -> bool:
        return self.raw.get("platform") == "studio"

    def disk_full(self, role: str) -> bool:
        disk = next((d for d in self.raw.get("disks") or [] if d.get("role") == role), None)
        return bool(disk and disk.get("percent") is not None and disk["percent"] >= FULL_PCT)

    def container_named(self, source: str) -> dict:
        name = source.partition(":")[2]
        return next((c for c in self.containers if c.get("name") == name), {})

    @property
    def deploying(self) -> bool:
        """A call that starts a model server: v2's deploy and batch transform, v3's ModelBuilder."""
        return self.call.get("kind") in SERVING_CALLS or bool(self.raw.get("serving_failed"))


def classify(evidence: dict) -> Diagnosis:
    """One category, a one-line summary quoting the evidence and its hint. Pure.

    evidence keys: call, exception {type, message, errno, traceback}, engine_error, pull_errors [{image,
    error}], containers [{name, status, exit_code, oom_killed, error, limits, logs}], compose_output
    (compose's own lines), serving_failed, compose (what `agent.compose.probe_compose` found, when the SDK
    found no Compose), disks [{role, path, percent}].
    """
    found = Evidence(evidence)
    for rule in RULES:
        diagnosis = rule(found)
        if diagnosis is not None:
            if diagnosis.category == "disk_full" and found.studio:
                return Diagnosis(diagnosis.category, diagnosis.summary, studio.DISK_FULL_HINT)
            return diagnosis
    message = found.lines["exception"][0]
    return _diagnosis("unknown", message or "the call failed")


def _diagnosis(category: str, summary: str, hint: str | None = None) -> Diagnosis:
    return Diagnosis(category, summary[:SUMMARY_CHARS], hint or HINTS[category])


def _any(*alternatives: str) -> str:
    return "|".join(alternatives)


ENOSPC = _any(r"no space left on device", r"errno 28\b")
NOT_INSTALLED = r"compose['`]? is not installed"
PATTERNS = {
    "docker_missing": _any(r"No such file or directory: '(docker|docker-compose)'", r"docker: command not found"),
    "socket_permission": _any(
        r"permission denied while trying to connect to the docker daemon", r"docker\.sock.*permission denied",
        r"Error while fetching server API version.*PermissionError",
    ),
    "daemon_down": _any(
        r"cannot connect to the docker daemon",
        r"Error while fetching server API version.*(FileNotFoundError|ConnectionRefusedError|Connection refused)",
    ),
    "compose_too_old": _any(r"Unsupported config option for services", r"Additional property deploy"),
    "pull_auth": _any(
        r"no basic auth credentials", r"authorization token has expired", r"unauthorized", r"pull access denied",
        r"(?<!mounts )denied:", r"ecr:BatchGetImage",
    ),
    "image_not_found": _any(
        r"manifest unknown", r"manifest for .* not found", r"not found: manifest", r"repository does not exist",
        r"no such image", r"could not find image",
    ),
    "registry_unreachable": _any(
        r"connection refused", r"no such host", r"i/o timeout", r"dial tcp", r"tls handshake",
        r"network is unreachable", r"server misbehaving",
    ),
    "port_in_use": _any(r"port is already allocated", r"address already in use"),
    "container_not_started": _any(
        r"Cannot (start|create) (service|container)", r"Error response from daemon", r"Mounts denied",
        r"invalid volume specification", r"could not select device driver",
    ),
    "shm_too_small": _any(r"insufficient shared memory", r"unexpected bus error", r"bus error.*shm"),
    "training_image_served": _any(
        r"No module named '[\w.]*serving'", r"No such file or directory: '?nginx", r'"?serve"?: executable file not',
        r"serve: not found", r'exec: "serve"',
    ),
    "model_fn_failed": _any(
        r"Worker died", r"Backend worker process died", r"Load model failed", r"Failed to load model",
        r"in model_fn", r"model_fn\(",
    ),
    "container_credentials": _any(
        r"NoCredentialsError", r"Unable to locate credentials", r"\(403\) when calling", r"\(AccessDenied\)",
        r"InvalidAccessKeyId", r"ExpiredToken", r"security token included in the request is invalid",
    ),
    "sdk_container_mismatch": _any(
        r"/opt/ml/input/config/\S*.*(No such file|not found|does not exist)",
        r"(No such file|FileNotFoundError).*/opt/ml/input/config/",
    ),
    "requirements_failed": _any(
        r"InstallModuleError", r"InstallRequirementsError", r"No matching distribution found",
        r"Could not find a version that satisfies", r"pip install .*-r requirements\.txt",
    ),
    "not_supported_locally": _any(
        r"not (currently )?supported (in|for|with) local mode", r"local mode (is )?not supported",
        r"is not supported locally",
        r"could not find local (training job|endpoint|model|transform job|processing job)",
    ),
    "sdk_config": _any(
        r"is not a role", r"get_execution_role", r"local_code", r"region", r"NoRegionError", r"must specify",
        r"is required", r"invalid", r"only supported", r"not supported",
    ),
}  # fmt: skip
"""The lines that name each cause, as the SDK, the engine, compose and the containers print them (the
real texts are in tests/test_classify.py, with the public report each comes from)."""
HOST = ("exception", "engine", "compose")
REGISTRY = ("pulls", "compose")
STARTING = ("engine", "compose", "exception")


def _studio(e: Evidence) -> Diagnosis | None:
    """Studio's proxy refusing what a notebook's engine allows (a network, privileged, BuildKit, an image)."""
    said = "\n".join(line for source in ("engine", "compose", "pulls", "exception") for line in e.lines[source])
    refused = studio.refusal(said)
    return refused and _diagnosis(*refused)


def _no_docker(e: Evidence) -> Diagnosis | None:
    hit = e.find(["exception"], PATTERNS["docker_missing"])
    if hit is None and re.search(NOT_INSTALLED, e.lines["exception"][0], re.I):
        compose = e.raw.get("compose") or {}
        if "docker_cli" in compose and not compose.get("docker_cli") and not compose.get("standalone"):
            hit = Hit("exception", f"{e.lines['exception'][0]} (and no docker CLI on PATH)")
    return hit and _diagnosis("docker_missing", f"no Docker here: {hit.line}")


def _engine(e: Evidence) -> Diagnosis | None:
    hit = e.find(["engine"], r"cannot reach the docker engine.*permission denied") or e.find(
        HOST, PATTERNS["socket_permission"]
    )
    if hit:
        return _diagnosis("socket_permission", f"no permission on the Docker engine's socket: {hit.line}")
    hit = e.find(["engine"], r"cannot reach the docker engine") or e.find(HOST, PATTERNS["daemon_down"])
    return hit and _diagnosis("daemon_down", f"the Docker engine is down: {hit.line}")


def _compose(e: Evidence) -> Diagnosis | None:
    if re.search(NOT_INSTALLED, e.lines["exception"][0], re.I):
        seen = (e.raw.get("compose") or {}).get("plugin_version")
        if seen:
            return _diagnosis(
                "compose_unrecognised",
                f'SageMaker SDK v2 refuses the Compose plugin: `docker compose version` says {seen!r}, without "v2"',
            )
        return _diagnosis("compose_missing", f"no Docker Compose that SDK v2 accepts: {e.lines['exception'][0]}")
    hit = e.find(["compose", "exception"], PATTERNS["compose_too_old"])
    if hit:
        return _diagnosis("compose_too_old", f"Compose rejected the SDK's compose file: {hit.line}")
    hit = e.find(["compose", "exception"], NETWORK_REFUSED.pattern)
    return hit and _diagnosis("network_conflict", f"Compose refused the sagemaker-local network: {hit.line}")


def _registry(e: Evidence) -> Diagnosis | None:
    """The registry speaks through the engine's pull errors and compose's own lines (and the SDK v3's own
    image check); never through a container's output."""
    hit = e.find(REGISTRY, ENOSPC)
    if hit:
        return _diagnosis("disk_full", f"no space left on device while pulling: {hit.line}")
    hit = e.find(REGISTRY, PATTERNS["pull_auth"])
    if hit:
        return _diagnosis("pull_auth", f"the registry refused the pull: {hit.line}")
    hit = e.find([*REGISTRY, "exception"], PATTERNS["image_not_found"])
    if hit:
        return _diagnosis("image_not_found", f"the image was not found: {hit.line}")
    hit = e.find(REGISTRY, PATTERNS["registry_unreachable"])
    return hit and _diagnosis("registry_unreachable", f"the registry is unreachable: {hit.line}")


def _not_started(e: Evidence) -> Diagnosis | None:
    """The engine's own reason for a container it could not create or start."""
    hit = e.find(STARTING, PATTERNS["port_in_use"])
    if hit:
        return _diagnosis("port_in_use", f"the serving port is taken: {hit.line}")
    hit = e.find([*STARTING, "container"], r"exec format error")
    if hit:
        return _diagnosis("wrong_architecture", f"the image is for another CPU architecture: {hit.line}")
    if e.deploying:
        served = _training_image_served(e)
        if served:
            return served
    hit = e.find(["engine"], r".")
    if hit and re.search(ENOSPC, hit.line, re.I):
        return None  # the engine ran out of room: a disk's story, told by _disk
    hit = hit or e.find(["compose"], PATTERNS["container_not_started"])
    return hit and _diagnosis("container_not_started", f"the engine could not start the container: {hit.line}")


def _oom(e: Evidence) -> Diagnosis | None:
    killed = next((c for c in e.containers if c.get("oom_killed") or c.get("exit_code") == 137), None)
    if killed is None:
        return None
    limit = (killed.get("limits") or {}).get("memory")
    within = f", memory limit {limit // (1024 * 1024)} MiB" if limit else ""
    how = "OOMKilled, " if killed.get("oom_killed") else ""
    return _diagnosis("oom_killed", f"container {killed['name']} was killed for lack of memory ({how}exit 137{within})")


def _disk(e: Evidence) -> Diagnosis | None:
    """Which disk filled decides the fix: /dev/shm, the SDK's staging dir, the data-root, or the container's."""
    hit = e.find(["container"], r"/dev/shm") if e.find(["container"], ENOSPC) else None
    hit = hit or e.find(["container"], PATTERNS["shm_too_small"])
    if hit:
        return _diagnosis("shm_too_small", f"/dev/shm is too small in the container: {hit.line}{_shm(e, hit)}")
    host = e.find(["exception"], ENOSPC)
    if host is None and e.exception.get("errno") == 28:
        host = Hit("exception", e.lines["exception"][0])
    if host:
        return _diagnosis("container_root_full", f"no space left where the SDK stages files: {host.line}")
    hit = e.find(["engine", "container"], ENOSPC)
    if hit is None:
        return None
    if e.disk_full("container_root"):
        return _diagnosis("container_root_full", f"the SDK's container_root filled up: {hit.line}")
    if e.disk_full("docker_root") or (e.studio and hit.source == "engine"):  # Studio's data-root: not seen
        return _diagnosis("disk_full", f"Docker's data-root filled up: {hit.line}")
    return _diagnosis("container_disk_full", f"a disk inside the container is full: {hit.line}")


def _shm(e: Evidence, hit: Hit) -> str:
    size = (e.container_named(hit.source).get("limits") or {}).get("shm_size")
    return f" (shm_size {size // (1024 * 1024)} MiB)" if size else ""


def _training_image_served(e: Evidence) -> Diagnosis | None:
    hit = e.find(["engine", "container"], PATTERNS["training_image_served"])
    return hit and _diagnosis("training_image_served", f"a training image was used for serving: {hit.line}")


def _serving(e: Evidence) -> Diagnosis | None:
    if not e.deploying:
        return None
    served = _training_image_served(e)
    if served:
        return served
    hit = e.find(["container"], PATTERNS["model_fn_failed"])
    if hit:
        detail = _error_of(e.container_named(hit.source)) or hit.line
        return _diagnosis("model_fn_failed", f"the model server could not load the model: {detail}")
    serving = [c for c in e.containers if c.get("status") == "running" and c.get("exit_code") is None]
    crashed = next((c for c in e.containers if c.get("exit_code") is not None), None)
    gave_up = e.find(["exception"], r"Giving up, endpoint didn't launch|endpoint")
    if serving and crashed is None and gave_up:
        still = f"serving container {serving[0]['name']} was still starting when the SDK gave up"
        return _diagnosis("serving_slow", f"{still}: {gave_up.line}")
    if crashed is None and not e.raw.get("serving_failed"):
        return None
    name = crashed["name"] if crashed else "the serving container"
    detail = _error_of(crashed) if crashed else None
    said = f"serving container {name} exited before answering /ping" + (f": {detail}" if detail else "")
    return _diagnosis("serving_crashed", said)


def _container_failed(e: Evidence) -> Diagnosis | None:
    """A container ran and failed: its own output says why (these rules read nothing else)."""
    for category, what in (
        ("container_credentials", "the container's AWS call was refused"),
        ("sdk_container_mismatch", "the container expects a file local mode did not write"),
        ("requirements_failed", "installing the script's requirements failed"),
    ):
        hit = e.find(["container"], PATTERNS[category])
        if hit:
            return _diagnosis(category, f"{what}: {hit.line}")
    failed = next((c for c in e.containers if c.get("exit_code") not in (None, 0)), None)
    return failed and _script_error(failed)


def _script_error(failed: dict) -> Diagnosis:
    """Blames the script only for a traceback that ends in the script; one ending inside a library or the
    container's toolkit says so, with the script's own line that called it."""
    name = failed["name"]
    logs = [container_logs.unprefixed(line) for line in failed.get("logs") or []]
    found = container_logs.script_traceback(logs)
    if found is None:
        last = next((line.strip() for line in reversed(logs) if line.strip()), "no output")
        said = f"container {name} failed: exit code {failed['exit_code']}, last output: {last}"
        return _diagnosis("script_error", said)
    error, frames = found
    if not frames or container_logs.is_user_code(frames[-1][0]):
        where = f" ({frames[-1][0]}, line {frames[-1][1]})" if frames else ""
        return _diagnosis("script_error", f"container {name} failed: {error}{where}")
    library = frames[-1]
    mine = next((f for f in reversed(frames) if container_logs.is_user_code(f[0])), None)
    called = f", called from {mine[0]}, line {mine[1]}" if mine else ""
    return _diagnosis(
        "script_error",
        f"container {name} failed: {error} (raised inside {library[0]}, line {library[1]}{called})",
        "the error was raised inside a library or the container's toolkit, not on a line of your script: read "
        "the error quoted (the inputs, versions or settings it names) and the full log in the report",
    )


def _host_side(e: Evidence) -> Diagnosis | None:
    """The SDK's own exception, every container fine (or none run)."""
    kind = str(e.exception.get("type") or "")
    denied = e.find(["exception"], r"\[Errno 13\] Permission denied")  # shutil.Error lists them in its message
    if kind == "PermissionError" or e.exception.get("errno") == 13 or denied:
        frame = _last_frame(str(e.exception.get("traceback") or ""))
        return _diagnosis("host_permission", e.lines["exception"][0] + (f" (in {frame})" if frame else ""))
    hit = e.find(["exception"], PATTERNS["not_supported_locally"])
    if hit:
        return _diagnosis("not_supported_locally", f"not supported in local mode: {hit.line}")
    hit = e.find(["exception"], PATTERNS["sdk_config"])
    if hit is None and kind in ("ValueError", "TypeError", "KeyError") and not e.containers:
        hit = Hit("exception", e.lines["exception"][0])
    return hit and _diagnosis("sdk_config", f"the SDK refused its configuration: {hit.line}")


def _last_frame(traceback: str) -> str | None:
    frames = re.findall(r'File "([^"]+)", line (\d+)', traceback)
    return f"{frames[-1][0]}, line {frames[-1][1]}" if frames else None


def _error_of(container: dict) -> str | None:
    """The line that says why a container ended: its traceback's error, else its last error-looking line."""
    logs = [container_logs.unprefixed(line) for line in container.get("logs") or []]
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
