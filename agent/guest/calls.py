"""The SDK's entry points, wrapped: one wrapper for every call that may run in local mode or as a managed job.

Outside a described call, inside another captured call, and at any moment once the guest is disabled, the
wrapper calls the SDK's function and nothing else. In a local call, the call runs with its capture active
(the taps keep what the SDK loses) and a failure is handed to the recorder, then re-raised unchanged. In a
managed (remote) call the guest only watches the exception leave: the same hand-over, nothing else.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

from . import handover, local
from .capture import ACTIVE, Capture, Remote
from .config import AGENT, disabled, guarded
from .facts import Call


def wrapping(describe, inside: str | None = None):
    """The replacement maker for an entry point whose call `describe` reads: a local `Call` (agent.guest.local),
    a managed call's `Remote` (agent.guest.remote), or None (the SDK's alone).
    `inside`: the kind of capture this call reports within on its own (a pipeline's step within its
    pipeline's execution: the SDK turns the step's failure into the execution's `Failed` status)."""

    def wrap(original):
        @functools.wraps(original)
        def wrapper(*args, **kwargs):
            outer = ACTIVE.get()
            if disabled() or (outer is not None and outer.kind != inside):
                return original(*args, **kwargs)
            capture = guarded("describe", _capture, describe, original, args, kwargs)
            if capture is None:
                return original(*args, **kwargs)
            with _active(capture, outer):
                return original(*args, **kwargs)

        return wrapper

    return wrap


@contextlib.contextmanager
def explained(kind: str = "call", **call: object) -> Iterator[Capture]:
    """Explicit use: any exception inside gets a failure report, then propagates unchanged. `call`: the
    `Call`'s other fields (images, instance_type, endpoint...)."""
    capture = Capture(Call(kind=kind, **{"sdk": AGENT.sdk, **call}))
    with _active(capture, None):
        yield capture


def _capture(describe, original, args: tuple, kwargs: dict) -> Capture | None:
    described = describe(original, args, kwargs)
    if isinstance(described, Remote):
        described.call.sdk = AGENT.sdk
        return Capture(described.call, remote=described)
    if described is None:
        return None
    described.sdk = AGENT.sdk
    return Capture(described, container_root=local.container_root(args[0]))


@contextlib.contextmanager
def _active(capture: Capture, outer: Capture | None) -> Iterator[None]:
    """`capture` active while the call runs; its failure reported (once), then re-raised."""
    token = ACTIVE.set(capture)
    try:
        yield
    except Exception as exc:
        if not any(exc is reported for reported in capture.inner_reports):
            guarded("report", handover.report, capture, exc)
        if outer is not None:
            outer.inner_reports.append(exc)
        raise
    finally:
        ACTIVE.reset(token)
