"""Gathering a failure's evidence: a declared list of sources, each bounded in time and size.

Input is what the guest saw in the user's process (agent.guest.facts.FailureFacts: the call, the SDK's
exception, compose's streamed output, pull errors the SDK would have lost); output is the typed `Evidence`
(agent.failures.types). Each source of `SOURCES` fills one field, or leaves it empty and says why in
`evidence_errors`: a report is written even when the engine is down or a disk hangs. Evidence stays by
source — the engine's facts, compose's own lines, each container's own output, the SDK's exception, the
disks — because agent.failures.classify lets each rule read only the sources its cause can speak through.
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

from agent import container_logs, disks, engine, platform
from agent.errors import SmdiagError
from agent.failures.types import (
    ComposeFile,
    ComposeFound,
    Container,
    Disk,
    DockerFacts,
    Evidence,
    FailureFacts,
    KeptContainer,
    PullError,
)
from agent.host import compose
from agent.imageref import split_image_ref
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
    """What the sources share: the guest's facts, the settings, the engine client (made once), and what one
    source leaves for another (the full container logs, for the report's files)."""

    facts: FailureFacts
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
        for raw in self.facts.compose_stream:
            line = ANSI.sub("", raw)
            found = CONTAINER_LINE.match(line)
            if found and (found.group(1) in names or not names):
                self.streamed.setdefault(found.group(1), []).append(found.group(2))
            else:
                self.compose_lines.append(line)

    @functools.cached_property
    def compose_paths(self) -> list[str]:
        found = list(self.facts.compose_files)
        found += COMPOSE_PATH.findall(self.facts.exception.message or "")
        return [p for p in dict.fromkeys(found) if Path(p).is_file()]

    @functools.cached_property
    def services(self) -> list[dict]:
        """container_name and image of every service in the compose files this call wrote."""
        import yaml  # lazy: a managed call's report never reads compose files

        services = []
        for path in self.compose_paths:
            with contextlib.suppress(OSError, yaml.YAMLError, AttributeError):
                for name, service in (yaml.safe_load(Path(path).read_text()).get("services") or {}).items():
                    services.append({"service": name, "container_name": service.get("container_name"),
                                     "image": service.get("image")})  # fmt: skip
        return services

    def client(self):
        """The engine's client, connected once; raises the engine's reason when it cannot be reached."""
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
    """Past this the field is left empty and gathering moves on (the source's thread is left to end alone)."""
    empty: Callable[[str], object] = lambda error: None
    """The field's value when the source failed, from its error (kept under `evidence_errors` too)."""
    says_its_error: bool = False
    """The empty value itself says the error (the engine's): not repeated under `evidence_errors`."""


def _docker(g: Gathering) -> DockerFacts:
    try:
        facts = engine.describe(g.client(), g.settings.docker_host)
    except SmdiagError as exc:
        return DockerFacts(error=exc.problem)
    g.root_dir = facts.root_dir or g.root_dir
    return DockerFacts(version=facts.version, root_dir=facts.root_dir, host=g.settings.docker_host)


def _containers(g: Gathering) -> list[Container]:
    """The engine's facts and each container's own output (its log), for the containers of this call."""
    names = [s.get("container_name") for s in g.services]
    found = []
    with contextlib.suppress(SmdiagError):  # the engine's reason is the `docker` field's; the stream remains
        for container in container_logs.call_containers(g.client(), names, g.facts.started):
            facts, text = container_logs.snapshot(container)
            if text is not None:
                g.full_logs[container.name] = text
            found.append(Container.from_dict(facts))
    seen = {c.name for c in found}
    found += [_kept(c) for c in g.facts.kept_containers if c.name not in seen]  # auto-removed: the guest kept them
    for name, lines in g.streamed.items():  # gone from the engine: what compose streamed of it
        if not any(_same_container(name, c.name) for c in found):
            found.append(Container(name, logs=lines[-container_logs.LOG_LINES :], source="compose stream"))
    return found


def _kept(kept: KeptContainer) -> Container:
    return Container(kept.name or "?", kept.image, kept.status, kept.exit_code, kept.oom_killed, kept.error,
                     logs=kept.logs, source="guest")  # fmt: skip


def _same_container(streamed: str, engine_name: str) -> bool:
    """Whether compose's stream prefix names this engine container: compose v1 names it
    `<project>_<service>_<n>` and streams `<service>_<n>`; v2 names `<service>` (or `<project>-<service>-<n>`)."""
    pattern = rf"(?:[\w.-]+[_-])?{re.escape(streamed)}(?:[_-]\d+)?"
    return engine_name.startswith(streamed) or re.fullmatch(pattern, engine_name) is not None


def _pull_errors(g: Gathering) -> list[PullError]:
    """The engine's own pull errors: as the guest kept them (the SDK's `docker pull`), else as compose
    relayed them in its own lines, else (compose's stream lost them) asked of the engine with one more
    pull, bounded. Only a silent pull costs that second pull: it may be gigabytes."""
    if g.facts.pull_errors:
        return list(g.facts.pull_errors)
    streamed = _streamed_pull_errors(g)
    if streamed or not _looks_like_pull_failure(g):
        return streamed
    import docker.errors  # lazy: a managed call's report never asks the engine

    images = [*g.facts.call.images, *(s["image"] for s in g.services)]
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
                    errors.append(PullError(image, event["error"].strip()))
                    break
                if time.monotonic() > deadline:
                    break
        except docker.errors.APIError as exc:
            errors.append(PullError(image, str(exc.explanation or exc)))
    return errors


def _streamed_pull_errors(g: Gathering) -> list[PullError]:
    """The pull errors compose printed: the first line of an unfinished pull that is not its progress (a
    pull that finished, or gave way to creating the containers, had none: a later error is a container's).
    A pull whose image cannot be named is left to the second pull."""
    images_of = {s["service"]: s["image"] for s in g.services} | {
        s["container_name"]: s["image"] for s in g.services if s.get("container_name")
    }
    only = list(dict.fromkeys(filter(None, [*g.facts.call.images, *images_of.values()])))
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
            errors.append(PullError(pulling, framed.group("error") if framed else line.strip()))
            pulling = None
    return errors


def _looks_like_pull_failure(g: Gathering) -> bool:
    text = (g.facts.exception.message or "") + "\n".join(g.compose_lines)
    return bool(re.search(r"docker pull|pull access|error pulling|manifest|Pulling", text, re.I))


def _compose_output(g: Gathering) -> list[str]:
    return g.compose_lines[-container_logs.LOG_LINES :]


def _compose_file(g: Gathering) -> ComposeFile | None:
    if not g.compose_paths:
        return None
    return ComposeFile(g.compose_paths[0], Path(g.compose_paths[0]).read_text())


def _compose_found(g: Gathering) -> ComposeFound | None:
    """When the SDK found no Compose: what is there (a plugin it refused, or nothing), probed as it probes."""
    if "is not installed" not in (g.facts.exception.message or "").lower():
        return None
    return ComposeFound(**compose.probe_compose().to_dict())


def _disks(g: Gathering) -> list[Disk]:
    paths = [
        ("docker_root", g.root_dir),
        ("container_root", g.facts.container_root or _staging_root(g.compose_paths)),
        ("ebs", str(g.settings.ebs_mount)),
    ]
    return [_disk(role, path) for role, path in paths]


def _staging_root(compose_paths: list[str]) -> str:
    """Where the SDK staged this call: the parent of the temporary directory holding its compose file. (The
    temp dir asked anew would skip a TMPDIR that is full, the very case to report.)"""
    if compose_paths:
        return str(Path(compose_paths[0]).parent.parent)
    return tempfile.gettempdir()


def _disk(role: str, path: str) -> Disk:
    usage = disks.fs_usage(path)
    if usage is None:
        return Disk(role, path)
    return Disk(role, path, usage.total, usage.used, usage.free, usage.percent)


def _df_h(g: Gathering) -> str:
    done = subprocess.run(["df", "-h"], capture_output=True, text=True, timeout=5)
    return done.stdout


def _nothing(error: str) -> list:
    return []


SOURCES = (
    Source("docker", _docker, ENGINE_TIMEOUT_S * 2, lambda error: DockerFacts(error=error), says_its_error=True),
    Source("containers", _containers, 20, _nothing),
    Source("pull_errors", _pull_errors, PULL_RETRY_S + ENGINE_TIMEOUT_S, _nothing),
    Source("compose_output", _compose_output, 1, _nothing),
    Source("compose_file", _compose_file, 5),
    Source("compose", _compose_found, 15),
    Source("disks", _disks, 10, _nothing),
    Source("df_h", _df_h, 6, lambda error: ""),
)
"""Each field of the evidence gathered here and where it comes from, in the order they are asked."""


def _bounded(source: Source, gathering: Gathering) -> tuple[object, str | None]:
    """The source's value, or its empty value and why: it raised, or overran its time."""
    result: dict = {}

    def run() -> None:
        try:
            result["value"] = source.collect(gathering)
        except Exception as exc:  # noqa: BLE001 - a source that fails becomes a field saying why
            problem = getattr(exc, "problem", None) or f"{type(exc).__name__}: {exc}"
            result["error"] = str(problem)[:500]

    worker = threading.Thread(target=run, name=f"evidence-{source.field}", daemon=True)
    worker.start()
    worker.join(source.timeout_s)
    if "value" in result:
        return result["value"], None
    error = result.get("error", f"no answer within {source.timeout_s:g}s")
    return source.empty(error), error


def gather(facts: FailureFacts, settings: Settings) -> tuple[Evidence, dict[str, str]]:
    """The evidence of the failure the guest saw, and each container's full log (for the report's files).
    A managed (remote) call's is AWS's (agent.remote.evidence): this host's engine, compose and disks are
    not the job's."""
    if facts.remote is not None:
        from agent.remote.evidence import gather_remote  # boto3 and the AWS reads only for a remote call

        remote, errors, seconds = gather_remote(facts, settings)
        found = Evidence(facts.call, facts.exception, remote=remote, evidence_errors=errors, evidence_seconds=seconds)
        return found, {}
    gathering = Gathering(facts, settings)
    found: dict[str, object] = {}
    errors: dict[str, str] = {}
    seconds: dict[str, float] = {}
    try:
        for source in SOURCES:
            started = time.monotonic()
            found[source.field], error = _bounded(source, gathering)
            seconds[source.field] = round(time.monotonic() - started, 3)
            if error is not None and not source.says_its_error:
                errors[source.field] = error
    finally:
        gathering.close()
    evidence = Evidence(
        facts.call, facts.exception, **found, serving_failed=facts.serving_failed, answered_by=facts.answered_by,
        platform=platform.detect(settings).kind, evidence_errors=errors, evidence_seconds=seconds,
    )  # fmt: skip
    return evidence, gathering.full_logs
