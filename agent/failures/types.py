"""The failure pipeline's values, from the kernel to the screen: data only, standard library only.

The guest's facts (agent.guest.facts: the call, the SDK's exception, compose's stream, the engine's pull
errors, the containers it kept) → the recorder's `Evidence`, kept by source → the `Diagnosis` (category,
summary, hint, remedy) → the `Report` stored as report.json. A field has one name on the whole way: the
report's JSON keys are these fields' names. Importing this module does nothing else (the recorder imports
it, and `classify` needs nothing more).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

from agent.guest.facts import Call, FailureFacts, KeptContainer, PullError, RaisedException

__all__ = [
    "Call", "ComposeFile", "ComposeFound", "Container", "Diagnosis", "Disk", "DockerFacts", "Evidence",
    "FailureFacts", "HostLog", "KeptContainer", "Limits", "PullError", "RaisedException", "Remedy",
    "RemoteEvidence", "Report",
]  # fmt: skip


@dataclass(frozen=True)
class DockerFacts:
    """The engine as the recorder found it: its version and data-root, or why it could not be reached."""

    version: str | None = None
    root_dir: str | None = None
    host: str | None = None
    error: str | None = None

    def to_dict(self) -> dict:
        return {key: value for key, value in dataclasses.asdict(self).items() if value is not None}


@dataclass(frozen=True)
class Limits:
    """What the container ran with (HostConfig): the limits a resource failure is measured against."""

    memory: int | None = None
    shm_size: int | None = None
    nano_cpus: int | None = None
    runtime: str | None = None


@dataclass(frozen=True)
class Container:
    """One container of the call: the engine's facts and the tail of the container's own output."""

    name: str
    image: str | None = None
    status: str | None = None
    exit_code: int | None = None
    oom_killed: bool = False
    error: str | None = None
    """The engine's `State.Error`: its reason for a container it could not create or start."""
    limits: Limits = field(default_factory=Limits)
    logs: list[str] = field(default_factory=list)
    logs_error: str | None = None
    """Why the engine could not give the log (the facts above are still its own)."""
    source: str = "engine"
    """`engine`; `guest` (removed by the engine, kept by the guest while it ran); `compose stream` (gone
    from the engine: what compose streamed of it)."""

    @classmethod
    def from_dict(cls, data: dict) -> Container:
        limits = Limits(**_known(Limits, data.get("limits") or {}))
        return cls(**{**_known(cls, data), "limits": limits, "logs": list(data.get("logs") or [])})


@dataclass(frozen=True)
class ComposeFile:
    path: str
    text: str


@dataclass(frozen=True)
class ComposeFound:
    """The Compose that SDK v2 would pick, probed as it probes (agent.host.compose), when it found none."""

    command: list[str] | None = None
    docker_cli: str | None = None
    plugin_version: str | None = None
    standalone: str | None = None


@dataclass(frozen=True)
class Disk:
    role: str
    """docker_root (the engine's data-root), container_root (where the SDK stages the call), ebs."""
    path: str
    total: int | None = None
    used: int | None = None
    free: int | None = None
    percent: float | None = None


@dataclass(frozen=True)
class HostLog:
    stream: str  # "<job>/algo-2-1700000000"
    host: str | None  # "algo-2" (from the stream name), None when not a per-host stream
    lines: list[str]  # the stream's last lines, bounded (REMOTE_LOG_LINES = 200), oldest first
    first_error: str | None = None  # the first line naming an error (Traceback's last, "Error", exit code, SIGABRT)
    first_error_time: float | None = None  # its event timestamp, epoch seconds
    last_time: float | None = None  # the last line's event timestamp: when the host went silent


@dataclass(frozen=True)
class RemoteEvidence:
    resource: str
    name: str | None
    region: str | None
    parameters: dict  # the guest's RemoteCall.parameters
    job: dict | None = None  # the Describe* response, JSON-safe (datetimes as epoch floats), ResponseMetadata dropped
    logs: list[HostLog] = field(default_factory=list)  # one per host stream, read
    refusal: dict | None = None  # Create-time refusal parsed from the exception: {"code", "operation", "message"}
    quota: dict | None = None  # on ResourceLimitExceeded only: {"name", "value", "code"} from Service Quotas


@dataclass
class Evidence:
    """A failure's evidence by source: each rule of agent.failures.classify reads only the sources its cause
    can speak through. A source that could not be asked is empty, and `evidence_errors` says why."""

    call: Call
    exception: RaisedException
    docker: DockerFacts = field(default_factory=DockerFacts)
    containers: list[Container] = field(default_factory=list)
    pull_errors: list[PullError] = field(default_factory=list)
    compose_output: list[str] = field(default_factory=list)
    """compose's own lines: its progress and errors, without the containers' output (that is under each
    container). The guest's `compose_stream` had both, mixed."""
    compose_file: ComposeFile | None = None
    compose: ComposeFound | None = None
    disks: list[Disk] = field(default_factory=list)
    df_h: str = ""
    serving_failed: bool = False
    """The call's own serving container was seen to die while the SDK waited for it (from the guest)."""
    answered_by: list[str] | None = None
    """Set when a deploy returned although its own container did not run (from the guest): the containers
    publishing the serving port, whose endpoint answered the SDK's /ping instead."""
    platform: str | None = None
    """agent.platform's kind (`studio`, `notebook_instance`, ...): on Studio the engine's disk is the host's."""
    evidence_errors: dict[str, str] = field(default_factory=dict)
    evidence_seconds: dict[str, float] = field(default_factory=dict)
    remote: RemoteEvidence | None = None
    """A managed (remote) call's evidence; None for a local-mode call."""

    @classmethod
    def from_dict(cls, data: dict) -> Evidence:
        """Evidence written as a report holds it (tests and benches state it so); absent sources are empty."""
        return cls(
            call=Call(**{"kind": "call", **_known(Call, data.get("call"))}),
            exception=RaisedException(**{"type": "", "message": "", **_known(RaisedException, data.get("exception"))}),
            docker=DockerFacts(**_known(DockerFacts, data.get("docker"))),
            containers=[Container.from_dict(c) for c in data.get("containers") or []],
            pull_errors=[
                PullError(**{"image": None, "error": "", **_known(PullError, p)}) for p in data.get("pull_errors") or []
            ],
            compose_output=list(data.get("compose_output") or []),
            compose_file=ComposeFile(**_known(ComposeFile, data["compose_file"])) if data.get("compose_file") else None,
            compose=ComposeFound(**_known(ComposeFound, data["compose"])) if data.get("compose") else None,
            disks=[Disk(**{"path": "", **_known(Disk, d)}) for d in data.get("disks") or []],
            df_h=data.get("df_h") or "",
            serving_failed=bool(data.get("serving_failed")),
            answered_by=data.get("answered_by"),
            platform=data.get("platform"),
            remote=_remote(data["remote"]) if data.get("remote") else None,
        )


@dataclass(frozen=True)
class Remedy:
    """What `smdiag fix` runs for a diagnosis (agent.fix's registry name), chosen once, by the catalog."""

    name: str
    port: int | None = None
    """leftover_containers: the port the engine could not bind."""

    def to_dict(self) -> dict:
        return {key: value for key, value in dataclasses.asdict(self).items() if value is not None}


@dataclass(frozen=True)
class Diagnosis:
    category: str
    summary: str
    """One line quoting the evidence line that names the cause."""
    hint: str
    remedy: Remedy | None = None


@dataclass
class Report:
    """What report.json holds: the evidence and its diagnosis, stamped."""

    time_epoch: float
    evidence: Evidence
    diagnosis: Diagnosis
    id: str | None = None
    """The report directory's name, given when it is stored."""

    def to_dict(self) -> dict:
        e, d = self.evidence, self.diagnosis
        report = {
            "id": self.id,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.time_epoch)),
            "time_epoch": self.time_epoch,
            "call": dataclasses.asdict(e.call),
            "exception": dataclasses.asdict(e.exception),
            "evidence_seconds": e.evidence_seconds,
            "docker": e.docker.to_dict(),
            "containers": [dataclasses.asdict(c) for c in e.containers],
            "pull_errors": [dataclasses.asdict(p) for p in e.pull_errors],
            "compose_output": e.compose_output,
            "compose_file": e.compose_file and dataclasses.asdict(e.compose_file),
            **({"compose": dataclasses.asdict(e.compose)} if e.compose else {}),
            "disks": [dataclasses.asdict(disk) for disk in e.disks],
            "df_h": e.df_h,
            **({"answered_by": e.answered_by} if e.answered_by is not None else {}),
            **({"evidence_errors": e.evidence_errors} if e.evidence_errors else {}),
            **({"remote": dataclasses.asdict(e.remote)} if e.remote is not None else {}),
            "category": d.category,
            "summary": d.summary,
            "hint": d.hint,
            "remedy": d.remedy and d.remedy.to_dict(),
        }
        return report


def _remote(data: dict) -> RemoteEvidence:
    """A managed call's evidence written as a report holds it."""
    logs = [HostLog(**{"stream": "", "host": None, "lines": [], **_known(HostLog, h)}) for h in data.get("logs") or []]
    known = {"resource": "", "name": None, "region": None, "parameters": {}, **_known(RemoteEvidence, data)}
    return RemoteEvidence(**{**known, "logs": logs})


def _known(kind, data: dict | None) -> dict:
    """The entries of `data` that are fields of `kind` (a report may hold more, or an older shape)."""
    names = {f.name for f in dataclasses.fields(kind)}
    return {key: value for key, value in (data or {}).items() if key in names}
