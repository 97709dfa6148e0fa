"""How much an image will take before it is pulled: its manifest's layer sizes, read from its registry.

Credentials are the engine's (the user's docker config, as `docker login` wrote it); for ECR they come
from boto3's authorization token, as the SDK itself gets them. Only the manifest is read, never a layer.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import platform
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

import docker.auth
import docker.errors

from agent.errors import BadInput, Failed
from agent.imageref import split_image_ref

MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    ]
)
ECR_HOST = re.compile(r"^(\d{12})\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$")
TIMEOUT_S = 15
EXPANSION = 2.5
"""Uncompressed / compressed size of typical framework layers (Python packages, shared libraries)."""
MARGIN = 0.1


@dataclass(frozen=True)
class ImageSize:
    reference: str
    registry: str
    compressed_bytes: int
    layers: int

    @property
    def room_needed(self) -> int:
        """Free bytes a pull needs: the downloaded layers while they are extracted, the extracted files,
        and a margin."""
        return int(self.compressed_bytes * (1 + EXPANSION) * (1 + MARGIN))


@dataclass(frozen=True)
class Reference:
    registry: str
    """host[:port] as in the image name; docker.io for Docker Hub."""
    repository: str
    reference: str
    """Tag or digest."""

    @property
    def api_host(self) -> str:
        return "registry-1.docker.io" if self.registry == "docker.io" else self.registry


def parse_reference(name: str) -> Reference:
    """Split an image name the way the engine does (docker.io and library/ implied), with docker-py's
    parser. Pure."""
    bad = BadInput(f"{name!r} is not an image name", "give it like REGISTRY/REPOSITORY:TAG")
    if not name or any(c.isspace() for c in name):
        raise bad
    repository, tag = split_image_ref(name)
    if tag and tag.startswith("sha256:"):  # a digest wins over a tag given beside it (name:tag@sha256:...)
        repository, _tag = split_image_ref(repository)
    try:
        registry, path = docker.auth.resolve_repository_name(repository)
    except docker.errors.InvalidRepository:
        raise bad from None
    if registry == "docker.io" and "/" not in path:
        path = f"library/{path}"
    if not re.fullmatch(r"[a-z0-9]+(?:[._-]+[a-z0-9]+)*(?:/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*", path):
        raise bad
    return Reference(registry, path, tag or "latest")


def image_size(name: str, insecure_registries: list[str] | None = None) -> ImageSize:
    """Read the manifest (the host's platform from an index) and add up the layer sizes."""
    ref = parse_reference(name)
    session = _Session(ref, insecure_registries or [])
    manifest = session.manifest(ref.reference)
    if "manifests" in manifest:
        arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
        entries = manifest["manifests"]
        chosen = next(
            (
                m
                for m in entries
                if m.get("platform", {}).get("os") == "linux" and m["platform"].get("architecture") == arch
            ),
            entries[0] if entries else None,
        )
        if chosen is None:
            raise Failed(f"the index of {name} lists no image", "check the image name")
        manifest = session.manifest(chosen["digest"])
    layers = manifest.get("layers") or []
    total = sum(int(layer.get("size", 0)) for layer in layers) + int(manifest.get("config", {}).get("size", 0))
    return ImageSize(name, ref.registry, total, len(layers))


class _Session:
    def __init__(self, ref: Reference, insecure: list[str]) -> None:
        self.ref = ref
        scheme = "http" if _is_insecure(ref.registry, insecure) else "https"
        self.base = f"{scheme}://{ref.api_host}/v2/{ref.repository}"
        self.basic = _basic_credentials(ref.registry)
        self.bearer: str | None = None

    def manifest(self, reference: str) -> dict:
        url = f"{self.base}/manifests/{urllib.parse.quote(reference, safe=':')}"
        for _attempt in range(2):
            request = urllib.request.Request(url, headers={"Accept": MANIFEST_TYPES})
            if self.bearer:
                request.add_header("Authorization", f"Bearer {self.bearer}")
            elif self.basic:
                request.add_header("Authorization", f"Basic {self.basic}")
            try:
                with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
                    return json.load(response)
            except urllib.error.HTTPError as exc:
                challenge = exc.headers.get("WWW-Authenticate", "")
                if exc.code == 401 and challenge.lower().startswith("bearer") and not self.bearer:
                    self.bearer = self._token(challenge)
                    continue
                detail = exc.read(500).decode(errors="replace").strip()
                raise Failed(
                    f"the registry {self.ref.registry} answered {exc.code} for {self.ref.repository}:{reference}"
                    + (f": {detail}" if detail else ""),
                    "check the image name and your registry login (docker login, or AWS credentials for ECR)",
                ) from None
            except (urllib.error.URLError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                raise Failed(
                    f"cannot reach the registry {self.ref.registry}: {reason}",
                    "check the network and the registry address",
                ) from None
        raise Failed(f"the registry {self.ref.registry} refused the token it issued", "run docker login again")

    def _token(self, challenge: str) -> str:
        fields = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        query = urllib.parse.urlencode({k: v for k, v in fields.items() if k in ("service", "scope")})
        request = urllib.request.Request(f"{fields.get('realm', '')}?{query}")
        if self.basic:
            request.add_header("Authorization", f"Basic {self.basic}")
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
                body = json.load(response)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise Failed(f"cannot get a token from {fields.get('realm')}: {exc}", "run docker login again") from None
        return body.get("token") or body.get("access_token") or ""


def _is_insecure(registry: str, insecure: list[str]) -> bool:
    host = registry.rsplit(":", 1)[0] if registry.count(":") == 1 else registry
    if host == "localhost" or registry in insecure:
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or any(
        "/" in cidr and address in ipaddress.ip_network(cidr, strict=False) for cidr in insecure
    )


def _basic_credentials(registry: str) -> str | None:
    """base64 user:password for the registry: ECR's token through boto3, else the docker config's login."""
    ecr = ECR_HOST.match(registry)
    if ecr:
        import boto3  # only ECR needs it, and it takes a good part of a second to import

        try:
            data = boto3.client("ecr", region_name=ecr.group(2)).get_authorization_token(registryIds=[ecr.group(1)])
        except Exception as exc:  # noqa: BLE001 - botocore has many; the message names the cause
            raise Failed(
                f"cannot get an ECR token for {registry}: {exc}", "check the AWS credentials and region"
            ) from None
        return data["authorizationData"][0]["authorizationToken"]
    config = docker.auth.load_config()
    auth = docker.auth.resolve_authconfig(config, registry)
    if auth and auth.get("username") and auth.get("password"):
        return base64.b64encode(f"{auth['username']}:{auth['password']}".encode()).decode()
    return None
