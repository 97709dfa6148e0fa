"""Gathering a failure's evidence: a declared list of sources, each bounded in time and size.

Input is the capture the wrapper made in the user's process (`autowrap.FailureFacts`: the call, the SDK's
exception, compose's streamed output, pull errors the SDK would have lost); output is the stored report.
Each source of `SOURCES` fills one field of the report, or that field says why it could not (`{"error":
...}`): a report is written even when the engine is down or a disk hangs. Evidence stays by source —
the engine's facts, compose's own lines, each container's own output, the SDK's exception, the disks —
because agent.classify lets each rule read only the sources its cause can speak through.
"""

from __future__ import annotations

import contextlib
import functools
import re
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from agent import container_logs, disks, platform
from agent.failures import classify
from agent.failures import store as failures
from agent.guest.wrapper import FailureFacts
from agent.imageref import split_image_ref
from agent.redact import Redactor
from agent.settings import Settings

ENGINE_TIMEOUT_S = 5
PULL_RETRY_S = 30
COMPOSE_PATH = re.compile(r"(/[^\s,'\"\]]*docker-compose\.ya?ml)")
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
PULL_STARTED = re.compile(
    r"^\s*Pulling (?P<service>\S+) \((?P<image>[^)\s]+)\)\.\.\.\s*$|"
    r"^\s*(?:\S\s+)?(?P<v2>[\w.-]+) Pulling\s*(?:[\d.]+m?s)?$"
)
"""compose announcing a pull: v1 `Pulling algo-1-abcde (repo/image:tag)...`, v2 ` algo-1-abcde Pulling`."""
PULL_ENDED = re.compile(
    r"^Status: (?:Downloaded newer image|Image is up to date) for |^\s*(?:\S\s+)?[\w.-]+ Pulled\b|"
    r"^\s*(?:Creating|Recreating|Starting|Attaching to)\b|"
    r"\b(?:Container|Network|Volume)\b.*\b(?:Creat|Start)(?:ing|ed)\b"
)
"""compose saying the pull is over: the engine's last status of a pull, a v2 `Pulled`, or containers made."""
PULL_PROGRESS = re.compile(
    r"^\s*(?:\S\s+)?[\w.-]+:? (?:Pulling|Waiting|Downloading|Verifying Checksum|Download complete|Extracting|"
    r"Pull complete|Already exists|Retrying in)\b|^(?:Digest|Status): |^\[\+\] |^WARNING\b|"
    r"^\s*(?:\S\s+)?[\w.-]+ Error\s*(?:[\d.]+m?s)?$"
)
"""A pull's progress as compose prints it (v1 `<layer>: <status>`, v2 ` <layer> <status>`), and v2's
` ✘ <service> Error` whose message is on the next line: every other line of an unfinished pull is its error."""
COMPOSE_ERROR = (
    re.compile(r"^\s*ERROR:\s*(?:for \S+\s+)?(?P<error>.*\S)"),
    re.compile(r"^\s+(?:\S\s+)?[\w.-]+ Error\s+(?P<error>.*?\S)(?:\s+[\d.]+m?s)?\s*$"),
)
"""compose's own framing of a pull's error, taken off: v1's `ERROR: <message>` (`ERROR: for <service>  ...`;
a failed layer's message comes bare), v2's progress line ` ✘ <service> Error <message>  0.9s` (its closing
`Error response from daemon: <message>` is kept whole: it is the engine's)."""
CONTAINER_LINE = re.compile(r"^([\w.-]+?)(?:_\d+)?\s+\|\s?(.*)$")
"""How compose prefixes a container's own output in its stream: `algo-1-abcde  | text` (v1 adds `_1`)."""


@dataclass
class Gathering:
    """What the sources share: the capture, the settings, the engine client (made once), and what one
    source leaves for another (the full container logs, for the report's files)."""

    capture: FailureFacts
    settings: Settings
    full_logs: dict[str, str] = field(default_factory=dict)
    streamed: dict[str, list[str]] = field(default_factory=dict)
    """Each container's output as compose streamed it, for a container the engine no longer has."""
    compose_lines: list[str] = field(default_factory=list)
    """compose's own lines: its stream without the containers' output."""
    root_dir: str = "/var/lib/docker"
    """The engine's data-root once `docker` asked it (the default until then, or when it cannot be asked)."""
    _client: object = None
    _unreachable: Exception | None = None

    def __post_init__(self) -> None:
        names = {s["container_name"] for s in self.services if s.get("container_name")} | {
            s["service"] for s in self.services
        }
        for raw in self.capture.compose_output:
            line = ANSI.sub("", raw)
            found = CONTAINER_LINE.match(line)
            if found and (found.group(1) in names or not names):
                self.streamed.setdefault(found.group(1), []).append(found.group(2))
            else:
                self.compose_lines.append(line)

    @functools.cached_property
    def compose_paths(self) -> list[str]:
        found = list(self.capture.compose_files)
        found += COMPOSE_PATH.findall(str(self.capture.exception.get("message") or ""))
        return [p for p in dict.fromkeys(found) if Path(p).is_file()]

    @functools.cached_property
    def services(self) -> list[dict]:
        """container_name and image of every service in the compose files this call wrote."""
        import yaml

        services = []
        for path in self.compose_paths:
            with contextlib.suppress(OSError, yaml.YAMLError, AttributeError):
                for name, service in (yaml.safe_load(Path(path).read_text()).get("services") or {}).items():
                    services.append({"service": name, "container_name": service.get("container_name"),
                                     "image": service.get("image")})  # fmt: skip
        return services

    def client(self):
        """The engine's client, connected once; raises the engine's reason when it cannot be reached."""
        from agent import engine

        if self._unreachable is not None:  # asked once: a down engine costs one timeout, not one per source
            raise self._unreachable
        if self._client is None:
            try:
                self._client = engine.Engine.for_settings(self.settings, ENGINE_TIMEOUT_S).client
            except Exception as exc:
                self._unreachable = exc
                raise
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


@dataclass(frozen=True)
class Source:
    field: str
    collect: Callable[[Gathering], object]
    timeout_s: float
    """Past this the field says so and gathering moves on (the source's thread is left to end alone)."""
    empty: object = None
    """The field's value when the source failed (its error is kept under `evidence_errors`)."""


def _docker(g: Gathering) -> dict:
    from agent import engine
    from agent.errors import SmdiagError

    try:
        facts = engine.describe(g.client(), g.settings.docker_host)
    except SmdiagError as exc:
        return {"error": exc.problem}
    g.root_dir = facts.root_dir or g.root_dir
    return {"version": facts.version, "root_dir": facts.root_dir, "host": g.settings.docker_host}


def _containers(g: Gathering) -> list[dict]:
    """The engine's facts and each container's own output (its log), for the containers of this call."""
    from agent.errors import SmdiagError

    names = [s.get("container_name") for s in g.services]
    found = []
    with contextlib.suppress(SmdiagError):  # the engine's reason is the `docker` field's; the stream remains
        for container in container_logs.call_containers(g.client(), names, g.capture.started):
            facts, text = container_logs.snapshot(container)
            if text is not None:
                g.full_logs[container.name] = text
            found.append(facts)
    seen = {c["name"] for c in found}
    found += [c for c in g.capture.containers if c.get("name") not in seen]  # auto-removed: the wrapper kept them
    for name, lines in g.streamed.items():  # gone from the engine: what compose streamed of it
        if not any(_same_container(name, c["name"]) for c in found):
            found.append({"name": name, "source": "compose stream", "status": None, "exit_code": None,
                          "oom_killed": False, "error": None, "logs": lines[-container_logs.LOG_LINES :]})  # fmt: skip
    return found


def _same_container(streamed: str, engine_name: str) -> bool:
    """Whether compose's stream prefix names this engine container: compose v1 names it
    `<project>_<service>_<n>` and streams `<service>_<n>`; v2 names `<service>` (or `<project>-<service>-<n>`)."""
    pattern = rf"(?:[\w.-]+[_-])?{re.escape(streamed)}(?:[_-]\d+)?"
    return engine_name.startswith(streamed) or re.fullmatch(pattern, engine_name) is not None


def _pull_errors(g: Gathering) -> list[dict]:
    """The engine's own pull errors, `[{image, error}]`: as the wrapper kept them (the SDK's `docker pull`),
    else as compose relayed them in its own lines, else (compose's stream lost them) asked of the engine
    with one more pull, bounded. Only a silent pull costs that second pull: it may be gigabytes."""
    if g.capture.pull_errors:
        return list(g.capture.pull_errors)
    streamed = _streamed_pull_errors(g)
    if streamed or not _looks_like_pull_failure(g):
        return streamed
    import docker.errors

    images = [*g.capture.call.get("images", []), *(s["image"] for s in g.services)]
    errors = []
    deadline = time.monotonic() + PULL_RETRY_S
    for image in filter(None, dict.fromkeys(images)):
        with contextlib.suppress(docker.errors.ImageNotFound):
            g.client().images.get(image)
            continue
        repository, tag = split_image_ref(image)
        try:
            for event in g.client().api.pull(repository, tag=tag or "latest", stream=True, decode=True):
                if "error" in event:
                    errors.append({"image": image, "error": event["error"].strip()})
                    break
                if time.monotonic() > deadline:
                    break
        except docker.errors.APIError as exc:
            errors.append({"image": image, "error": str(exc.explanation or exc)})
    return errors


def _streamed_pull_errors(g: Gathering) -> list[dict]:
    """The pull errors compose printed: the first line of an unfinished pull that is not its progress (a
    pull that finished, or gave way to creating the containers, had none: a later error is a container's).
    A pull whose image cannot be named is left to the second pull."""
    images_of = {s["service"]: s["image"] for s in g.services} | {
        s["container_name"]: s["image"] for s in g.services if s.get("container_name")
    }
    only = list(dict.fromkeys(filter(None, [*g.capture.call.get("images", []), *images_of.values()])))
    sole = only[0] if len(only) == 1 else None
    lines = g.compose_lines
    pulling = sole if lines and PULL_PROGRESS.match(lines[0]) else None  # the kept lines begin mid-pull
    errors = []
    for line in lines:
        started = PULL_STARTED.match(line)
        if started:
            pulling = started.group("image") or images_of.get(started.group("service") or started.group("v2")) or sole
        elif pulling is None:
            continue
        elif PULL_ENDED.search(line):
            pulling = None
        elif not PULL_PROGRESS.match(line) and line.strip():
            framed = next(filter(None, (pattern.match(line) for pattern in COMPOSE_ERROR)), None)
            errors.append({"image": pulling, "error": framed.group("error") if framed else line.strip()})
            pulling = None
    return errors


def _looks_like_pull_failure(g: Gathering) -> bool:
    text = str(g.capture.exception.get("message") or "") + "\n".join(g.compose_lines)
    return bool(re.search(r"docker pull|pull access|error pulling|manifest|Pulling", text, re.I))


def _compose_output(g: Gathering) -> list[str]:
    return g.compose_lines[-container_logs.LOG_LINES :]


def _compose_file(g: Gathering) -> dict | None:
    if not g.compose_paths:
        return None
    return {"path": g.compose_paths[0], "text": Path(g.compose_paths[0]).read_text()}


def _compose_choice(g: Gathering) -> dict | None:
    """When the SDK found no Compose: what is there (a plugin it refused, or nothing), probed as it probes."""
    if "is not installed" not in str(g.capture.exception.get("message") or "").lower():
        return None
    from agent.host import compose

    return compose.probe_compose().to_dict()


def _disks(g: Gathering) -> list[dict]:
    paths = [
        ("docker_root", g.root_dir),
        ("container_root", g.capture.container_root or _staging_root(g.compose_paths)),
        ("ebs", str(g.settings.ebs_mount)),
    ]
    return [_disk(role, path) for role, path in paths]


def _staging_root(compose_paths: list[str]) -> str:
    """Where the SDK staged this call: the parent of the temporary directory holding its compose file. (The
    temp dir asked anew would skip a TMPDIR that is full, the very case to report.)"""
    if compose_paths:
        return str(Path(compose_paths[0]).parent.parent)
    return tempfile.gettempdir()


def _disk(role: str, path: str) -> dict:
    usage = disks.fs_usage(path)
    if usage is None:
        return {"role": role, "path": path, "total": None, "used": None, "free": None, "percent": None}
    return {"role": role, "path": path, "total": usage.total, "used": usage.used, "free": usage.free,
            "percent": usage.percent}  # fmt: skip


def _df_h(g: Gathering) -> str:
    done = subprocess.run(["df", "-h"], capture_output=True, text=True, timeout=5)
    return done.stdout


SOURCES = (
    Source("docker", _docker, ENGINE_TIMEOUT_S * 2),
    Source("containers", _containers, 20, []),
    Source("pull_errors", _pull_errors, PULL_RETRY_S + ENGINE_TIMEOUT_S, []),
    Source("compose_output", _compose_output, 1, []),
    Source("compose_file", _compose_file, 5),
    Source("compose", _compose_choice, 15),
    Source("disks", _disks, 10, []),
    Source("df_h", _df_h, 6, ""),
)
"""Each field of a report and where it comes from, in the order they are asked."""


def _bounded(source: Source, gathering: Gathering) -> object:
    """The source's field, or `{"error": ...}` when it raised or overran its time."""
    result: dict = {}

    def run() -> None:
        try:
            result["value"] = source.collect(gathering)
        except Exception as exc:  # noqa: BLE001 - a source that fails becomes a field saying why
            problem = getattr(exc, "problem", None) or f"{type(exc).__name__}: {exc}"
            result["value"] = {"error": str(problem)[:500]}

    worker = threading.Thread(target=run, name=f"evidence-{source.field}", daemon=True)
    worker.start()
    worker.join(source.timeout_s)
    return result.get("value", {"error": f"no answer within {source.timeout_s:g}s"})


def collect(capture: FailureFacts, settings: Settings) -> tuple[dict, dict[str, str]]:
    """The report (classified, not yet redacted) and each container's full log."""
    gathering = Gathering(capture, settings)
    report = {
        "id": None,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "time_epoch": time.time(),
        "call": capture.call,
        "exception": capture.exception,
    }
    seconds = report["evidence_seconds"] = {}
    try:
        for source in SOURCES:
            started = time.monotonic()
            value = _bounded(source, gathering)
            seconds[source.field] = round(time.monotonic() - started, 3)
            if isinstance(value, dict) and "error" in value and source.field != "docker":
                report.setdefault("evidence_errors", {})[source.field] = value["error"]
                value = source.empty
            if value is not None or source.field != "compose":
                report[source.field] = value
    finally:
        gathering.close()
    diagnosis = classify.classify(
        {
            "call": capture.call,
            "exception": capture.exception,
            "engine_error": report["docker"].get("error"),
            "pull_errors": report["pull_errors"],
            "containers": report["containers"],
            "compose_output": report["compose_output"],
            "serving_failed": capture.serving_failed,
            "compose": report.get("compose"),
            "disks": report["disks"],
            "platform": platform.detect(settings).kind,
        }
    )
    report.update(category=diagnosis.category, summary=diagnosis.summary, hint=diagnosis.hint)
    return report, gathering.full_logs


def record(capture: FailureFacts, settings: Settings) -> tuple[Path, dict]:
    """Collect, classify and store; returns the report directory and the report as stored (redacted)."""
    report, full_logs = collect(capture, settings)
    directory = failures.new_report_dir(settings.state_dir, report["time_epoch"])
    report["id"] = directory.name
    compose_file = report.get("compose_file") if isinstance(report.get("compose_file"), dict) else None
    redactor = Redactor.from_environment().with_secrets(_compose_secrets(compose_file))
    return directory, failures.write_report(directory, report, full_logs, redactor)


def _compose_secrets(compose_file: dict | None) -> list[str]:
    """Values of secret-named variables in the compose file (the SDK writes the AWS keys there)."""
    from agent.redact import SECRET_NAME

    values = []
    for line in (compose_file or {}).get("text", "").splitlines():
        match = re.match(r"\s*-?\s*([A-Za-z_][\w]*)=(.+)$", line)
        if match and SECRET_NAME.search(match.group(1)):
            values.append(match.group(2).strip().strip("'\""))
    return values
