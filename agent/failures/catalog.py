"""Every failure category in one table: the hint a user reads and the remedy `smdiag fix` runs. Pure.

agent.failures.classify names the category; this table says what to do about it, and the remedy is chosen
here, once, from the evidence (which disk filled, which port was taken): agent.fix runs the remedy the
report names and never decides again. Studio's engine proxy refuses what a notebook's engine allows; its
refusals are categories of their own, recognised by the texts below (REFUSALS). Managed jobs' hints are
agent.failures.catalog_remote's, made categories of this table here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from agent.failures import catalog_remote
from agent.failures.types import Evidence, Remedy

FULL_PCT = 95
"""A disk this full, seen after the failure, is the one that ran out of room."""
DEFAULT_SERVING_PORT = 8080
"""The port local mode serves on unless `local.serving_port` says otherwise."""
PORT_ERROR = re.compile(
    r"(?:0\.0\.0\.0|\[::\]|127\.0\.0\.1)?:(\d+) failed: port is already allocated|"
    r"listen tcp[46]? [^:]*:(\d+): bind: address already in use"
)
"""The engine's words for a port it could not bind, with the port."""
ENABLE_DOCKER = (
    "an administrator enables it on the domain: aws sagemaker update-domain --domain-id <domain> "
    '--domain-settings-for-update \'{"DockerSettings":{"EnableDockerAccess":"ENABLED"}}\'; '
    "then stop and start the space (the socket is mounted at start)"
)


@dataclass(frozen=True)
class Category:
    hint: str
    remedy: Callable[[Evidence], Remedy | None] = lambda evidence: None
    hint_on_studio: str | None = None
    """Where Studio differs (its engine's disk is the host's: nothing to move)."""
    hint_by_sdk: dict[str, str] = field(default_factory=dict)
    """Where the SDK majors differ (`v2`, `v3`: Call.sdk)."""

    def hint_for(self, evidence: Evidence) -> str:
        if evidence.platform == "studio" and self.hint_on_studio:
            return self.hint_on_studio
        sdk = evidence.call.sdk if evidence.remote else sdk_major(evidence)  # `smdiag job`: no SDK, both spellings
        return self.hint_by_sdk.get(sdk, self.hint)


def sdk_major(evidence: Evidence) -> str:
    """`v2` or `v3`. An older guest set `Call.sdk` only for v3's calls, so a call without it is v2's."""
    return evidence.call.sdk or "v2"


def remedy(category: str, evidence: Evidence) -> Remedy | None:
    return CATALOG[category].remedy(evidence)


def hint(category: str, evidence: Evidence) -> str:
    return CATALOG[category].hint_for(evidence)


# ---------------------------------------------------------------------------------------------- remedies


def _named(name: str) -> Callable[[Evidence], Remedy]:
    return lambda evidence: Remedy(name)


def _free_the_full_disk(evidence: Evidence) -> Remedy | None:
    """Which of our disks filled decides the remedy: the data-root when a pull ran out of room, else the one
    seen full (the SDK's container_root before the data-root); none when neither was (a disk inside the
    container, or Studio's engine disk, which cannot be measured from the space)."""
    if any("no space left" in pull.error.lower() for pull in evidence.pull_errors):
        return Remedy("free_disk")
    for role, name in (("container_root", "container_root"), ("docker_root", "free_disk")):
        disk = next((d for d in evidence.disks if d.role == role), None)
        if disk and disk.percent is not None and disk.percent >= FULL_PCT:
            return Remedy(name)
    return None


def _start_the_engine(evidence: Evidence) -> Remedy | None:
    """Starting the engine does not help when its socket refused us: that is the docker group's business."""
    return None if "permission denied" in (evidence.docker.error or "").lower() else Remedy("start_engine")


def _free_the_port(evidence: Evidence) -> Remedy:
    """The port the engine could not bind, from its own words; local mode's default otherwise."""
    said = [evidence.exception.message, *evidence.compose_output, *(c.error or "" for c in evidence.containers)]
    found = PORT_ERROR.search("\n".join(said))
    port = int(found.group(1) or found.group(2)) if found else DEFAULT_SERVING_PORT
    return Remedy("leftover_containers", port=port)


# ---------------------------------------------------------------------------------------------- Studio


@dataclass(frozen=True)
class Refusal:
    """One kind of request Studio's engine proxy refuses: how to recognise it and what to change."""

    category: str
    pattern: re.Pattern[str]
    hint: str
    seen: str
    """A real error text of this kind, as users reported it (the classification tests match it)."""
    summary: str = "SageMaker Studio refused the request"
    """What a report's summary says before the matched text."""


REFUSALS = (
    Refusal(
        "studio_docker_disabled",
        re.compile(r"cannot connect to the docker daemon at unix:///docker/proxy\.sock[^\n]*", re.I),
        "Docker access is off for this Studio domain (or the space started before it was turned on): " + ENABLE_DOCKER,
        "Cannot connect to the Docker daemon at unix:///docker/proxy.sock. Is the docker daemon running?",
        "Docker access is off for this Studio space",
    ),
    Refusal(
        "studio_buildkit",
        re.compile(
            r"buildkit[\s\S]*?(?P<said>Forbidden\. Reason: \[ContainerCreate\][^\n\"]*privileged[^\n\"]*)", re.I
        ),
        "Studio refuses BuildKit's builder (it needs a privileged container): build with the classic builder, "
        "DOCKER_BUILDKIT=0 docker build --network sagemaker ...",
        " => ERROR [internal] booting buildkit\n"
        'ERROR: Error response from daemon: {"message":"Forbidden. Reason: [ContainerCreate] SageMaker '
        'Studio Docker Usage does not allow privileged mode execution"}',
    ),
    Refusal(
        "studio_privileged",
        re.compile(r"Forbidden\. Reason: \[ContainerCreate\] [^\n\"]*does not allow privileged mode[^\n\"]*"),
        "Studio refuses privileged containers: remove `privileged: true` (docker run --privileged) from the "
        "container's configuration; what needs it cannot run in a Studio space",
        'Error response from daemon: {"message":"Forbidden. Reason: [ContainerCreate] SageMaker Studio '
        'Docker Usage does not allow privileged mode execution"}',
    ),
    Refusal(
        "studio_network",
        re.compile(
            r"Forbidden\. Reason: \[(ContainerCreate|ImageBuild)\] [^\n\"]*'sagemaker'[^\n\"]*network input"
            r"|The request for current resource is not allowed on SageMaker Studio\.?"
        ),
        "Studio allows only the `sagemaker` network: run containers with `network_mode: sagemaker` "
        "(docker run --network sagemaker) and build with docker build --network sagemaker; SageMaker local "
        "mode does so by itself when /opt/ml/metadata/resource-metadata.json names a JupyterLab, CodeEditor or "
        "KernelGateway app",
        'Error response from daemon: {"message":"Forbidden. Reason: [ImageBuild] \'sagemaker\' is the only '
        'user allowed network input"}',
    ),
    Refusal(
        "studio_untrusted_image",
        re.compile(r"Forbidden\. Reason: \[ValidateVPCOnlyModeImage\][^\n\"]*"),
        "this domain runs in VPC-only mode: images come only from Amazon ECR private registries of the accounts "
        "in the domain's DockerSettings.VpcOnlyTrustedAccounts. Push the image to such a registry (and build "
        "FROM images there, not Docker Hub or scratch), or have an administrator add the image's account",
        '{"message":"Forbidden. Reason: [ValidateVPCOnlyModeImage] Image scratch is not an ECR Image. Studio '
        "VPC Only Mode allows Amazon ECR private registry Images belonging to trusted AWS Account IDs "
        'configured in Studio Domain API Settings"}',
    ),
)


def studio_refusal(text: str) -> tuple[str, str] | None:
    """(category, summary) when `text` (a failure's collected error text) holds one of Studio's refusals."""
    for rule in REFUSALS:
        match = rule.pattern.search(text)
        if match:
            said = match.groupdict().get("said") or match.group(0)
            return rule.category, f"{rule.summary}: {said.strip()}"
    return None


STUDIO_DISK_FULL_HINT = (
    "the engine's disk is full: in a Studio space it is the host's, behind the proxy, so there is no data-root "
    "to move or enlarge from here. Free what the engine holds: `smdiag diskguard once` (least recently used "
    "images first, never one a container uses; `docker system df` shows what takes the room), or delete "
    "stopped containers and images you no longer need (docker rm / docker rmi); then run again. If ~ is full "
    "as well, delete old local-mode runs under ~/tmp or raise the space's storage size"
)

# ---------------------------------------------------------------------------------------------- managed jobs


def _managed(text: str) -> Category:
    """A managed job's category: the hint in the caller's SDK's words, in both where the SDK is not known."""
    return Category(
        text.format(**catalog_remote.BOTH),
        hint_by_sdk={sdk: text.format(**names) for sdk, names in catalog_remote.SDK_SPELLING.items()},
    )


REMOTE = {category: _managed(text) for category, text in catalog_remote.HINTS.items()}
"""Managed jobs' categories (agent.failures.classify_remote): none has a remedy, the fix is in the user's code."""

# ---------------------------------------------------------------------------------------------- the table

SERVING_SLOW_V2 = (
    "the model server was still starting when the SDK stopped waiting for /ping: SDK v2 waits "
    "sagemaker.local.entities.HEALTH_CHECK_TIMEOUT_LIMIT seconds (120 by default). Raise it before deploy(): "
    "`import sagemaker.local.entities; sagemaker.local.entities.HEALTH_CHECK_TIMEOUT_LIMIT = 600`, or make the "
    "model load faster (smaller model, lazy imports); the container was running, not crashed"
)
SERVING_SLOW_V3 = (
    "the model server was still starting when the SDK stopped waiting for /ping: SDK v3 waits the `timeout` of "
    "sagemaker.core.local.entities._wait_for_serving_container, HEALTH_CHECK_TIMEOUT_LIMIT seconds (120 by "
    "default; the `local.health_check_timeout` setting it would read first is refused by the SDK's own config "
    "schema). Raise it before deploying: `import sagemaker.core.local.entities; "
    "sagemaker.core.local.entities.HEALTH_CHECK_TIMEOUT_LIMIT = 600`, or make the model load faster (smaller "
    "model, lazy imports); the container was running, not crashed"
)

CATALOG: dict[str, Category] = {
    "disk_full": Category(
        "the disk holding Docker's images and containers (its data-root) is full: run `smdiag fix` to free "
        "room (or `smdiag diskguard once`), and move Docker's data-root to the EBS volume with "
        "`sudo smdiag bootstrap`; then run again",
        _free_the_full_disk,
        hint_on_studio=STUDIO_DISK_FULL_HINT,
    ),
    "container_root_full": Category(
        "the disk where the SDK stages local-mode files (its container_root, /tmp by default, on the small "
        "root volume) is full: run `smdiag fix` (it sets `local.container_root` in ~/.sagemaker/config.yaml to "
        "the EBS volume), or set it yourself, and delete old /tmp/tmp* staging dirs; then run again",
        _named("container_root"),
    ),
    "container_disk_full": Category(
        "a disk inside the container ran out of room: write large files under /opt/ml/model, /opt/ml/output "
        "or the input channels (bind mounts on the host) rather than the container's own layer or /tmp, "
        "and check the free space of the host paths shown in the report"
    ),
    "shm_too_small": Category(
        "/dev/shm in the container is too small for the data-loader workers (Docker gives 64 MB): set "
        'sagemaker_session.config = {"local": {"container_config": {"shm_size": "2g"}}} (SDK >= 2.200), '
        "or use num_workers=0"
    ),
    "docker_missing": Category(
        "there is no Docker here (no docker CLI or engine): on SageMaker Studio enable Docker access for the "
        "domain (DockerSettings EnableDockerAccess) and install the docker CLI; elsewhere install Docker"
    ),
    "daemon_down": Category(
        "the Docker engine is not running: run `smdiag fix` to start it (or sudo systemctl start docker), "
        "then run again",
        _start_the_engine,
    ),
    "socket_permission": Category(
        "the engine runs, but this user may not use its socket: add the user to the docker group "
        "(sudo usermod -aG docker $USER, then restart the kernel/login), or point DOCKER_HOST at a socket "
        "this user may use"
    ),
    "compose_missing": Category(
        'SageMaker SDK v2 needs `docker compose` whose `version` output contains "v2", or a `docker-compose` '
        "binary on PATH: install docker-compose (e.g. pip install docker-compose, or the v2 plugin)"
    ),
    "compose_unrecognised": Category(
        'SageMaker SDK v2 accepts the `docker compose` plugin only when its version says "v2": run `smdiag fix` '
        "(it adds a `docker-compose` that runs `docker compose`), then run again",
        _named("compose_shim"),
    ),
    "compose_too_old": Category(
        "this docker-compose is too old for the file the SDK wrote (GPU `deploy:` needs Compose >= 1.28): "
        "install a newer Compose (the v2 plugin, or pip install -U docker-compose)"
    ),
    "network_conflict": Category(
        "a `sagemaker-local` network that Compose did not make (or made differently) is in the way: run "
        "`smdiag fix` (it removes the network when no container uses it), or `docker network rm sagemaker-local`",
        _named("stale_network"),
    ),
    "image_not_found": Category(
        "the image or tag does not exist in its registry: check image_uri, the framework and py versions your "
        "SDK version maps to (sagemaker.image_uris.retrieve), and the region"
    ),
    "pull_auth": Category(
        "the registry refused the pull: for ECR run `aws ecr get-login-password --region <region> | docker login "
        "--username AWS --password-stdin <registry>` (tokens expire after 12 hours) and check that the role "
        "may ecr:BatchGetImage on that repository"
    ),
    "registry_unreachable": Category(
        "the registry cannot be reached: check the network, the registry address and any proxy"
    ),
    "wrong_architecture": Category(
        "the image is built for another CPU architecture than this host (exec format error): use an image "
        "for this host's architecture (e.g. an arm64 image on Graviton/Apple silicon) or run on an x86_64 host"
    ),
    "container_not_started": Category(
        "the engine refused to start the container, for the reason quoted: for a GPU request install the NVIDIA "
        "container runtime or use instance_type='local' (CPU); for a refused mount share the path with Docker "
        "(Docker Desktop: Settings > Resources > File sharing) or set container_root to a path it accepts"
    ),
    "port_in_use": Category(
        "the serving port is taken (an earlier local endpoint still running?): run `smdiag fix` (it removes "
        "leftover local-mode containers), or delete it with predictor.delete_endpoint(), or stop the container "
        "holding the port (docker ps)",
        _free_the_port,
    ),
    "oom_killed": Category(
        "the container ran out of memory (killed, exit 137): give it more (local.container_config mem_limit, "
        "or Docker Desktop's memory setting), reduce the batch size or data held in memory, or use a larger "
        "instance"
    ),
    "serving_crashed": Category(
        "the model server exited at start: read the error quoted and its log in the report (the serving "
        "image's entry point, the model archive's layout, the inference script's imports)"
    ),
    "model_fn_failed": Category(
        "the model server started but could not load the model (its worker died): fix model_fn / the "
        "inference script at the error quoted, and check the model archive holds what model_fn loads"
    ),
    "training_image_served": Category(
        "a training image was used for serving (it has no model server): deploy with the framework's inference "
        "image (e.g. PyTorchModel / image_uris.retrieve(..., image_scope='inference'))"
    ),
    "serving_slow": Category(SERVING_SLOW_V2, hint_by_sdk={"v2": SERVING_SLOW_V2, "v3": SERVING_SLOW_V3}),
    "script_error": Category(
        "the entry script failed: fix it at the file and line shown (the full container log is in the report)"
    ),
    "requirements_failed": Category(
        "installing the script's requirements failed inside the container: check requirements.txt (versions "
        "that exist for the container's Python), remove an empty setup.py from source_dir, and remember local "
        "containers may have no route to PyPI"
    ),
    "container_credentials": Category(
        "the code inside the container had no (or insufficient) AWS credentials: local mode forwards the host's "
        "credentials only from environment variables or a profile, not from an instance role in every SDK "
        "version: export AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN, and check the bucket policy"
    ),
    "sdk_container_mismatch": Category(
        "the container expects a file or key under /opt/ml/input/config that this SDK's local mode does not "
        "write (it exists on SageMaker's managed jobs): upgrade the SDK, or use a container/toolkit version "
        "that matches it"
    ),
    "aws_credentials": Category(
        "the SDK itself needed AWS credentials and found none usable: local mode logs in to ECR to pull an ECR "
        "image it does not have. On a notebook instance the execution role gives them (check with `aws sts "
        "get-caller-identity` in a terminal); elsewhere run `aws configure`, or set AWS_PROFILE or "
        "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY; or have the image locally under that exact URI (`smdiag images "
        "build`, or docker tag) so that local mode does not pull it"
    ),
    "sdk_config": Category(
        "the SDK refused its configuration before any container ran: fix the setting the error names (local "
        'files need sagemaker_session.config = {"local": {"local_code": True}}; get_execution_role() works '
        "only on SageMaker compute: pass the role ARN yourself; keep one region)"
    ),
    "not_supported_locally": Category(
        "this is not supported in local mode (built-in algorithms, jobs and models that exist only on "
        "SageMaker): run it on SageMaker (instance_type='ml.*'), or use a framework container locally"
    ),
    "host_permission": Category(
        "the SDK (as this user) could not move or delete files the container (as root) wrote into the bind "
        "mounts: run the container as your user, make the script write files readable by others (chmod), or "
        "delete the leftover directory with sudo"
    ),
    **{refusal.category: Category(refusal.hint) for refusal in REFUSALS},
    "unknown": Category("read the report's exception and container logs (smdiag last-failure --logs 100)"),
    **REMOTE,
}
"""Each category's hint and remedy (none: `smdiag fix` has no automatic repair for it)."""
