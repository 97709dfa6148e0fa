"""`import agent.autowrap`: local-mode failures of the SageMaker SDK (v2 and v3) explain themselves.

Importing it (idempotent; `SMDIAG_DISABLE=1` turns it off) patches, now or when the SDK is imported, what
the installed SDK's major has (read from its package metadata, once; a major it does not know is left alone):
- every local-mode entry point: v2's `EstimatorBase.fit`, `Model.deploy`, `Predictor.predict`,
  `Transformer.transform`, `Processor.run` (and the processors' own `run`), `ModelTrainer.train`, a local
  pipeline's execution and each of its steps (the report names the step); v3's `ModelTrainer.train`,
  `ModelBuilder.build`/`deploy`/`deploy_local` with `Mode.LOCAL_CONTAINER`, and sagemaker-core's local
  jobs and endpoints (`LocalSagemakerClient.create_*`). On failure, including one before any container
  runs, the original exception propagates unchanged in type, with a one-line diagnosis as an exception
  note, a short summary on stderr, and a report under `<state>/failures/` (see agent.failures);
- the SDK's local steps, inside such a call only, to keep a bounded copy of what it loses: the SDK's own
  `_stream_output` runs on a tee of compose's output; `_pull_image` runs the same `docker pull` and copies
  the engine's stderr to ours as it arrives; `_wait_for_serving_container` polls as the SDK does but gives
  up as soon as this call's own serving container has exited; v3's model servers (docker-py containers
  with `auto_remove=True`) are followed through the engine's events from their creation, so their output
  and exit code are kept before the engine removes them, and the SDK's ping loop ends with its own
  `LocalDeepPingException` as soon as the container is known dead.

It is a guest in every kernel, so: whether a call is local is read from plain attributes and arguments
(never a call into the SDK, never an exception); outside a local call, and at any moment once
`SMDIAG_DISABLE=1` is set (or the kernel hook is disabled), every patched function calls the SDK's
original and nothing else; and an error of ours is logged to `<state>/logs/wrapper-errors.jsonl` (counted
by `smdiag doctor`), never raised. `explained(kind)` is the explicit context manager, `%load_ext agent`
the IPython way. The module needs only the standard library: evidence is gathered by `smdiag failures
record` in a subprocess, so the kernel hook (agent.kernel_hook) can load a copy of it in environments that
do not have smdiag installed. That copy is this one file (`kernels enable` installs it alone), which is
why it stays one module over 500 lines rather than a package of smaller ones.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import importlib.abc
import inspect
import os
import re
import subprocess
import sys
import threading
import time
import traceback
import weakref
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

_ACTIVE: contextvars.ContextVar[Capture | None] = contextvars.ContextVar("smdiag_capture", default=None)
_PULL_STREAM: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("smdiag_pull_stream", default=None)
"""The engine's error lines of the v3 model-server pull running in this context, as its stream passes."""
_SERVING: weakref.WeakKeyDictionary[threading.Thread, Capture] = weakref.WeakKeyDictionary()
"""The SDK's serving threads started inside a captured call (they run outside its context)."""
_LOCK = threading.Lock()
_INSTALLED = False
_SDK_MAJOR: int | None = None
_AGENT_PYTHON: str | None = None
"""The interpreter that records reports: this one unless the kernel hook named the agent's own."""
_AGENT_STATE_DIR: str | None = None
_HOOK_CONFIG: str | None = None
"""The kernel hook's config file: once `smdiag kernels disable` removed it, every wrapper passes through."""
WRAPPED = "__smdiag_wrapped__"
KEPT_LINES = 400
KEPT_PULL_ERROR_BYTES = 16384
PING_TIMEOUT_S = 5.0
"""Bounds each /ping of a captured deploy: whatever holds the port may accept and never answer."""
ATTACH_DRAIN_S = 2.0
"""How long the report waits for a dead model server's last output to arrive from the engine."""
RECORD_TIMEOUT_S = 180
"""Evidence collection bounds each of its steps; this bounds the whole."""
ERRORS_FILE = "wrapper-errors.jsonl"
ERRORS_FILE_MAX_BYTES = 1 << 20
LOCAL_SESSIONS = {"LocalSession"}
PIPELINE_SESSIONS = {"PipelineSession", "LocalPipelineSession"}
"""A pipeline session's `fit`/`deploy` only builds step arguments: never a local run."""


@dataclass
class _Run:
    args: object
    lines: deque = field(default_factory=lambda: deque(maxlen=KEPT_LINES))

    def keep(self, raw: bytes) -> None:
        """Blank lines (a pull's progress prints hundreds) are not kept: they would push the error out."""
        for line in raw.decode("utf-8", errors="replace").splitlines():
            if line.strip():
                self.lines.append(line)


@dataclass
class Capture:
    kind: str
    started: float
    call: dict = field(default_factory=dict)
    serving_failed: bool = False
    runs: list[_Run] = field(default_factory=list)
    pulls: list[dict] = field(default_factory=list)
    serving: threading.Thread | None = None
    container_root: str | None = None
    containers: list[dict] = field(default_factory=list)
    """Containers the engine removed before the report (v3's `auto_remove` model servers): state and logs."""
    inner_reports: list[BaseException] = field(default_factory=list)
    """Exceptions an inner capture (a pipeline step) already reported: the outer call does not report them."""


@dataclass
class FailureFacts:
    """What a failed call hands the recorder (`python -m agent.record`, as JSON on its stdin): the one
    shape both sides read and write. Only what this process alone can see; the engine's side is asked
    by the recorder."""

    call: dict
    started: float
    exception: dict
    """type, message, errno and traceback of the SDK's exception."""
    compose_files: list[str] = field(default_factory=list)
    compose_output: list[str] = field(default_factory=list)
    """compose's stdout as the SDK streamed it: compose's own lines and the containers' output, mixed."""
    pull_errors: list[dict] = field(default_factory=list)
    serving_failed: bool = False
    containers: list[dict] = field(default_factory=list)
    """Containers the engine removed before the recorder could ask (v3's `auto_remove` model servers), as
    the wrapper kept them: name, exit code, logs."""
    container_root: str | None = None

    def to_json(self) -> str:
        import json

        return json.dumps(dataclasses.asdict(self), default=str)

    @classmethod
    def from_json(cls, text: str) -> FailureFacts:
        """ValueError or TypeError when `text` is not such a capture (a field missing or of the wrong shape)."""
        import json

        data = json.loads(text)
        if not isinstance(data, dict):
            raise TypeError("not a JSON object")
        known = {f.name for f in dataclasses.fields(cls)}
        facts = cls(**{key: value for key, value in data.items() if key in known})
        if not isinstance(facts.call, dict) or not isinstance(facts.exception, dict):
            raise TypeError("call and exception must be objects")
        facts.started = float(facts.started)
        return facts


def disabled() -> bool:
    if os.environ.get("SMDIAG_DISABLE", "").strip() not in ("", "0", "false", "no"):
        return True
    return _HOOK_CONFIG is not None and not os.path.exists(_HOOK_CONFIG)


def install() -> bool:
    """Patch the SDK now if it is loaded, else when it is; True when active."""
    global _INSTALLED, _SDK_MAJOR
    if disabled():
        return False
    with _LOCK:
        if not _INSTALLED:
            _SDK_MAJOR = _guarded("sdk major", sdk_major)
            _PATCHES.update(PATCHES_BY_MAJOR.get(_SDK_MAJOR, {}))
            for name in _PATCHES:
                module = sys.modules.get(name)
                if module is not None:
                    _patch(module)
            sys.meta_path.insert(0, _PatchOnImport())
            _INSTALLED = True
    return True


@contextlib.contextmanager
def explained(kind: str = "call", **call: object) -> Iterator[Capture]:
    """Explicit use: any exception inside gets a failure report, then propagates unchanged."""
    capture = Capture(kind, time.time(), {"kind": kind, **call})
    token = _ACTIVE.set(capture)
    try:
        yield capture
    except Exception as exc:
        _guarded("report", _report, capture, exc)
        raise
    finally:
        _ACTIVE.reset(token)


def _guarded(what: str, function, *args):
    """Our own work beside a user's call: an error is logged and counted, never raised; None then."""
    try:
        return function(*args)
    except Exception as exc:  # noqa: BLE001 - the user's call goes on exactly as without us
        _log_error(what, exc)
        return None


def _log_error(what: str, exc: BaseException) -> None:
    """One JSON line per error of ours in `<state>/logs/wrapper-errors.jsonl` (bounded), for doctor."""
    with contextlib.suppress(Exception):
        import json

        directory = os.path.join(_state_dir(), "logs")
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, ERRORS_FILE)
        with contextlib.suppress(FileNotFoundError):
            if os.path.getsize(path) > ERRORS_FILE_MAX_BYTES:
                return
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "pid": os.getpid(),
            "where": what,
            "error": f"{type(exc).__name__}: {exc}"[:500],
            "traceback": traceback.format_exception(type(exc), exc, exc.__traceback__)[-3:],
        }
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")


def _state_dir() -> str:
    if _AGENT_STATE_DIR:
        return _AGENT_STATE_DIR
    from agent.statedir import StateDir  # `import agent.autowrap`: the agent itself is importable

    return str(StateDir.from_env(os.environ).root)


# ---------------------------------------------------------------------------------------------- wrappers


def _wrap_call(kind: str, original):
    @functools.wraps(original)
    def wrapper(self, *args, **kwargs):
        if disabled() or _ACTIVE.get() is not None:
            return original(self, *args, **kwargs)
        capture = _guarded("describe", _local_capture, kind, original, self, args, kwargs)
        return _captured(capture, original, self, *args, **kwargs)

    setattr(wrapper, WRAPPED, True)
    return wrapper


def _local_capture(kind: str, original, obj, args, kwargs) -> Capture | None:
    """A capture when the call runs in local mode, else None. Reads only instance attributes and the
    arguments (no property, no SDK call), so pipeline variables, mocks and None are simply not local."""
    attributes = _instance_dict(obj)
    sessions = _class_names(attributes.get("sagemaker_session"))
    if sessions & PIPELINE_SESSIONS:
        return None
    if kind == "train":
        return _local_train_capture(obj, attributes)
    if kind == "serve":
        return _local_builder_capture(original, obj, args, kwargs, attributes)
    if kind == "deploy":
        try:
            instance_type = inspect.signature(original).bind(obj, *args, **kwargs).arguments.get("instance_type")
        except TypeError:  # arguments the SDK itself refuses: its own error follows
            return None
    else:
        instance_type = attributes.get("instance_type")
    if not (isinstance(instance_type, str) and str.startswith(instance_type, "local") or sessions & LOCAL_SESSIONS):
        return None
    image = attributes.get("image_uri")
    call = {
        "kind": kind,
        "class": type(obj).__name__,
        "instance_type": instance_type if isinstance(instance_type, str) else None,
        "images": [image] if isinstance(image, str) and image else [],
        "endpoint": attributes.get("endpoint_name") if isinstance(attributes.get("endpoint_name"), str) else None,
    }
    return Capture(kind, time.time(), call)


def _local_train_capture(trainer, attributes: dict) -> Capture | None:
    """v3 `ModelTrainer.train`: local when its `training_mode` is the `Mode.LOCAL_CONTAINER` member (read
    from the enum member's own attributes: a pydantic model keeps its fields in the instance dict)."""
    if _instance_dict(attributes.get("training_mode")).get("_name_") != "LOCAL_CONTAINER":
        return None
    image = attributes.get("training_image")
    instance_type = _instance_dict(attributes.get("compute")).get("instance_type")
    root = attributes.get("local_container_root")
    call = {
        "kind": "train",
        "class": type(trainer).__name__,
        "sdk": f"v{_SDK_MAJOR}",
        "instance_type": instance_type if isinstance(instance_type, str) else None,
        "images": [image] if isinstance(image, str) and image else [],
        "endpoint": None,
    }
    return Capture("train", time.time(), call, container_root=root if isinstance(root, str) else None)


def _local_builder_capture(original, builder, args, kwargs, attributes: dict) -> Capture | None:
    """v3 `ModelBuilder`: local when the call's `mode` argument, else the builder's, is `Mode.LOCAL_CONTAINER`."""
    try:
        mode = inspect.signature(original).bind(builder, *args, **kwargs).arguments.get("mode")
    except TypeError:  # arguments the SDK itself refuses: its own error follows
        return None
    if _instance_dict(mode or attributes.get("mode")).get("_name_") != "LOCAL_CONTAINER":
        return None
    image = attributes.get("image_uri")
    call = {
        "kind": "serve",
        "class": type(builder).__name__,
        "sdk": f"v{_SDK_MAJOR}",
        "instance_type": None,
        "images": [image] if isinstance(image, str) and image else [],
        "endpoint": None,
    }
    return Capture("serve", time.time(), call)


def _local_job_capture(kind: str, client, kwargs: dict) -> Capture:
    """sagemaker-core's local client (v3's estimator path): every call of it is a local run."""
    image = kwargs.get("AlgorithmSpecification", kwargs.get("AppSpecification", {}))
    image = image.get("TrainingImage") or image.get("ImageUri") if isinstance(image, dict) else None
    call = {
        "kind": kind,
        "class": type(client).__name__,
        "sdk": f"v{_SDK_MAJOR}",
        "instance_type": None,
        "images": [image] if isinstance(image, str) and image else [],
        "endpoint": kwargs.get("EndpointName") if isinstance(kwargs.get("EndpointName"), str) else None,
    }
    return Capture(kind, time.time(), call)


def _local_job_wrapper(kind: str, original):
    @functools.wraps(original)
    def wrapper(self, *args, **kwargs):
        if disabled() or _ACTIVE.get() is not None:
            return original(self, *args, **kwargs)
        capture = _guarded("describe", _local_job_capture, kind, self, kwargs)
        return _captured(capture, original, self, *args, **kwargs)

    return wrapper


def _captured(capture: Capture | None, original, *args, **kwargs):
    """The SDK's call with `capture` active (None: the call alone); a failure reported, then re-raised."""
    if capture is None:
        return original(*args, **kwargs)
    token = _ACTIVE.set(capture)
    try:
        return original(*args, **kwargs)
    except Exception as exc:
        if not any(exc is reported for reported in capture.inner_reports):
            _guarded("report", _report, capture, exc)
        raise
    finally:
        _ACTIVE.reset(token)


def _pipeline_capture(pipeline_name) -> Capture:
    name = pipeline_name if isinstance(pipeline_name, str) else None
    call = {"kind": "pipeline", "class": "LocalPipelineSession", "pipeline": name, "step": None,
            "instance_type": "local", "images": [], "endpoint": None}  # fmt: skip
    return Capture("pipeline", time.time(), call)


def _pipeline_start_wrapper(original):
    @functools.wraps(original)
    def start_pipeline_execution(self, PipelineName, *args, **kwargs):  # noqa: N803 - the SDK's name
        """A local pipeline's execution: what fails outside any step (its set-up, a missing pipeline)."""
        if disabled() or _ACTIVE.get() is not None:
            return original(self, PipelineName, *args, **kwargs)
        capture = _guarded("describe", _pipeline_capture, PipelineName)
        return _captured(capture, original, self, PipelineName, *args, **kwargs)

    return start_pipeline_execution


def _pipeline_step_wrapper(original):
    @functools.wraps(original)
    def _execute_step(self, step, *args, **kwargs):
        """One step of a local pipeline, reported on its own (the SDK turns its failure into the execution's
        `Failed` status, so nothing reaches the user's call): the report names the step."""
        outer = _ACTIVE.get()
        if disabled() or (outer is not None and outer.kind != "pipeline"):
            return original(self, step, *args, **kwargs)
        capture = _guarded("describe", _pipeline_step_capture, self, step)
        try:
            return _captured(capture, original, self, step, *args, **kwargs)
        except Exception as exc:
            if outer is not None and capture is not None:
                outer.inner_reports.append(exc)
            raise

    return _execute_step


def _pipeline_step_capture(executor, step) -> Capture:
    execution = _instance_dict(executor).get("execution")
    pipeline = _instance_dict(_instance_dict(execution).get("pipeline")).get("name")
    capture = _pipeline_capture(pipeline)
    name = _instance_dict(step).get("name")
    capture.call.update(step=name if isinstance(name, str) else None, step_type=type(step).__name__)
    return capture


def _instance_dict(obj) -> dict:
    """The attributes set on the instance itself: no property, no `__getattr__` (mocks make up anything)."""
    try:
        attributes = object.__getattribute__(obj, "__dict__")
    except AttributeError:
        return {}
    return attributes if isinstance(attributes, dict) else {}


def _class_names(obj) -> set[str]:
    return {cls.__name__ for cls in type(obj).__mro__}


def _capture_here() -> Capture | None:
    """The call this thread works for: the caller's own, or the one that started this serving thread."""
    if disabled():
        return None
    return _ACTIVE.get() or _SERVING.get(threading.current_thread())


def _stream_output_wrapper(original):
    @functools.wraps(original)
    def _stream_output(process):
        """The SDK's `_stream_output` on a tee of the process: same lines, decoding, end and exception."""
        capture = _capture_here()
        teed = capture and _guarded("stream", _TeedProcess, process, capture)
        if teed is None:
            return original(process)
        try:
            return original(teed)
        except RuntimeError:
            _guarded("stream", _keep_the_rest, process.stdout, teed.run)  # what the SDK drops after exit
            raise

    return _stream_output


class _TeedProcess:
    """The process as the SDK's streamer sees it, whose stdout keeps a bounded copy of each line read."""

    def __init__(self, process, capture: Capture) -> None:
        self.run = _Run(process.args)
        capture.runs.append(self.run)
        self.process = process
        self.stdout = _TeedStream(process.stdout, self.run)

    def __getattr__(self, name):
        return getattr(self.process, name)


class _TeedStream:
    def __init__(self, stream, run: _Run) -> None:
        self.stream = stream
        self.run = run

    def readline(self, *args):
        raw = self.stream.readline(*args)
        _guarded("stream", self.run.keep, raw)
        return raw

    def __getattr__(self, name):
        return getattr(self.stream, name)


def _keep_the_rest(stream, run: _Run) -> None:
    """Read what is already in the pipe without waiting (the SDK stops at the exit, so may its holders)."""
    fd = stream.fileno()
    os.set_blocking(fd, False)
    try:
        run.keep(stream.read() or b"")
    finally:
        os.set_blocking(fd, True)


def _pull_image_wrapper(original):
    @functools.wraps(original)
    def _pull_image(image):
        """The SDK's `docker pull`; inside a captured call its stderr is teed, not left to the void."""
        capture = _capture_here()
        logger = capture and getattr(sys.modules.get(original.__module__), "logger", None)
        if logger is None:
            return original(image)
        return _teed_pull(logger, image, capture)

    return _pull_image


def _teed_pull(logger, image, capture: Capture) -> None:
    """As the SDK's `check_output(["docker", "pull", image])`: stdout held for the exception, stderr
    reaching our stderr (fd 2, as the child's would) as it arrives, with a bounded copy kept."""
    command = ("docker pull %s" % image).strip()
    logger.info("docker command: %s", command)
    with subprocess.Popen(command.split(), stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        kept = bytearray()
        tee = threading.Thread(target=_guarded, args=("pull", _tee_to_stderr, process.stderr, kept), daemon=True)
        tee.start()
        try:
            output = process.stdout.read()
        except BaseException:
            process.kill()
            raise
        finally:
            tee.join()
        code = process.wait()
    if code:
        error = bytes(kept).decode("utf-8", errors="replace").strip()
        capture.pulls.append({"time": time.time(), "image": image, "error": error})
        raise subprocess.CalledProcessError(code, process.args, output=output)
    logger.info("image pulled: %s", image)


def _tee_to_stderr(stream, kept: bytearray) -> None:
    fd, writable = stream.fileno(), True
    while chunk := os.read(fd, 65536):
        kept += chunk
        del kept[:-KEPT_PULL_ERROR_BYTES]
        view = memoryview(chunk)
        while writable and view:
            try:
                view = view[os.write(2, view) :]
            except OSError as exc:  # the engine's own write to a closed stderr is lost too; keep draining
                writable = False
                _log_error("pull", exc)


def _serving_start_wrapper(original):
    @functools.wraps(original)
    def start(self):
        """Thread.start of the SDK's serving container, remembered as the captured call's own."""
        capture = _capture_here()
        if capture is not None:
            _guarded("serving", _SERVING.__setitem__, self, capture)
            capture.serving = self
        return original(self)

    return start


def _wait_for_serving_wrapper(module, original):
    @functools.wraps(original)
    def _wait_for_serving_container(serving_port, *args, **kwargs):
        """The SDK's wait for /ping, which also gives up as soon as this call's serving container exited."""
        capture = _capture_here()
        ping = capture and capture.serving and _guarded("serving", _Ping, module, original, serving_port, args, kwargs)
        if not ping:
            return original(serving_port, *args, **kwargs)
        return _wait_for_own_container(ping, capture)

    return _wait_for_serving_container


class _Ping:
    """What the SDK's wait uses, read before waiting (a change in the SDK means its own wait runs), with
    each request bounded."""

    def __init__(self, module, original, serving_port: int, args: tuple, kwargs: dict) -> None:
        import urllib3

        bound = inspect.signature(original).bind(serving_port, *args, **kwargs)
        self.limit = bound.arguments.get("timeout", module.HEALTH_CHECK_TIMEOUT_LIMIT)  # v3 takes a timeout
        self.logger = module.logger
        self.perform = module._perform_request
        self.http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=PING_TIMEOUT_S, read=PING_TIMEOUT_S))
        self.url = "http://%s:%d/ping" % (module.get_docker_host(), serving_port)


def _wait_for_own_container(ping: _Ping, capture: Capture) -> None:
    """The SDK's loop (same pings, log lines and pace), its sleep ended early by this call's container's end."""
    attempt = 0
    while True:
        attempt += 5
        if attempt >= ping.limit or not capture.serving.is_alive():
            capture.serving_failed = True
            raise RuntimeError("Giving up, endpoint didn't launch correctly")
        ping.logger.info("Checking if serving container is up, attempt: %s", attempt)
        _, code = ping.perform(ping.url, ping.http)
        if code == 200:
            return
        ping.logger.info("Container still not up, got: %s", code)
        capture.serving.join(5)


def _create_server_wrapper(module, original):
    @functools.wraps(original)
    def create_server(self, *args, **kwargs):
        """v3's local model server: its containers followed from their creation (the engine removes them as
        they exit), and the SDK's ping loop ended by its own exception once the container is known dead."""
        capture = _capture_here()
        watch = capture and _guarded("serving", _watch_containers, module, original, self, args, kwargs, capture)
        if not watch:
            return original(self, *args, **kwargs)
        try:
            return original(self, *args, **watch.arguments)
        finally:
            _guarded("serving", watch.close, self)

    return create_server


def _server_pull_wrapper(original):
    @functools.wraps(original)
    def _pull_image(self, *args, **kwargs):
        """v3's docker-py pull drops the engine's error (`images.pull` discards the progress stream, then the
        image is "not found"): inside a captured call, a failed pull keeps the engine's own message, read from
        that same stream as it passes (see `_tee_pulls`), never by pulling again."""
        capture = _capture_here()
        if capture is None:
            return original(self, *args, **kwargs)
        streamed: list[str] = []
        token = _PULL_STREAM.set(streamed)
        try:
            return original(self, *args, **kwargs)
        except (ValueError, RuntimeError) as exc:
            _guarded("pull", _keep_the_engines_pull_error, self, original, args, kwargs, exc, streamed, capture)
            raise
        finally:
            _PULL_STREAM.reset(token)

    return _pull_image


def _keep_the_engines_pull_error(server, original, args, kwargs, exc: Exception, streamed: list[str], capture) -> None:
    """The engine's error line: the progress stream's own, else the SDK's exception when it quotes the engine."""
    import docker.errors

    if not isinstance(exc.__cause__, docker.errors.APIError):  # the engine down, a login failure: said already
        return
    image = inspect.signature(original).bind(server, *args, **kwargs).arguments["image"]
    errors = streamed or ([] if isinstance(exc.__cause__, docker.errors.NotFound) else [str(exc.__cause__)])
    if errors:
        capture.pulls.append({"time": time.time(), "image": image, "error": "\n".join(errors)})


def _docker_client_wrapper(original):
    @functools.wraps(original)
    def _get_docker_client(*args, **kwargs):
        """v3's model-server client, with its pulls' progress observed while a captured pull runs."""
        client = original(*args, **kwargs)
        _guarded("pull", _tee_pulls, client.api)
        return client

    return _get_docker_client


def _tee_pulls(api) -> None:
    """The client's `pull`, returning the same stream; inside `_server_pull_wrapper` its error lines are kept."""
    pull = api.pull
    if getattr(pull, WRAPPED, False):
        return

    @functools.wraps(pull)
    def teed_pull(*args, **kwargs):
        result = pull(*args, **kwargs)
        streamed = _PULL_STREAM.get()
        if streamed is None or not kwargs.get("stream"):
            return result
        return _errors_noted(result, streamed)

    setattr(teed_pull, WRAPPED, True)
    api.pull = teed_pull


PULL_TAIL_BYTES = 64 * 1024
"""The engine ends a failed pull's stream with its error: the stream's end is all that is kept."""


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
        _guarded("pull", _note_pull_errors, tail, decoded, streamed)


def _note_pull_errors(tail: bytes, decoded: list[dict], streamed: list[str]) -> None:
    import json

    for line in tail.splitlines():
        with contextlib.suppress(ValueError):
            decoded.append(json.loads(line))
    streamed.extend(str(entry["error"]) for entry in decoded if isinstance(entry, dict) and entry.get("error"))


def _watch_containers(module, original, server, args: tuple, kwargs: dict, capture: Capture):
    """A watch over the server's containers; None when the engine does not answer (the SDK says so itself)."""
    import docker.errors

    try:
        return _ContainerWatch(module, original, server, args, kwargs, capture)
    except docker.errors.DockerException:
        return None


class _ContainerWatch:
    """The engine's events for the containers of one image while a v3 model server starts: each container's
    output (attached at its creation, so nothing is lost to `auto_remove`) and exit code land in the capture.
    The call's ping function is wrapped, as the SDK's loop calls it, to raise the SDK's own
    `LocalDeepPingException` once the watched container has died."""

    def __init__(self, module, original, server, args: tuple, kwargs: dict, capture: Capture) -> None:
        import docker

        bound = inspect.signature(original).bind(server, *args, **kwargs)
        self.image, self.capture = bound.arguments["image"], capture
        self.failure = module.LocalDeepPingException, module._PING_HEALTH_CHECK_FAIL_MSG
        self.ping = bound.arguments.get("ping_fn") or _instance_dict(server).get("_ping_container")
        self.arguments = {**bound.arguments, "ping_fn": self._ping}
        del self.arguments["self"]
        self.started, self.dead, self.lock, self.attached = time.time(), threading.Event(), threading.Lock(), []
        self.follower_closed = False
        self.client = docker.from_env()
        self.events = self.client.api.events(
            since=int(self.started) - 1, filters={"type": "container", "event": ["create", "die"]}, decode=True
        )
        self.follower = threading.Thread(target=_guarded, args=("serving", self._follow), daemon=True)
        self.follower.start()

    def _follow(self) -> None:
        for event in self.events:
            attributes = (event.get("Actor") or {}).get("Attributes") or {}
            if attributes.get("image") != self.image:
                continue
            if event.get("Action") == "create":
                entry = {"name": attributes.get("name"), "image": self.image, "status": "running", "exit_code": None,
                         "oom_killed": False, "error": None, "logs": [], "removed": True}  # fmt: skip
                with self.lock:
                    self.capture.containers.append(entry)
                container_id = event.get("id") or (event.get("Actor") or {}).get("ID")
                attach = threading.Thread(target=_guarded, args=("serving", self._attach, container_id, entry))
                attach.daemon = True
                attach.start()
                self.attached.append(attach)
            elif event.get("Action") == "die":  # only a container this call created (not one it replaced)
                for entry in self.capture.containers:
                    if entry["name"] == attributes.get("name"):
                        entry.update(status="exited", exit_code=int(attributes.get("exitCode", -1)))
                        self.dead.set()

    def _attach(self, container_id: str, entry: dict) -> None:
        """The container's output from its first line to its end, bounded, kept even after the engine removes it."""
        import docker.errors

        lines = deque(maxlen=KEPT_LINES)
        try:
            stream = self.client.api.attach(container_id, stdout=True, stderr=True, stream=True, logs=True)
        except docker.errors.NotFound:  # gone before we could attach: its exit code still comes with `die`
            return
        pending = b""
        for chunk in stream:
            *complete, pending = (pending + chunk).split(b"\n")
            lines.extend(line.decode("utf-8", errors="replace") for line in complete)
            entry["logs"] = list(lines)
        if pending:
            lines.append(pending.decode("utf-8", errors="replace"))
        entry["logs"] = list(lines)

    def _ping(self, *args, **kwargs):
        if self.dead.is_set() and not self.follower_closed:
            self.capture.serving_failed = True
            exception, message = self.failure
            raise exception(message)
        return self.ping(*args, **kwargs)

    def close(self, server) -> None:
        """Stop following; the server's ping function is the SDK's own again, as it would have set it."""
        self.follower_closed = True
        if _instance_dict(server).get("_ping_container") == self._ping:
            server._ping_container = self.ping
        for attach in list(self.attached):  # a dead container's output ends with it: what is left is in the pipe
            attach.join(ATTACH_DRAIN_S if self.dead.is_set() else 0)
        self.events.close()
        self.client.close()


def _replace(owner, name: str, make) -> None:
    original = inspect.getattr_static(owner, name, None)
    if original is not None and not getattr(original, WRAPPED, False):
        replacement = make(original)
        setattr(replacement, WRAPPED, True)
        setattr(owner, name, replacement)


def _patch_image(module) -> None:
    _replace(module, "_stream_output", _stream_output_wrapper)
    _replace(module, "_pull_image", _pull_image_wrapper)
    hosting = getattr(module, "_HostingContainer", None)
    if hosting is not None:
        _replace(hosting, "start", _serving_start_wrapper)


def _patch_entities(module) -> None:
    _replace(module, "_wait_for_serving_container", functools.partial(_wait_for_serving_wrapper, module))


def _patch_local_container(module) -> None:
    """ModelTrainer's training container took the SDK's steps by name (`from ... import`): replace them there."""
    _replace(module, "_stream_output", _stream_output_wrapper)
    _replace(module, "_pull_image", _pull_image_wrapper)


def _patch_processors(module) -> None:
    """`Processor.run` and every processor of the module that defines its own `run` (Script, Framework)."""
    for owner in vars(module).values():
        if isinstance(owner, type) and issubclass(owner, module.Processor) and "run" in vars(owner):
            _replace(owner, "run", functools.partial(_wrap_call, "process"))


def _patch_local_pipeline(module) -> None:
    _replace(module.LocalPipelineExecutor, "_execute_step", _pipeline_step_wrapper)


def _patch_local_client(module) -> None:
    """A local pipeline's start (v2), and the local jobs and endpoints of sagemaker-core (v3's estimator path)."""
    _replace(module.LocalSagemakerClient, "start_pipeline_execution", _pipeline_start_wrapper)
    if _SDK_MAJOR == 3:
        for name, kind in LOCAL_CLIENT_CALLS.items():
            _replace(module.LocalSagemakerClient, name, functools.partial(_local_job_wrapper, kind))


def _patch_model_builder(module) -> None:
    for name in ("build", "deploy", "deploy_local"):
        _replace(module.ModelBuilder, name, functools.partial(_wrap_call, "serve"))


def _patch_local_container_mode(module) -> None:
    _replace(module.LocalContainerMode, "create_server", functools.partial(_create_server_wrapper, module))
    _replace(module.LocalContainerMode, "_pull_image", _server_pull_wrapper)
    _replace(module, "_get_docker_client", _docker_client_wrapper)


def _method(owner_name: str, name: str, kind: str):
    return lambda module: _replace(getattr(module, owner_name), name, functools.partial(_wrap_call, kind))


LOCAL_CLIENT_CALLS = {
    "create_training_job": "fit",
    "create_processing_job": "process",
    "create_transform_job": "transform",
    "create_endpoint": "deploy",
}
PATCHES_BY_MAJOR = {
    2: {
        "sagemaker.estimator": _method("EstimatorBase", "fit", "fit"),
        "sagemaker.model": _method("Model", "deploy", "deploy"),
        "sagemaker.base_predictor": _method("Predictor", "predict", "predict"),
        "sagemaker.transformer": _method("Transformer", "transform", "transform"),
        "sagemaker.processing": _patch_processors,
        "sagemaker.modules.train.model_trainer": _method("ModelTrainer", "train", "train"),
        "sagemaker.modules.local_core.local_container": _patch_local_container,
        "sagemaker.local.image": _patch_image,
        "sagemaker.local.entities": _patch_entities,
        "sagemaker.local.local_session": _patch_local_client,
        "sagemaker.local.pipeline": _patch_local_pipeline,
    },
    3: {
        "sagemaker.train.model_trainer": _method("ModelTrainer", "train", "train"),
        "sagemaker.train.local.local_container": _patch_local_container,
        "sagemaker.serve.model_builder": _patch_model_builder,
        "sagemaker.serve.mode.local_container_mode": _patch_local_container_mode,
        "sagemaker.core.local.image": _patch_image,
        "sagemaker.core.local.entities": _patch_entities,
        "sagemaker.core.local.local_session": _patch_local_client,
    },
}
_PATCHES: dict = {}
"""The patches for the SDK major installed here, chosen once by `install()`."""


def sdk_major() -> int | None:
    """The major version of the installed `sagemaker` distribution (metadata only: nothing is imported)."""
    from importlib import metadata

    try:
        version = metadata.version("sagemaker")
    except metadata.PackageNotFoundError:
        return None
    head = version.split(".", 1)[0]
    return int(head) if head.isdigit() else None


def _patch(module) -> None:
    """The SDK must import even if our patch does not fit it."""
    _guarded(f"patch {module.__name__}", _PATCHES[module.__name__], module)


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Patches an SDK module right after it is executed, whenever the user imports it."""

    def find_spec(self, name, path, target=None):
        if name not in _PATCHES or disabled():
            return None
        return _guarded("import", self._patching_spec, name, path, target)

    def _patching_spec(self, name, path, target):
        """The spec the finders after this one give, its loader wrapped (None: the import goes on as ever)."""
        for finder in sys.meta_path[sys.meta_path.index(self) + 1 :]:
            spec = getattr(finder, "find_spec", lambda *_: None)(name, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None:
            spec.loader = _PatchingLoader(spec.loader)
        return spec


class _PatchingLoader(importlib.abc.Loader):
    """The module's own loader, which patches after executing and then hands the module back to it."""

    def __init__(self, loader) -> None:
        self.loader = loader

    def __getattr__(self, name):
        return getattr(self.loader, name)

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        module.__loader__ = module.__spec__.loader = self.loader
        self.loader.exec_module(module)
        _patch(module)


# ---------------------------------------------------------------------------------------------- report


def hand_over(agent_python: str, state_dir: str, hook_config: str | None = None) -> None:
    """Record reports through another interpreter (the kernel hook's case: this environment has no agent);
    with `hook_config`, the wrapper passes through once that file is gone (`smdiag kernels disable`)."""
    global _AGENT_PYTHON, _AGENT_STATE_DIR, _HOOK_CONFIG
    _AGENT_PYTHON, _AGENT_STATE_DIR, _HOOK_CONFIG = agent_python, state_dir, hook_config


def _report(capture: Capture, exc: BaseException) -> None:
    """Write the report and tell the user (called guarded: our trouble never replaces their exception)."""
    _guarded("serving", _keep_serving_stderr, capture)
    runs = list(capture.runs)
    facts = FailureFacts(
        call={
            **capture.call,
            "images": list(dict.fromkeys([*capture.call.get("images", []), *(p["image"] for p in capture.pulls)])),
        },
        started=capture.started,
        exception={
            "type": type(exc).__name__,
            "message": str(exc),
            "errno": getattr(exc, "errno", None),
            "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
        },
        compose_files=[_compose_file(run.args) for run in runs if _compose_file(run.args)],
        compose_output=[line for run in runs for line in run.lines],
        pull_errors=list(capture.pulls),
        serving_failed=capture.serving_failed,
        containers=list(capture.containers),
        container_root=capture.container_root or _container_root(),
    )
    try:
        report = _record(facts)
    except Exception as problem:  # noqa: BLE001 - logged; the user learns why no report follows
        _log_error("record", problem)
        print(f"smdiag: no failure report: {type(problem).__name__} (logged; see `smdiag doctor`)", file=sys.stderr)
        return
    repair = "; to repair it, run `smdiag fix`" if report.get("remedy") else ""
    note = f"smdiag: {report['category']}: {report['summary']} (details: smdiag last-failure{repair})"
    with contextlib.suppress(AttributeError):
        exc.add_note(note)
    step = f" at step {capture.call['step']!r}" if capture.call.get("step") else ""
    print(
        f"\nsmdiag: local-mode {capture.kind} failed{step} [{report['category']}]\n"
        f"  {_one_line(report['summary'])}\n"
        f"  hint: {report['hint']}\n"
        f"  report: {report['path']} (run `smdiag last-failure`)",
        file=sys.stderr,
    )


def _keep_serving_stderr(capture: Capture) -> None:
    """Compose's stderr for serving: the SDK pipes it and never reads it, and there compose says why the
    endpoint's container did not start. What is in the pipe now is kept with compose's other lines."""
    process = getattr(capture.serving, "process", None)
    if process is not None and process.stderr is not None and not process.stderr.closed:
        run = _Run(process.args)
        _keep_the_rest(process.stderr, run)
        capture.runs.append(run)


def _compose_file(args) -> str | None:
    args = list(args) if isinstance(args, (list, tuple)) else []
    return args[args.index("-f") + 1] if "-f" in args[:-1] else None


def _record(facts: FailureFacts) -> dict:
    """Evidence is gathered by `python -m agent.record` (`smdiag failures record` without the CLI's imports)
    in a subprocess of the agent's interpreter, so that this process (a user's kernel) needs nothing beyond
    the standard library."""
    import json

    env = dict(os.environ)
    if _AGENT_STATE_DIR:
        env.setdefault("SMDIAG_STATE_DIR", _AGENT_STATE_DIR)
    done = subprocess.run(
        [_AGENT_PYTHON or sys.executable, "-m", "agent.record"],
        input=facts.to_json(),
        capture_output=True,
        text=True,
        env=env,
        timeout=RECORD_TIMEOUT_S,
    )
    if done.returncode != 0:
        raise RuntimeError((done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1])
    return json.loads(done.stdout)


def _one_line(text: str, limit: int = 300) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _container_root() -> str | None:
    """The SDK's local-mode container_root, from its config file, without importing the SDK."""
    with contextlib.suppress(Exception):
        import yaml

        path = os.path.join(os.path.expanduser("~"), ".sagemaker", "config.yaml")
        with open(path) as f:
            return (yaml.safe_load(f) or {}).get("local", {}).get("container_root")
    return None


install()
