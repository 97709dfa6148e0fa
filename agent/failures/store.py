"""Failure reports for local-mode and managed calls: where they are stored, how they are listed and shown.

agent.failures.evidence gathers a failure's evidence and agent.failures.classify names its cause; `save`
stores the report (agent.failures.types.Report), redacted once on its way out, under
`<state>/failures/<UTC time>-<id>/`: report.json, report.txt and each container's full log (the directory
names sort by time, so the newest report is found without reading the others). Listing and reading
reports needs none of the heavy modules, so `smdiag last-failure` starts fast.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING

from agent import fileops
from agent.disks import human_bytes
from agent.errors import Failed
from agent.redact import SECRET_NAME, Redactor

if TYPE_CHECKING:  # annotations only: `last-failure` reads a report without building one (start-up time)
    from agent.failures.types import ComposeFile, Report

# ---------------------------------------------------------------------------------------------- storage

TURN_REPORTS_ON = (
    "turn failure reports on: `smdiag kernels enable`, then restart the kernel; or, for this session only, "
    "`%load_ext agent` in the notebook"
)
"""How a failed local-mode call gets its report: every message that finds none says it."""


def failures_dir(state_dir: Path) -> Path:
    return state_dir / "failures"


def new_report_dir(state_dir: Path, when: float) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(when))
    directory = failures_dir(state_dir) / f"{stamp}-{secrets.token_hex(3)}"
    failures_dir(state_dir).mkdir(parents=True, exist_ok=True, mode=0o700)
    directory.mkdir(mode=0o700)
    os.chmod(directory, 0o700)
    return directory


def save(report: Report, full_logs: dict[str, str], state_dir: Path) -> tuple[Path, dict]:
    """Store `report` and each container's full log in a new report directory, redacted here (where they
    leave the process) and only here; the directory and the report as stored."""
    directory = new_report_dir(state_dir, report.time_epoch)
    report = dataclasses.replace(report, id=directory.name)
    redactor = Redactor.from_environment().with_secrets(_compose_secrets(report.evidence.compose_file))
    stored = redactor.value(report.to_dict())
    write_logs(directory, full_logs, redactor.text)
    fileops.write_json(directory / "report.json", stored, mode=0o600)
    fileops.atomic_write(directory / "report.txt", format_report(stored), mode=0o600)
    return directory, stored


def _compose_secrets(compose_file: ComposeFile | None) -> list[str]:
    """Values of secret-named variables in the compose file (the SDK writes the AWS keys there)."""
    values = []
    for line in compose_file.text.splitlines() if compose_file else []:
        match = re.match(r"\s*-?\s*([A-Za-z_][\w]*)=(.+)$", line)
        if match and SECRET_NAME.search(match.group(1)):
            values.append(match.group(2).strip().strip("'\""))
    return values


def write_logs(directory: Path, logs: dict[str, str], redact) -> None:
    """Each container's full log as `<directory>/containers/<name>.log`, through `redact`, files 0600."""
    if not logs:
        return
    (directory / "containers").mkdir(mode=0o700, exist_ok=True)
    for name, text in logs.items():
        fileops.atomic_write(directory / "containers" / f"{_safe_name(name)}.log", redact(text), mode=0o600)


def _safe_name(name: str) -> str:
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
    """The newest readable report: directory names sort by time, so only the newest are read."""
    directory = failures_dir(state_dir)
    for entry in sorted(directory.iterdir(), reverse=True) if directory.is_dir() else []:
        try:
            return entry, json.loads((entry / "report.json").read_text())
        except (OSError, ValueError):
            continue
    raise Failed(f"no failure has been recorded in {directory}", TURN_REPORTS_ON)


def _raised(exception: dict) -> str:
    """The SDK's exception; a call the SDK wrongly let return (a deploy answered by another endpoint) has none."""
    if not exception.get("type"):
        return f"exception: none, the call returned ({exception.get('message')})"
    return f"exception: {exception['type']}: {exception.get('message')}"


def format_report(report: dict, log_lines: int = 20) -> str:
    call = report.get("call") or {}
    class_name = call.get("class_name", call.get("class"))  # a report stored before the typed facts: "class"
    remote = report.get("remote")
    if remote:
        return "\n".join([f"{report.get('time')}  {_remote_title(remote)}", *_verdict(report),
                          *_remote_lines(report, log_lines), *_not_gathered(report)]) + "\n"  # fmt: skip
    lines = [
        f"{report.get('time')}  {call.get('kind')} of {class_name} ({call.get('instance_type')}) failed",
        *_verdict(report),
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
    lines += _not_gathered(report)
    if report.get("compose_output") and log_lines:
        lines += ["compose:", *(f"    | {line}" for line in report["compose_output"][-log_lines:])]
    for container in report.get("containers") or []:
        limits = container.get("limits") or {}
        lines.append(
            f"container {container['name']} ({container.get('image')}): exit {container.get('exit_code')}"
            + (", OOM-killed" if container.get("oom_killed") else "")
            + (f", memory limit {human_bytes(limits['memory'])}" if limits.get("memory") else "")
            + (f", shm {human_bytes(limits['shm_size'])}" if limits.get("shm_size") else "")
            + (f", error: {container['error']}" if container.get("error") else "")
        )
        for line in (container.get("logs") or [])[-log_lines:] if log_lines else []:
            lines.append(f"    | {line}")
    if report.get("df_h"):
        lines += ["df -h:", *("    " + line for line in report["df_h"].splitlines())]
    return "\n".join(lines) + "\n"


def _verdict(report: dict) -> list[str]:
    """Category, summary, hint, and the exception (none for a job read after the fact: `smdiag job`)."""
    exception = report.get("exception") or {}
    return [
        f"category: {report.get('category')}",
        f"summary:  {report.get('summary')}",
        f"hint:     {report.get('hint')}",
        *([_raised(exception)] if exception.get("type") or exception.get("message") else []),
    ]


def _not_gathered(report: dict) -> list[str]:
    return [f"not gathered: {source}: {error}" for source, error in (report.get("evidence_errors") or {}).items()]


# ------------------------------------------------------------------------------ managed jobs and endpoints


def _remote_title(remote: dict) -> str:
    what = "endpoint" if remote.get("resource") == "endpoint" else f"{remote.get('resource')} job"
    return f"managed {what} {remote.get('name') or '(not created)'} in {remote.get('region')}"


def _remote_lines(report: dict, log_lines: int) -> list[str]:
    """A managed job's section: its status, FailureReason, the Create refusal and the quota, and the host
    that failed first (its first error line and its last lines), then the other hosts in one line each."""
    from agent.remote.evidence import KINDS  # only for a managed job's report

    remote, lines = report["remote"], []
    job = remote.get("job") or {}
    kind = KINDS.get(remote.get("resource"))
    if job and kind is not None:
        status = job.get(kind.status)
        secondary = job.get("SecondaryStatus")
        lines.append(f"status:   {status}" + (f" / {secondary}" if secondary and secondary != status else ""))
        trial = job.get("FailedTrainingJob") or {}
        for reason in filter(None, [job.get("FailureReason"), trial.get("FailureReason")]):
            lines.append(f"reason:   {' '.join(reason.split())}")
    refusal = remote.get("refusal")
    if refusal:
        lines.append(f"refused:  {refusal.get('operation')}: {refusal.get('code')}: {refusal.get('message')}")
    quota = remote.get("quota")
    if quota:
        lines.append(f"quota:    {quota.get('name')}: {quota.get('value')} applied ({quota.get('code')})")
    hosts = remote.get("logs") or []
    failed = [h for h in hosts if h.get("first_error_time") is not None]
    # no host's error line (a stall, a stop at the max runtime): the host that wrote last shows how it ended
    last_written = max(hosts, key=lambda h: h.get("last_time") or 0.0, default=None)
    first = min(failed, key=lambda h: h["first_error_time"]) if failed else last_written
    if first is not None:
        if first.get("first_error"):
            when = time.strftime("%H:%M:%S", time.gmtime(first["first_error_time"]))
            lines.append(f"first failing host: {first.get('host')} at {when}Z: {first['first_error']}")
        lines.append(f"log {first.get('stream')}:")
        lines += [f"    | {line}" for line in (first.get("lines") or [])[-log_lines:]] if log_lines else []
    others = sorted((h for h in failed if h is not first), key=lambda h: h["first_error_time"])
    lines += [f"log {host.get('stream')}: {host['first_error']}" for host in others]
    quiet = len(hosts) - len(others) - (first is not None)
    if quiet:
        lines.append(f"{quiet} other host stream(s) with no error line")
    if job and not hosts and "logs" not in (report.get("evidence_errors") or {}):
        lines.append("logs:     no log stream found (the job may have run no container)")
    return lines
