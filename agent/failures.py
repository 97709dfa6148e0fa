"""Failure reports for local-mode fit/deploy/predict: what failed, why, and what to do.

`classify` is pure: it reads the evidence (the exception, the engine's pull errors, the containers' exit
codes and logs, compose's output) and names one category with a summary and a concrete hint. `collect`
gathers that evidence from the edges (engine, compose file, filesystems) and `write_report` stores it,
redacted, under `<state>/failures/<UTC time>-<id>/`. Listing and reading reports needs none of the
heavy modules, so `smdiag last-failure` starts fast.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from agent import fileops
from agent.disks import human_bytes
from agent.errors import Failed
from agent.redact import Redactor

LOG_LINES = 200
TRACEBACK_FILE = re.compile(r'^\s*File "([^"]+)", line (\d+)')
EXCEPTION_LINE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning)|\w+Error)(?::\s?(.*))?$")
NETWORK_REFUSED = re.compile(
    r'network "?sagemaker-local"? (was found but has incorrect label|needs to be recreated).*', re.I
)
"""Compose v2+ refusing a network it did not make; v1 refusing one whose driver or options differ."""

HINTS = {
    "disk_full": (
        "the disk is full: run `smdiag fix` to free room (or `smdiag diskguard once`), and move Docker's "
        "data-root to the EBS volume with `sudo smdiag bootstrap`; then run again"
    ),
    "pull_auth": (
        "the registry refused the credentials: for ECR run `aws ecr get-login-password | docker login "
        "--username AWS --password-stdin <registry>` (tokens expire after 12 hours) and check the role's "
        "ECR permissions"
    ),
    "image_not_found": (
        "the image or tag does not exist in its registry: check image_uri, the framework version and the region"
    ),
    "registry_unreachable": "the registry cannot be reached: check the network, the registry address and any proxy",
    "daemon_down": (
        "the Docker engine is not running: run `smdiag fix` to start it (or sudo systemctl start docker), "
        "then run again"
    ),
    "compose_missing": (
        'SageMaker SDK v2 needs `docker compose` whose `version` output contains "v2", or a `docker-compose` '
        "binary on PATH: install docker-compose (e.g. pip install docker-compose, or the v2 plugin)"
    ),
    "compose_unrecognised": (
        'SageMaker SDK v2 accepts the `docker compose` plugin only when its version says "v2": run `smdiag fix` '
        "(it adds a `docker-compose` that runs `docker compose`), then run again"
    ),
    "network_conflict": (
        "a `sagemaker-local` network that Compose did not make (or made differently) is in the way: run "
        "`smdiag fix` (it removes the network when no container uses it), or `docker network rm sagemaker-local`"
    ),
    "script_error": (
        "the entry script failed: fix it at the file and line shown (the full container log is in the report)"
    ),
    "oom_killed": (
        "the container ran out of memory (killed, exit 137): reduce the batch size or data held in memory, "
        "or use a larger instance"
    ),
    "port_in_use": (
        "the serving port is taken (an earlier local endpoint still running?): run `smdiag fix` (it removes "
        "leftover local-mode containers), or delete it with predictor.delete_endpoint(), or stop the container "
        "holding the port (docker ps)"
    ),
    "serving_unhealthy": (
        "the serving container did not answer /ping: read its log in the report (model_fn, the model files, "
        "the inference script's imports)"
    ),
    "unknown": "read the report's exception and container logs (smdiag last-failure --logs 100)",
}


@dataclass(frozen=True)
class Diagnosis:
    category: str
    summary: str
    hint: str


def classify(evidence: dict) -> Diagnosis:
    """One category, a one-line summary and its hint, from the collected evidence. Pure.

    evidence keys: call, exception {type, message}, engine_error, pull_errors [{image, error}],
    containers [{name, exit_code, oom_killed, error, logs}], compose_output [lines], serving_failed,
    compose (what `agent.compose.probe_compose` found, when the SDK found no Compose).
    """
    exception = evidence.get("exception") or {}
    message = f"{exception.get('type', '')}: {exception.get('message', '')}"
    containers = evidence.get("containers") or []
    pulls = evidence.get("pull_errors") or []
    compose_out = "\n".join(evidence.get("compose_output") or [])
    pull_text = "\n".join(p.get("error", "") for p in pulls)
    container_text = ["\n".join([c.get("error") or "", *(c.get("logs") or [])]) for c in containers]
    everything = "\n".join([message, pull_text, compose_out, *container_text])
    lowered = everything.lower()

    if evidence.get("engine_error") or "cannot connect to the docker daemon" in lowered:
        reason = evidence.get("engine_error") or "the engine does not answer"
        return _diagnosis("daemon_down", f"the Docker engine is down: {reason}")
    if "docker compose is not installed" in message.lower():
        seen = (evidence.get("compose") or {}).get("plugin_version")
        if seen:
            return _diagnosis(
                "compose_unrecognised",
                f'SageMaker SDK v2 refuses the Compose plugin: `docker compose version` says {seen!r}, without "v2"',
            )
        return _diagnosis("compose_missing", "no Docker Compose that SageMaker SDK v2 accepts")
    refused = NETWORK_REFUSED.search(compose_out + "\n" + message)
    if refused:
        return _diagnosis("network_conflict", f"Compose refused the sagemaker-local network: {refused.group(0)}")
    if "no space left on device" in lowered or exception.get("errno") == 28:
        where = _first_line_with(everything, "no space left on device")
        return _diagnosis("disk_full", f"no space left on device: {where}")
    pull_evidence = pull_text + "\n" + "\n".join(_pull_lines(compose_out))
    pull_lower = pull_evidence.lower()
    if any(s in pull_lower for s in ("no basic auth credentials", "authorization token has expired", "unauthorized",
                                     "pull access denied", "denied:")):  # fmt: skip
        return _diagnosis("pull_auth", f"the registry refused the pull: {_first_meaningful(pull_evidence)}")
    if any(s in pull_lower for s in ("manifest unknown", "not found", "does not exist", "no such image")):
        return _diagnosis("image_not_found", f"the image was not found: {_first_meaningful(pull_evidence)}")
    if any(s in pull_lower for s in ("connection refused", "no such host", "i/o timeout", "dial tcp", "tls handshake",
                                     "network is unreachable")):  # fmt: skip
        return _diagnosis("registry_unreachable", f"the registry is unreachable: {_first_meaningful(pull_evidence)}")
    killed = next((c for c in containers if c.get("oom_killed") or c.get("exit_code") == 137), None)
    if killed:
        return _diagnosis("oom_killed", f"container {killed['name']} was killed for lack of memory (exit 137)")
    if any(s in lowered for s in ("port is already allocated", "address already in use")):
        return _diagnosis("port_in_use", f"the serving port is taken: {_first_line_with(everything, 'already')}")
    failed = next((c for c in containers if c.get("exit_code") not in (None, 0)), None)
    if evidence.get("call", {}).get("kind") == "deploy" and (evidence.get("serving_failed") or "endpoint" in message):
        name = failed["name"] if failed else (containers[0]["name"] if containers else "the serving container")
        detail = traceback_summary(failed.get("logs") or []) if failed else None
        return _diagnosis(
            "serving_unhealthy",
            f"serving container {name} never answered /ping" + (f": {detail}" if detail else ""),
        )
    if failed:
        detail = traceback_summary(failed.get("logs") or [])
        if detail is None:
            last = next((line for line in reversed(failed.get("logs") or []) if line.strip()), "no output")
            detail = f"exit code {failed['exit_code']}, last output: {last.strip()}"
        return _diagnosis("script_error", f"container {failed['name']} failed: {detail}")
    return _diagnosis("unknown", message.strip(": ") or "the call failed")


def _diagnosis(category: str, summary: str) -> Diagnosis:
    return Diagnosis(category, summary[:500], HINTS[category])


def traceback_summary(lines: list[str]) -> str | None:
    """The user's error from a Python traceback in the logs: 'Error: message (file, line N)'. Pure."""
    start = max((i for i, line in enumerate(lines) if "Traceback (most recent call last)" in line), default=None)
    if start is None:
        return None
    where, error = None, None
    for line in lines[start + 1 :]:
        found = TRACEBACK_FILE.match(line)
        if found:
            where = f"{found.group(1)}, line {found.group(2)}"
            continue
        stripped = line.strip()
        if EXCEPTION_LINE.match(stripped) and not line.startswith((" ", "\t")):
            error = stripped
            break
    if error is None:
        return None
    return f"{error} ({where})" if where else error


def _pull_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if re.search(r"pull|manifest|registry|denied|auth", line, re.I)]


def _first_line_with(text: str, needle: str) -> str:
    return next((line.strip() for line in text.splitlines() if needle in line.lower()), needle)


def _first_meaningful(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


# ---------------------------------------------------------------------------------------------- storage


def failures_dir(state_dir: Path) -> Path:
    return state_dir / "failures"


def new_report_dir(state_dir: Path, when: float) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(when))
    directory = failures_dir(state_dir) / f"{stamp}-{secrets.token_hex(3)}"
    failures_dir(state_dir).mkdir(parents=True, exist_ok=True, mode=0o700)
    directory.mkdir(mode=0o700)
    os.chmod(directory, 0o700)
    return directory


def write_report(directory: Path, report: dict, full_logs: dict[str, str], redactor: Redactor) -> None:
    """report.json, report.txt and each container's full log, redacted, files 0600."""
    report = redactor.value(report)
    if full_logs:
        (directory / "containers").mkdir(mode=0o700, exist_ok=True)
    for name, text in full_logs.items():
        fileops.atomic_write(directory / "containers" / f"{_safe(name)}.log", redactor.text(text), mode=0o600)
    fileops.write_json(directory / "report.json", report, mode=0o600)
    fileops.atomic_write(directory / "report.txt", format_report(report), mode=0o600)


def _safe(name: str) -> str:
    return re.sub(r"[^\w.-]", "_", name) or "container"


def list_reports(state_dir: Path) -> list[dict]:
    """Newest first: id, time, call, category, summary, path of every stored report."""
    found = []
    directory = failures_dir(state_dir)
    if not directory.is_dir():
        return found
    for entry in sorted(directory.iterdir(), reverse=True):
        try:
            report = json.loads((entry / "report.json").read_text())
        except (OSError, ValueError):
            continue
        found.append(
            {
                "id": report.get("id"),
                "time": report.get("time"),
                "call": (report.get("call") or {}).get("kind"),
                "category": report.get("category"),
                "summary": report.get("summary"),
                "path": str(entry),
            }
        )
    return found


def last_report(state_dir: Path) -> tuple[Path, dict]:
    reports = list_reports(state_dir)
    if not reports:
        raise Failed(
            f"no failure has been recorded in {failures_dir(state_dir)}",
            "failures are recorded when a local-mode fit/deploy fails with `import agent.autowrap` active",
        )
    path = Path(reports[0]["path"])
    return path, json.loads((path / "report.json").read_text())


def format_report(report: dict, log_lines: int = 20) -> str:
    call = report.get("call") or {}
    lines = [
        f"{report.get('time')}  {call.get('kind')} of {call.get('class')} ({call.get('instance_type')}) failed",
        f"category: {report.get('category')}",
        f"summary:  {report.get('summary')}",
        f"hint:     {report.get('hint')}",
        f"exception: {(report.get('exception') or {}).get('type')}: {(report.get('exception') or {}).get('message')}",
    ]
    if call.get("step"):
        lines.append(f"step:     {call['step']} of local pipeline {call.get('pipeline')}")
    if call.get("images"):
        lines.append(f"images:   {', '.join(call['images'])}")
    docker = report.get("docker") or {}
    lines.append(
        f"docker:   {docker.get('version')} root {docker.get('root_dir')}"
        if docker.get("version")
        else f"docker:   {docker.get('error')}"
    )
    for pull in report.get("pull_errors") or []:
        lines.append(f"pull {pull['image']}: {pull['error']}")
    for disk in report.get("disks") or []:
        if disk.get("total"):
            lines.append(
                f"disk {disk['role']} {disk['path']}: {disk['percent']:.0f}% used, "
                f"{human_bytes(disk['free'])} free of {human_bytes(disk['total'])}"
            )
    for container in report.get("containers") or []:
        lines.append(
            f"container {container['name']} ({container.get('image')}): exit {container.get('exit_code')}"
            + (", OOM-killed" if container.get("oom_killed") else "")
            + (f", error: {container['error']}" if container.get("error") else "")
        )
        for line in (container.get("logs") or [])[-log_lines:] if log_lines else []:
            lines.append(f"    | {line}")
    if report.get("df_h"):
        lines += ["df -h:", *("    " + line for line in report["df_h"].splitlines())]
    return "\n".join(lines) + "\n"
