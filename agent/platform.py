"""Where smdiag runs: a SageMaker notebook instance, a SageMaker Studio space, or any other Docker host.

Decided in one place so that every command acts on the same answer. `classify` is pure; `detect` reads
the facts it needs at the edge (two small files).

SageMaker writes `/opt/ml/metadata/resource-metadata.json` on notebook instances and in Studio apps alike
(`settings.notebook_metadata`, SMDIAG_NOTEBOOK_METADATA). Studio's has an `AppType`; a notebook
instance's has none. Both SageMaker SDK majors decide "Studio" exactly so (v2 `sagemaker.local.utils.
check_for_studio`, v3 `sagemaker.core.local.utils.check_for_studio`): an `AppType` in JupyterLab,
CodeEditor or KernelGateway is Studio, where the SDK forces `container_root` to `~/tmp`, runs containers
with `network_mode: sagemaker`, publishes no ports and refuses `instance_count > 1`; any other `AppType`
makes the SDK raise NotImplementedError ("AppType X in Studio does not support Local Mode").
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from agent.settings import Settings

NOTEBOOK_INSTANCE = "notebook_instance"
STUDIO = "studio"
DOCKER_HOST = "docker_host"

STUDIO_LOCAL_MODE_APP_TYPES = ("KernelGateway", "CodeEditor", "JupyterLab")
"""The SDKs' own list (STUDIO_APP_TYPES in both majors)."""
STUDIO_API_VERSION = "1.41"
"""Studio's engine proxy serves Docker Engine API 1.41 only and redirects unversioned paths (HTTP 301),
which breaks a client that asks the server for its version first (docker-py's default): pin it."""
STUDIO_DOCKER_HOST = "unix:///docker/proxy.sock"


@dataclass(frozen=True)
class Platform:
    kind: str
    """NOTEBOOK_INSTANCE, STUDIO or DOCKER_HOST."""
    os: str | None
    """A notebook instance's Amazon Linux ("AL2", "AL2023"), from os-release; None elsewhere."""
    os_name: str | None
    """os-release's PRETTY_NAME, whatever the platform."""
    app_type: str | None
    """Studio's app type (JupyterLab, CodeEditor, KernelGateway, ...)."""
    name: str | None
    """The notebook instance's name, or the Studio space's."""
    domain_id: str | None
    local_mode: bool
    """Whether the SageMaker SDK runs local mode here (False for Studio app types it refuses)."""
    api_version: str | None
    """The Engine API version every client must pin here; None where negotiating is fine."""

    @property
    def label(self) -> str:
        """One line a person reads: what this host is."""
        if self.kind == STUDIO:
            where = f" space {self.name}" if self.name else ""
            refused = "" if self.local_mode else " (the SageMaker SDK refuses local mode in this app type)"
            return f"SageMaker Studio {self.app_type or 'app'}{where}{refused}"
        if self.kind == NOTEBOOK_INSTANCE:
            return " ".join(filter(None, ["SageMaker notebook instance", self.name, f"({self.os or self.os_name})"]))
        return f"Docker host ({self.os_name or 'unknown OS'})"

    def to_dict(self) -> dict:
        return {**asdict(self), "label": self.label}


def classify(notebook_config_exists: bool, metadata: dict | None, os_release: dict[str, str]) -> Platform:
    """The platform, from the notebook-instance config's presence, resource-metadata.json (None when
    absent or unreadable) and os-release's fields. Pure."""
    metadata = metadata or {}
    app_type = metadata.get("AppType") or None
    os_name = os_release.get("PRETTY_NAME")
    if app_type:
        return Platform(
            kind=STUDIO,
            os=None,
            os_name=os_name,
            app_type=str(app_type),
            name=metadata.get("SpaceName") or None,
            domain_id=metadata.get("DomainId") or None,
            local_mode=app_type in STUDIO_LOCAL_MODE_APP_TYPES,
            api_version=STUDIO_API_VERSION,
        )
    if notebook_config_exists or metadata:
        return Platform(
            kind=NOTEBOOK_INSTANCE,
            os=amazon_linux(os_release),
            os_name=os_name,
            app_type=None,
            name=metadata.get("ResourceName") or None,
            domain_id=None,
            local_mode=True,
            api_version=None,
        )
    return Platform(DOCKER_HOST, None, os_name, None, None, None, True, None)


def amazon_linux(os_release: dict[str, str]) -> str | None:
    """ "AL2" or "AL2023" on Amazon Linux, None elsewhere."""
    if os_release.get("ID") != "amzn":
        return None
    version = os_release.get("VERSION_ID", "")
    return {"2": "AL2", "2023": "AL2023"}.get(version, f"amzn-{version}")


def detect(settings: Settings) -> Platform:
    """Read the facts (the notebook config's presence, resource-metadata.json, os-release) and classify."""
    return classify(settings.notebook_config.exists(), _metadata(settings.notebook_metadata), os_release(settings))


def os_release(settings: Settings) -> dict[str, str]:
    try:
        lines = settings.os_release.read_text(encoding="utf-8").splitlines()
    except OSError:
        return {}
    pairs = (line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))
    return {key.strip(): value.strip().strip('"') for key, value in pairs}


def _metadata(path: Path) -> dict | None:
    """resource-metadata.json's fields; a file that exists but does not parse still says "SageMaker"."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    try:
        parsed = json.loads(text)
    except ValueError:
        return {"unparsed": True}
    return parsed if isinstance(parsed, dict) else {"unparsed": True}
