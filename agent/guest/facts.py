"""What a failed call hands the recorder: the facts only the user's process could see, as one typed value.

The guest (agent.guest) fills a `FailureFacts` in the user's kernel and writes it as JSON on the recorder's
stdin (`python -m agent.record`); the recorder (agent.failures) reads it back with `from_json`. Both sides
import this one module, so it needs the standard library alone and does nothing when imported: the kernel
hook copies it, with the rest of the guest, into environments that do not have smdiag installed.
Each field has one name from the kernel to the stored report.
"""

from __future__ import annotations

import dataclasses
import json
import traceback
from dataclasses import dataclass, field

LEGACY_NAMES = {"compose_output": "compose_stream", "class": "class_name"}
"""Names a kernel hook installed by an older smdiag still writes (a kernel keeps its copy until it restarts)."""


@dataclass
class Call:
    """The SDK call that failed, as the guest read it from plain attributes and arguments."""

    kind: str
    """fit, deploy, predict, transform, process, train, serve, pipeline, call (an explicit `explained`); for a
    managed (remote) call also tune and wait (sagemaker-core's waits)."""
    class_name: str | None = None
    instance_type: str | None = None
    images: list[str] = field(default_factory=list)
    endpoint: str | None = None
    sdk: str | None = None
    """`v2` or `v3`, where the guest knows the major."""
    pipeline: str | None = None
    step: str | None = None
    step_type: str | None = None


@dataclass
class RaisedException:
    """The SDK's exception as it left the call."""

    type: str
    """Empty when the call returned, wrongly (see `FailureFacts.answered_by`): the message then says why."""
    message: str
    errno: int | None = None
    traceback: str = ""

    @classmethod
    def of(cls, exc: BaseException) -> RaisedException:
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        return cls(type=type(exc).__name__, message=str(exc), errno=getattr(exc, "errno", None), traceback=text)


@dataclass
class PullError:
    """The engine's own message for a failed pull, which the SDK would have lost."""

    image: str | None
    error: str
    time: float | None = None


@dataclass
class KeptContainer:
    """A container the engine removed before the recorder could ask (v3's `auto_remove` model servers), as
    the guest kept it while it ran."""

    name: str | None
    image: str | None = None
    status: str | None = None
    exit_code: int | None = None
    oom_killed: bool = False
    error: str | None = None
    logs: list[str] = field(default_factory=list)
    removed: bool = True


@dataclass
class RemoteCall:
    """A managed (remote) call as the guest read it from the SDK object's plain attributes after it raised."""

    resource: str
    """training, processing, transform, endpoint or tuning."""
    name: str | None = None
    """The name of the job, endpoint or tuning job this call made (None: it made none, or the SDK object still
    names an earlier call's)."""
    region: str | None = None
    """The SDK session's region (None: the default chain's, as the SDK itself resolves it)."""
    parameters: dict = field(default_factory=dict)
    """Plain values read off the object (only those present; never credentials): instance_type, instance_count,
    volume_size_gb, max_run_s, max_wait_s, spot (bool), checkpoint_s3_uri, entry_point, source_dir, image_uri,
    role, subnets (list), security_group_ids (list), volume_kms_key, output_kms_key, max_parallel_jobs (tuning),
    inputs ({channel: s3 uri} when plain strings)."""
    profile: str | None = None
    """The AWS profile the SDK's boto3 session was made with, by name (a name, never a credential; None: the
    default chain's): the recorder reads with the same identity."""


@dataclass
class FailureFacts:
    call: Call
    started: float
    exception: RaisedException
    compose_files: list[str] = field(default_factory=list)
    compose_stream: list[str] = field(default_factory=list)
    """compose's stdout as the SDK streamed it: compose's own lines and the containers' output, mixed (the
    recorder tells them apart)."""
    pull_errors: list[PullError] = field(default_factory=list)
    serving_failed: bool = False
    """The call's own serving container was seen to die while the SDK waited for it."""
    kept_containers: list[KeptContainer] = field(default_factory=list)
    container_root: str | None = None
    answered_by: list[str] | None = None
    """Set when a deploy returned although its own serving container did not run: the SDK's /ping was answered
    by another endpoint, these containers publishing the serving port (none: a process outside the engine)."""
    remote: RemoteCall | None = None
    """Set for a managed (remote) call: then the other fields of the local run are empty."""

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), default=str)

    @classmethod
    def from_json(cls, text: str) -> FailureFacts:
        """ValueError or TypeError when `text` is not such a capture (a field missing or of the wrong shape)."""
        data = _renamed(json.loads(text))
        if not isinstance(data, dict):
            raise TypeError("not a JSON object")
        data.setdefault("kept_containers", data.pop("containers", []))
        facts = cls(**_known(cls, data))
        if not isinstance(facts.call, dict) or not isinstance(facts.exception, dict):
            raise TypeError("call and exception must be objects")
        facts.call = Call(**_known(Call, _renamed(facts.call)))
        facts.exception = RaisedException(**_known(RaisedException, facts.exception))
        facts.pull_errors = [PullError(**_known(PullError, entry)) for entry in facts.pull_errors]
        facts.kept_containers = [KeptContainer(**_known(KeptContainer, entry)) for entry in facts.kept_containers]
        if facts.remote is not None:
            facts.remote = RemoteCall(**_known(RemoteCall, facts.remote))
            if not isinstance(facts.remote.parameters, dict):
                facts.remote.parameters = {}
        facts.started = float(facts.started)
        return facts


def _renamed(data):
    if not isinstance(data, dict):
        return data
    return {LEGACY_NAMES.get(key, key): value for key, value in data.items()}


def _known(kind, data: dict) -> dict:
    if not isinstance(data, dict):
        raise TypeError(f"{kind.__name__} must be an object")
    names = {f.name for f in dataclasses.fields(kind)}
    return {key: value for key, value in data.items() if key in names}
