"""Taps on SDK v3's own local serving: ModelBuilder's model servers (`LocalContainerMode`), docker-py
containers started with `auto_remove=True`. Inside a captured call only:
- `create_server` follows the engine's events from the server's start, so each container's output and
  exit code are kept before the engine removes it, and the SDK's ping loop ends with the SDK's own
  `LocalDeepPingException` as soon as the container is known dead;
- `_pull_image` keeps the engine's error of a failed pull (docker-py discards the progress stream that
  holds it, then the image is "not found"), read from that same stream as it passes: for the pull's
  duration only, the `api.pull` of the client the SDK makes for it (`_get_docker_client`) is teed, and
  restored after. Any other client is handed out untouched.

docker-py is v3's dependency: it is imported where a model server is followed, never when the guest loads.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import json
import threading
from collections import deque
from time import time

from .. import container_logs
from .capture import KEPT_LINES, Capture, capture_here
from .config import guarded
from .facts import KeptContainer
from .local import instance_dict

ATTACH_DRAIN_S = 2.0
"""How long the report waits for a dead model server's last output to arrive from the engine."""
PULL_TAIL_BYTES = 64 * 1024
"""The engine ends a failed pull's stream with its error: the stream's end is all that is kept."""


class _CapturedPull:
    """One captured v3 pull: the engine's error lines as its stream passes, and the clients teed for it."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.teed: list[tuple[object, object, dict]] = []

    def tee(self, api) -> None:
        """`api.pull` returning the same stream, whose error entries land in `errors` once it ends."""
        attributes = instance_dict(api)
        pull, before = api.pull, dict(attributes)

        @functools.wraps(pull)
        def teed_pull(*args, **kwargs):
            result = pull(*args, **kwargs)
            return _errors_noted(result, self.errors) if kwargs.get("stream") else result

        api.pull = teed_pull
        self.teed.append((api, teed_pull, before))

    def restore(self) -> None:
        """Each client as the SDK made it (through the instance dict: a mock's `del` would mark it deleted)."""
        for api, teed_pull, before in self.teed:
            attributes = instance_dict(api)
            if attributes.get("pull") is teed_pull:
                if "pull" in before:
                    attributes["pull"] = before["pull"]
                else:
                    del attributes["pull"]


_PULL: contextvars.ContextVar[_CapturedPull | None] = contextvars.ContextVar("smdiag_pull", default=None)
"""The captured v3 pull running in this context."""


def docker_client(original):
    @functools.wraps(original)
    def _get_docker_client(*args, **kwargs):
        """v3's client, the SDK's own; inside a captured pull, teed for that pull (see `server_pull`)."""
        client = original(*args, **kwargs)
        pull = _PULL.get()
        api = instance_dict(client).get("api")
        if pull is not None and api is not None and capture_here() is not None:
            guarded("pull", pull.tee, api)
        return client

    return _get_docker_client


def server_pull(original):
    @functools.wraps(original)
    def _pull_image(self, *args, **kwargs):
        """v3's docker-py pull; inside a captured call a failed pull keeps the engine's own message, read from
        the pull's stream as it passes, never by pulling again."""
        capture = capture_here()
        if capture is None:
            return original(self, *args, **kwargs)
        pull = _CapturedPull()
        token = _PULL.set(pull)
        try:
            return original(self, *args, **kwargs)
        except (ValueError, RuntimeError) as exc:
            guarded("pull", _keep_the_engines_pull_error, self, original, args, kwargs, exc, pull.errors, capture)
            raise
        finally:
            _PULL.reset(token)
            guarded("pull", pull.restore)

    return _pull_image


def _keep_the_engines_pull_error(server, original, args, kwargs, exc: Exception, streamed: list[str], capture) -> None:
    """The engine's error line: the progress stream's own, else the SDK's exception when it quotes the engine."""
    import docker.errors  # lazy: v3's dependency (see the module's docstring)

    if not isinstance(exc.__cause__, docker.errors.APIError):  # the engine down, a login failure: said already
        return
    image = inspect.signature(original).bind(server, *args, **kwargs).arguments["image"]
    errors = streamed or ([] if isinstance(exc.__cause__, docker.errors.NotFound) else [str(exc.__cause__)])
    if errors:
        capture.note_pull_error(image, "\n".join(errors))


def _errors_noted(stream, streamed: list[str]):
    """The same items, in order; the engine's `error` entries noted in `streamed` once the stream ends."""
    tail, decoded = b"", []
    try:
        for item in stream:
            yield item
            if isinstance(item, dict) and item.get("error"):
                decoded.append(item)
            elif isinstance(item, bytes):
                tail = (tail + item)[-PULL_TAIL_BYTES:]
    finally:
        guarded("pull", _note_pull_errors, tail, decoded, streamed)


def _note_pull_errors(tail: bytes, decoded: list[dict], streamed: list[str]) -> None:
    for line in tail.splitlines():
        with contextlib.suppress(ValueError):
            decoded.append(json.loads(line))
    streamed.extend(str(entry["error"]) for entry in decoded if isinstance(entry, dict) and entry.get("error"))


def create_server(module, original):
    engine = _engine_client_maker()

    @functools.wraps(original)
    def create_server(self, *args, **kwargs):
        """v3's local model server: its containers followed from their creation (the engine removes them as
        they exit), and the SDK's ping loop ended by its own exception once the container is known dead."""
        capture = capture_here()
        watch = capture and guarded("serving", _watch, engine, module, (original, self, args, kwargs), capture)
        if not watch:
            return original(self, *args, **kwargs)
        try:
            return original(self, *args, **watch.arguments)
        finally:
            guarded("serving", watch.close, self)

    return create_server


def _engine_client_maker():
    """docker-py's `from_env`, bound when the SDK's module is patched: a user's later mock of it is theirs
    alone (the SDK's module imported docker-py just before)."""
    import docker  # lazy: v3's dependency (see the module's docstring)

    return docker.from_env


def _watch(engine, module, call: tuple, capture: Capture):
    """A watch over the server's containers; None when the engine does not answer (the SDK says so itself)."""
    import docker.errors  # lazy: v3's dependency (see the module's docstring)

    try:
        return _ContainerWatch(engine(), module, *call, capture)
    except docker.errors.DockerException:
        return None


class _ContainerWatch:
    """The engine's events for the containers of one image while a v3 model server starts: each container's
    output (attached at its creation, so nothing is lost to `auto_remove`) and exit code land in the capture.
    The call's ping function is wrapped, as the SDK's loop calls it, to raise the SDK's own
    `LocalDeepPingException` once the watched container has died."""

    def __init__(self, client, module, original, server, args: tuple, kwargs: dict, capture: Capture) -> None:
        bound = inspect.signature(original).bind(server, *args, **kwargs)
        self.image, self.capture = bound.arguments["image"], capture
        self.failure = module.LocalDeepPingException, module._PING_HEALTH_CHECK_FAIL_MSG
        self.ping = bound.arguments.get("ping_fn") or instance_dict(server).get("_ping_container")
        self.arguments = {**bound.arguments, "ping_fn": self._ping}
        del self.arguments["self"]
        self.started, self.dead, self.lock, self.attached = time(), threading.Event(), threading.Lock(), []
        self.follower_closed = False
        self.client = client
        self.events = client.api.events(
            since=int(self.started) - 1, filters={"type": "container", "event": ["create", "die"]}, decode=True
        )
        self.follower = threading.Thread(target=guarded, args=("serving", self._follow), daemon=True)
        self.follower.start()

    def _follow(self) -> None:
        for event in self.events:
            attributes = (event.get("Actor") or {}).get("Attributes") or {}
            if attributes.get("image") != self.image:
                continue
            if event.get("Action") == "create":
                kept = KeptContainer(name=attributes.get("name"), image=self.image, status="running")
                with self.lock:
                    self.capture.kept_containers.append(kept)
                container_id = event.get("id") or (event.get("Actor") or {}).get("ID")
                attach = threading.Thread(target=guarded, args=("serving", self._keep_output, container_id, kept))
                attach.daemon = True
                attach.start()
                self.attached.append(attach)
            elif event.get("Action") == "die":  # only a container this call created (not one it replaced)
                for kept in self.capture.kept_containers:
                    if kept.name == attributes.get("name"):
                        kept.status, kept.exit_code = "exited", int(attributes.get("exitCode", -1))
                        self.dead.set()

    def _keep_output(self, container_id: str, kept: KeptContainer) -> None:
        """The container's output from its first line to its end, bounded, kept even after the engine removes it."""
        lines = deque(maxlen=KEPT_LINES)
        for chunk in container_logs.follow_output(self.client.api, container_id):
            lines.extend(chunk)
            kept.logs = list(lines)

    def _ping(self, *args, **kwargs):
        if self.dead.is_set() and not self.follower_closed:
            self.capture.serving_failed = True
            exception, message = self.failure
            raise exception(message)
        return self.ping(*args, **kwargs)

    def close(self, server) -> None:
        """Stop following; the server's ping function is the SDK's own again, as it would have set it."""
        self.follower_closed = True
        if instance_dict(server).get("_ping_container") == self._ping:
            server._ping_container = self.ping
        for attach in list(self.attached):  # a dead container's output ends with it: what is left is in the pipe
            attach.join(ATTACH_DRAIN_S if self.dead.is_set() else 0)
        self.events.close()
        self.client.close()
