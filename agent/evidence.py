"""Gathering a failure's evidence from the edges: the engine, the compose file, the filesystems.

Input is the capture the wrapper made (JSON-able: the call, the exception, compose files and output,
pull errors the SDK would have lost); output is the stored report. Every step is bounded in time and
a step that fails becomes a field saying so: a report is written even when the engine is down.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import tempfile
import time
from pathlib import Path

from agent import disks, failures
from agent.engine import docker_time
from agent.redact import Redactor
from agent.settings import Settings

ENGINE_TIMEOUT_S = 5
PULL_RETRY_S = 30
COMPOSE_PATH = re.compile(r"(/[^\s,'\"\]]*docker-compose\.ya?ml)")


def record(capture: dict, settings: Settings) -> tuple[Path, dict]:
    """Collect, classify and store; returns the report directory and the (redacted) report."""
    report, full_logs = collect(capture, settings)
    directory = failures.new_report_dir(settings.state_dir, report["time_epoch"])
    report["id"] = directory.name
    redactor = Redactor.from_environment().with_secrets(_compose_secrets(report.get("compose_file")))
    failures.write_report(directory, report, full_logs, redactor)
    return directory, redactor.value(report)


def collect(capture: dict, settings: Settings) -> tuple[dict, dict[str, str]]:
    started = capture.get("started") or time.time()
    compose_paths = _compose_paths(capture)
    services = _services(compose_paths)
    engine_facts, engine_error, client = _engine(settings.docker_host)
    containers, full_logs = [], {}
    pull_errors = list(capture.get("pull_errors") or [])
    try:
        if client is not None:
            containers, full_logs = _containers(client, services, started)
            seen = {c["name"] for c in containers}  # the engine removed these (auto_remove): the wrapper kept them
            containers += [c for c in capture.get("containers") or [] if c.get("name") not in seen]
            if not pull_errors and _looks_like_pull_failure(capture):
                pull_errors = _retry_pulls(client, capture, services)
    finally:
        if client is not None:
            client.close()
    root_dir = engine_facts.get("root_dir") if engine_facts else "/var/lib/docker"
    disk_paths = [
        ("docker_root", root_dir),
        ("container_root", capture.get("container_root") or _staging_root(compose_paths)),
        ("ebs", str(settings.ebs_mount)),
    ]
    compose_facts = _compose_choice(capture)
    report = {
        "id": None,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "time_epoch": time.time(),
        "call": capture.get("call") or {},
        "exception": capture.get("exception") or {},
        "df_h": _df_h(),
        "disks": [_disk(role, path) for role, path in disk_paths],
        "docker": engine_facts or {"error": engine_error},
        "pull_errors": pull_errors,
        "containers": containers,
        "compose_file": _compose_file(compose_paths),
        "compose_output": (capture.get("compose_output") or [])[-failures.LOG_LINES :],
    }
    if compose_facts:
        report["compose"] = compose_facts
    diagnosis = failures.classify(
        {
            "call": report["call"],
            "exception": report["exception"],
            "engine_error": engine_error,
            "pull_errors": pull_errors,
            "containers": containers,
            "compose_output": report["compose_output"],
            "serving_failed": capture.get("serving_failed"),
            "compose": compose_facts,
        }
    )
    report.update(category=diagnosis.category, summary=diagnosis.summary, hint=diagnosis.hint)
    return report, full_logs


def _staging_root(compose_paths: list[str]) -> str:
    """Where the SDK staged this call: the parent of the temporary directory holding its compose file. (The
    temp dir asked anew would skip a TMPDIR that is full, the very case to report.)"""
    if compose_paths:
        return str(Path(compose_paths[0]).parent.parent)
    return tempfile.gettempdir()


def _compose_choice(capture: dict) -> dict | None:
    """When the SDK found no Compose: what is there (a plugin it refused, or nothing), probed as it probes."""
    if "compose is not installed" not in (capture.get("exception") or {}).get("message", "").lower():
        return None
    from agent import compose

    return compose.probe_compose().to_dict()


def _engine(host: str):
    from agent import engine
    from agent.errors import SmdiagError

    try:
        client = engine.connect(host, timeout=ENGINE_TIMEOUT_S)
        facts = engine.describe(client, host)
    except SmdiagError as exc:
        return None, exc.problem, None
    return {"version": facts.version, "root_dir": facts.root_dir, "host": host}, None, client


def _compose_paths(capture: dict) -> list[str]:
    found = list(capture.get("compose_files") or [])
    found += COMPOSE_PATH.findall((capture.get("exception") or {}).get("message", ""))
    return [p for p in dict.fromkeys(found) if Path(p).is_file()]


def _services(compose_paths: list[str]) -> list[dict]:
    """container_name and image of every service in the compose files this call wrote."""
    import yaml

    services = []
    for path in compose_paths:
        with contextlib.suppress(OSError, yaml.YAMLError, AttributeError):
            for name, service in (yaml.safe_load(Path(path).read_text()).get("services") or {}).items():
                services.append({"service": name, "container_name": service.get("container_name"),
                                 "image": service.get("image")})  # fmt: skip
    return services


def _containers(client, services: list[dict], started: float) -> tuple[list[dict], dict[str, str]]:
    """The containers this call created: named in its compose files, else created since it started."""
    import docker.errors

    wanted = [s["container_name"] for s in services if s.get("container_name")]
    found = []
    for name in wanted:
        with contextlib.suppress(docker.errors.NotFound):
            found.append(client.containers.get(name))
    if not wanted:
        for container in client.containers.list(all=True):
            created = docker_time(container.attrs.get("Created"))
            if created is not None and created >= started - 1:
                found.append(container)
    containers, full_logs = [], {}
    for container in found:
        state = container.attrs.get("State") or {}
        with contextlib.suppress(docker.errors.APIError):
            text = container.logs(stdout=True, stderr=True).decode(errors="replace")
            full_logs[container.name] = text
        lines = full_logs.get(container.name, "").replace("\r\n", "\n").splitlines()
        containers.append(
            {
                "name": container.name,
                "image": container.attrs.get("Config", {}).get("Image"),
                "status": state.get("Status"),
                "exit_code": state.get("ExitCode") if state.get("Status") in ("exited", "dead") else None,
                "oom_killed": bool(state.get("OOMKilled")),
                "error": state.get("Error") or None,
                "logs": lines[-failures.LOG_LINES :],
            }
        )
    return containers, full_logs


def _looks_like_pull_failure(capture: dict) -> bool:
    text = (capture.get("exception") or {}).get("message", "") + "\n".join(capture.get("compose_output") or [])
    return bool(re.search(r"docker pull|pull access|error pulling|manifest|Pulling", text, re.I))


def _retry_pulls(client, capture: dict, services: list[dict]) -> list[dict]:
    """Where the SDK lost the engine's pull error (compose pulled), ask the engine again, bounded."""
    import docker.errors

    images = list(dict.fromkeys([*(capture.get("call") or {}).get("images", []), *(s["image"] for s in services)]))
    errors = []
    deadline = time.monotonic() + PULL_RETRY_S
    for image in filter(None, images):
        with contextlib.suppress(docker.errors.ImageNotFound):
            client.images.get(image)
            continue
        repository, tag = _split(image)
        try:
            for event in client.api.pull(repository, tag=tag, stream=True, decode=True):
                if "error" in event:
                    errors.append({"image": image, "error": event["error"].strip()})
                    break
                if time.monotonic() > deadline:
                    break
        except docker.errors.APIError as exc:
            errors.append({"image": image, "error": str(exc.explanation or exc)})
    return errors


def _split(image: str) -> tuple[str, str | None]:
    name, _, digest = image.partition("@")
    if digest:
        return name, digest
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        repository, tag = name.rsplit(":", 1)
        return repository, tag
    return name, "latest"


def _compose_file(paths: list[str]) -> dict | None:
    if not paths:
        return None
    with contextlib.suppress(OSError):
        return {"path": paths[0], "text": Path(paths[0]).read_text()}
    return None


def _compose_secrets(compose_file: dict | None) -> list[str]:
    """Values of secret-named variables in the compose file (the SDK writes the AWS keys there)."""
    from agent.redact import SECRET_NAME

    values = []
    for line in (compose_file or {}).get("text", "").splitlines():
        match = re.match(r"\s*-?\s*([A-Za-z_][\w]*)=(.+)$", line)
        if match and SECRET_NAME.search(match.group(1)):
            values.append(match.group(2).strip().strip("'\""))
    return values


def _df_h() -> str:
    try:
        done = subprocess.run(["df", "-h"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"df -h failed: {exc}"
    return done.stdout


def _disk(role: str, path: str) -> dict:
    usage = disks.fs_usage(path)
    if usage is None:
        return {"role": role, "path": path, "total": None, "used": None, "free": None, "percent": None}
    return {"role": role, "path": path, "total": usage.total, "used": usage.used, "free": usage.free,
            "percent": usage.percent}  # fmt: skip
