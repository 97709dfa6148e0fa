"""One captured call: what the guest keeps while a local SDK call runs, and the facts it becomes on failure.

The capture active in this context (or the one that started this SDK serving thread) is what every tap
asks for with `capture_here()`: no capture, no tap. A managed (remote) call's capture keeps nothing while it
runs: its facts are read from the SDK object once the exception left (`Remote`), and no tap acts for it.
"""

from __future__ import annotations

import contextvars
import os
import threading
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from time import time

from .config import disabled, guarded
from .facts import Call, FailureFacts, KeptContainer, PullError, RaisedException, RemoteCall

KEPT_LINES = 400

ACTIVE: contextvars.ContextVar[Capture | None] = contextvars.ContextVar("smdiag_capture", default=None)
SERVING: weakref.WeakKeyDictionary[threading.Thread, Capture] = weakref.WeakKeyDictionary()
"""The SDK's serving threads started inside a captured call (they run outside its context)."""


@dataclass
class Run:
    """One process the SDK streamed (compose, mostly): its arguments and a bounded copy of its lines."""

    args: object
    lines: deque = field(default_factory=lambda: deque(maxlen=KEPT_LINES))

    def keep(self, raw: bytes) -> None:
        """Blank lines (a pull's progress prints hundreds) are not kept: they would push the error out."""
        for line in raw.decode("utf-8", errors="replace").splitlines():
            if line.strip():
                self.lines.append(line)

    def keep_what_is_in(self, stream) -> None:
        """Read what is already in the pipe without waiting (the SDK stops at the exit, so may its holders)."""
        fd = stream.fileno()
        os.set_blocking(fd, False)
        try:
            self.keep(stream.read() or b"")
        finally:
            os.set_blocking(fd, True)

    @property
    def compose_file(self) -> str | None:
        return compose_file(self.args)


def compose_file(args) -> str | None:
    """The compose file a compose command line names (`-f FILE`)."""
    args = list(args) if isinstance(args, (list, tuple)) else []
    return args[args.index("-f") + 1] if "-f" in args[:-1] else None


@dataclass
class Remote:
    """A managed call as a describe function sees it (agent.guest.remote): the `Call`, and how its `RemoteCall`
    is read from the SDK object's plain attributes after the exception (the job's name is known only then)."""

    call: Call
    resource: str
    read: Callable[[BaseException | None], RemoteCall]
    """Given the exception that left the call (None when the call raised nothing)."""

    def facts(self, exc: BaseException | None = None) -> RemoteCall:
        """What the SDK object holds; at least the resource, when reading it failed (logged)."""
        return guarded("remote", self.read, exc) or RemoteCall(resource=self.resource)


@dataclass
class Capture:
    call: Call
    started: float = field(default_factory=time)
    container_root: str | None = None
    serving_failed: bool = False
    runs: list[Run] = field(default_factory=list)
    pull_errors: list[PullError] = field(default_factory=list)
    serving: threading.Thread | None = None
    kept_containers: list[KeptContainer] = field(default_factory=list)
    """Containers the engine removes before the report (v3's `auto_remove` model servers): state and logs."""
    inner_reports: list[BaseException] = field(default_factory=list)
    """Exceptions an inner capture (a pipeline step) already reported: the outer call does not report them."""
    remote: Remote | None = None
    """Set for a managed (remote) call."""

    @property
    def kind(self) -> str:
        return self.call.kind

    def note_pull_error(self, image, error: str) -> None:
        self.pull_errors.append(PullError(image=image, error=error, time=time()))

    def facts(self, raised: RaisedException, exc: BaseException | None = None) -> FailureFacts:
        """What this call hands the recorder: only what this process alone can see (`exc`: the exception
        `raised` describes, where a managed call's facts read the name of a job the SDK did not keep)."""
        guarded("serving", self._keep_serving_stderr)
        runs = list(self.runs)
        images = [*self.call.images, *(pull.image for pull in self.pull_errors)]
        return FailureFacts(
            call=Call(**{**vars(self.call), "images": list(dict.fromkeys(images))}),
            started=self.started,
            exception=raised,
            compose_files=[run.compose_file for run in runs if run.compose_file],
            compose_stream=[line for run in runs for line in run.lines],
            pull_errors=list(self.pull_errors),
            serving_failed=self.serving_failed,
            kept_containers=list(self.kept_containers),
            container_root=self.container_root,
            remote=self.remote.facts(exc) if self.remote else None,
        )

    def _keep_serving_stderr(self) -> None:
        """Compose's stderr for serving: the SDK pipes it and never reads it, and there compose says why the
        endpoint's container did not start. What is in the pipe now is kept with compose's other lines."""
        process = getattr(self.serving, "process", None)
        if process is not None and process.stderr is not None and not process.stderr.closed:
            run = Run(process.args)
            run.keep_what_is_in(process.stderr)
            self.runs.append(run)


def capture_here() -> Capture | None:
    """The call this thread works for: the caller's own, or the one that started this serving thread."""
    if disabled():
        return None
    capture = ACTIVE.get() or SERVING.get(threading.current_thread())
    return None if capture is None or capture.remote else capture
