"""SageMaker Studio spaces: what differs from a notebook instance, for doctor, bootstrap and failure reports.

In a Studio JupyterLab or Code Editor space the Docker engine is the host's, reached through a proxy
socket (`unix:///docker/proxy.sock`) that serves Engine API 1.41 only, allows the `sagemaker` network only
and refuses privileged containers; the space's EBS volume is the user's home. So there is no data-root to
move, the engine's disk is the host's business (what the space sees is the engine's own accounting), and
the proxy's refusals need hints of their own. `gather` reads the edges; everything else here is pure.
"""

from __future__ import annotations

import socket
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from agent import disks
from agent.errors import SmdiagError
from agent.failures.catalog import ENABLE_DOCKER
from agent.host import compose
from agent.platform import STUDIO_API_VERSION, STUDIO_DOCKER_HOST, STUDIO_LOCAL_MODE_APP_TYPES, Platform
from agent.settings import Settings

if TYPE_CHECKING:
    from agent.engine import Engine

PROBE_TIMEOUT_S = 5
DISABLED_ERROR = "Cannot connect to the Docker daemon at {host}. Is the docker daemon running?"
"""What `docker` prints in a space whose domain has Docker access off: the proxy socket is not there."""


def bootstrap_result(plat: Platform) -> dict:
    """`smdiag bootstrap` on Studio: the engine and its data-root are the host's, so there is nothing to move."""
    return {
        "action": "not_applicable",
        "platform": plat.to_dict(),
        "why": (
            f"{plat.label}: Docker is the host's engine behind the proxy socket, and its data-root is not in "
            "this space, so there is nothing to move. Local mode already stages its files in ~/tmp, on the "
            "space's EBS volume (your home)."
        ),
    }


def gather(settings: Settings, plat: Platform, home: Path, engine: Engine) -> dict:
    """The Studio checks' facts: the proxy socket, the engine through it (pinned and not), the space's
    disks, and the engine's own disk accounting."""
    socket_path = _unix_path(settings.docker_host)
    return {
        "app_type": plat.app_type,
        "local_mode": plat.local_mode,
        "proxy": {
            "host": settings.docker_host,
            "expected": STUDIO_DOCKER_HOST,
            "socket_exists": bool(socket_path) and _is_socket(socket_path),
            "expected_exists": _is_socket(_unix_path(STUDIO_DOCKER_HOST)),
            "unversioned_status": _unversioned_status(socket_path) if socket_path else None,
        },
        "api_version": STUDIO_API_VERSION,
        "engine": _pinned_engine(engine),
        "disks": space_disks(home),
        "compose": sdk_composes(compose.probe_compose().to_dict()),
    }


def sdk_composes(choice: dict) -> dict:
    """What each SDK major runs for `docker compose` here (pure): v2 only a plugin whose version says "v2",
    else `docker-compose`; v3 any plugin (v2 and later) first, else `docker-compose`."""
    if choice["docker_cli"] is None:
        return {"v2": None, "v3": None, "plugin_version": None}
    v3 = ["docker", "compose"] if choice["plugin_version"] else ["docker-compose"] if choice["standalone"] else None
    return {"v2": choice["command"], "v3": v3, "plugin_version": choice["plugin_version"]}


Check = tuple[str, str, str]


def problems(facts: dict | None, high_pct: float) -> list[Check]:
    """(check, problem, fix) for each thing in the way of local mode in this space. Pure."""
    if not facts:
        return []
    found: list[Check] = []
    if not facts["local_mode"]:
        found.append(
            (
                "studio",
                f"the SageMaker SDK refuses local mode in a Studio {facts['app_type']} app "
                f"(NotImplementedError: AppType {facts['app_type']} in Studio does not support Local Mode)",
                f"run local mode in a {' or '.join(STUDIO_LOCAL_MODE_APP_TYPES[1:])} space",
            )
        )
    proxy, eng = facts["proxy"], facts["engine"]
    if not proxy["socket_exists"] and proxy["expected_exists"]:
        found.append(
            (
                "engine",
                f"DOCKER_HOST is {proxy['host']}, where no engine listens; Studio's engine is at {proxy['expected']}",
                f"export DOCKER_HOST={proxy['expected']}",
            )
        )
    elif not proxy["socket_exists"]:
        said = DISABLED_ERROR.format(host=proxy["host"])
        found.append(("engine", f"Docker access is off for this space: docker says {said!r}", ENABLE_DOCKER))
    elif not eng["reachable"]:
        found.append(("engine", f"{eng['error']} (API {STUDIO_API_VERSION} pinned)", "restart the space"))
    for disk in facts["disks"]:
        if disk["exists"] and disk["percent"] >= high_pct:
            found.append(
                (
                    "disk",
                    f"{_DISK_NAMES[disk['role']]} {disk['path']} is {disk['percent']:.0f}% full "
                    f"({disks.human_bytes(disk['free'])} free, threshold {high_pct:g}%)",
                    "delete old local-mode runs under ~/tmp (inputs and model artifacts stay there), or raise the "
                    "space's storage size (its EBS volume, up to the domain's maximum)",
                )
            )
    return found


def rows(plat: dict | None, facts: dict | None) -> list[tuple[str, bool, str]]:
    """The platform's line of `smdiag doctor`'s text report, then Studio's: (check, applies, text)."""
    named = [("platform", True, plat["label"])] if plat else []
    if not facts:
        return named
    proxy, eng, comp = facts["proxy"], facts["engine"], facts["compose"]
    if eng["reachable"]:
        unversioned = proxy["unversioned_status"]
        redirect = f"; unversioned API calls get HTTP {unversioned}" if unversioned not in (None, 200) else ""
        engine_text = f"Docker {eng['version']} (API {eng['api_version']}) through {proxy['host']}{redirect}"
        engine_text += f"; smdiag pins API {STUDIO_API_VERSION}"
    else:
        engine_text = f"no engine at {proxy['host']}"
    lines = [*named, ("engine", eng["reachable"], engine_text)]
    for major in ("v2", "v3"):
        command = comp[major]
        lines.append(
            ("compose", bool(command), f"SageMaker SDK {major} will run: {' '.join(command) if command else 'none'}")
        )
    for disk in facts["disks"]:
        label = f"{_DISK_NAMES[disk['role']]} {disk['path']}"
        if disk["exists"]:
            text = f"{label}: {disk['percent']:.0f}% used, {disks.human_bytes(disk['free'])} free"
        else:
            text = f"{label}: not there yet (local mode creates it)"
        lines.append(("disk", disk["exists"], text))
    df = eng.get("disk_usage")
    if df:
        lines.append(
            (
                "engine_disk",
                True,
                f"the engine's own accounting: images {disks.human_bytes(df['images_bytes'])} "
                f"({df['images']} images, {df['unused_images']} used by no container), containers "
                f"{disks.human_bytes(df['containers_bytes'])}, volumes {disks.human_bytes(df['volumes_bytes'])}, "
                f"build cache {disks.human_bytes(df['build_cache_bytes'])}",
            )
        )
    return lines


_DISK_NAMES = {"home": "home (the space's EBS volume)", "container_root": "local mode's container_root"}


def disk_usage(df: dict) -> dict:
    """`docker system df`'s totals from the engine's /system/df answer. Pure."""
    images = df.get("Images") or []
    return {
        "images": len(images),
        "images_bytes": df.get("LayersSize") or 0,
        "unused_images": sum(1 for image in images if not image.get("Containers")),
        "containers_bytes": sum(c.get("SizeRw") or 0 for c in df.get("Containers") or []),
        "volumes_bytes": sum(max((v.get("UsageData") or {}).get("Size") or 0, 0) for v in df.get("Volumes") or []),
        "build_cache_bytes": sum(b.get("Size") or 0 for b in df.get("BuildCache") or []),
    }


def engine_bytes(usage: dict) -> int:
    """All the engine says it stores: the sum of `disk_usage`'s sizes. Pure."""
    return usage["images_bytes"] + usage["containers_bytes"] + usage["volumes_bytes"] + usage["build_cache_bytes"]


def _pinned_engine(engine: Engine) -> dict:
    """The engine through the proxy, with the client pinned to Studio's API version (Engine.for_settings)."""
    try:
        version = engine.client.version()
        usage = disk_usage(engine.client.df())
    except SmdiagError as exc:
        return {"reachable": False, "error": exc.problem, "fix": exc.fix}
    except Exception as exc:  # noqa: BLE001 - docker-py's errors after the ping: the engine answered, then failed
        return {"reachable": False, "error": f"the engine failed: {exc}", "fix": "restart the space"}
    return {
        "reachable": True,
        "version": version.get("Version"),
        "api_version": version.get("ApiVersion"),
        "disk_usage": usage,
        "error": None,
    }


def _unversioned_status(path: str) -> int | None:
    """The HTTP status the socket gives an unversioned `GET /version` (Studio's proxy: 301), None if none."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(PROBE_TIMEOUT_S)
            conn.connect(path)
            conn.sendall(b"GET /version HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
            status_line = conn.recv(64).split(b"\r\n", 1)[0].split()
    except OSError:
        return None
    return int(status_line[1]) if len(status_line) > 1 and status_line[1].isdigit() else None


def _unix_path(host: str) -> str | None:
    return host[len("unix://") :] if host.startswith("unix://") else None


def _is_socket(path: str) -> bool:
    try:
        return stat.S_ISSOCK(Path(path).stat().st_mode)
    except OSError:
        return False


def space_disks(home: Path) -> list[dict]:
    """The space's home and local mode's container_root (`~/tmp`), measured now."""
    return [space_disk("home", home), space_disk("container_root", home / "tmp")]


def space_disk(role: str, path: Path) -> dict:
    usage = disks.fs_usage(path) if path.is_dir() else None
    if usage is None:
        return {"role": role, "path": str(path), "exists": False}
    return {"role": role, "exists": True, **usage.to_dict()}
