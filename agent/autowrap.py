"""`import agent.autowrap`: local-mode failures of the SageMaker SDK v2 explain themselves.

Importing it (idempotent; `SMDIAG_DISABLE=1` turns it off) patches, now or when the SDK is imported:
- `EstimatorBase.fit`, `Model.deploy` and `Predictor.predict` in local mode: on failure the original
  exception propagates unchanged in type, with a one-line diagnosis as an exception note, a short
  summary on stderr, and a report under `<state>/failures/` (see agent.failures);
- the SDK's local steps, to keep what it loses: `_pull_image` keeps the engine's error text,
  `_stream_output` keeps compose's output (and no longer drops the lines that arrive after the
  process exits), and `_wait_for_serving_container` gives up as soon as the serving container has
  exited instead of polling /ping for two minutes.
Success paths do the same work as before. `explained(kind)` is the explicit context manager, and
`%load_ext agent` the IPython way. The module itself needs only the standard library: evidence is
gathered by `smdiag failures record` in a subprocess, so the kernel hook (agent.kernel_hook) can load a
copy of it in environments that do not have smdiag installed.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import importlib.abc
import importlib.machinery
import inspect
import os
import re
import subprocess
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

_ACTIVE: contextvars.ContextVar[Capture | None] = contextvars.ContextVar("smdiag_capture", default=None)
_RUNS: deque[_Run] = deque(maxlen=32)
"""Compose processes streamed recently, from any thread (the serving one runs in the SDK's thread)."""
_PULLS: deque[dict] = deque(maxlen=32)
_LOCK = threading.Lock()
_INSTALLED = False
_AGENT_PYTHON: str | None = None
"""The interpreter that records reports: this one unless the kernel hook named the agent's own."""
_AGENT_STATE_DIR: str | None = None
WRAPPED = "__smdiag_wrapped__"
SERVING_POLL_S = 1.0
RECORD_TIMEOUT_S = 180
"""Evidence collection bounds each of its steps; this bounds the whole."""


@dataclass
class _Run:
    args: list
    started: float
    lines: deque = field(default_factory=lambda: deque(maxlen=400))
    exit_code: int | None = None


@dataclass
class Capture:
    kind: str
    started: float
    call: dict = field(default_factory=dict)
    serving_failed: bool = False


def disabled() -> bool:
    return os.environ.get("SMDIAG_DISABLE", "").strip() not in ("", "0", "false", "no")


def install() -> bool:
    """Patch the SDK now if it is loaded, else when it is; True when active."""
    global _INSTALLED
    if disabled():
        return False
    with _LOCK:
        if not _INSTALLED:
            for name in _PATCHES:
                module = sys.modules.get(name)
                if module is not None:
                    _PATCHES[name](module)
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
        _report(capture, exc)
        raise
    finally:
        _ACTIVE.reset(token)


# ---------------------------------------------------------------------------------------------- wrappers


def _wrap_call(kind: str, original):
    signature = inspect.signature(original)

    @functools.wraps(original)
    def wrapper(self, *args, **kwargs):
        if disabled() or _ACTIVE.get() is not None:
            return original(self, *args, **kwargs)
        call = _describe_call(kind, self, signature, args, kwargs)
        if call is None:
            return original(self, *args, **kwargs)
        capture = Capture(kind, time.time(), call)
        token = _ACTIVE.set(capture)
        try:
            return original(self, *args, **kwargs)
        except Exception as exc:
            _report(capture, exc)
            raise
        finally:
            _ACTIVE.reset(token)

    setattr(wrapper, WRAPPED, True)
    return wrapper


def _describe_call(kind: str, obj, signature: inspect.Signature, args, kwargs) -> dict | None:
    """The call's facts when it runs in local mode; None otherwise (then it is left alone)."""
    session = getattr(obj, "sagemaker_session", None)
    local_session = type(session).__name__ in ("LocalSession", "LocalPipelineSession")
    if kind == "fit":
        instance_type = getattr(obj, "instance_type", None)
        images = [_safe(lambda: obj.training_image_uri())]
    elif kind == "deploy":
        bound = _safe(lambda: signature.bind(obj, *args, **kwargs).arguments) or {}
        instance_type = bound.get("instance_type")
        images = [getattr(obj, "image_uri", None)]
    else:
        instance_type = "local" if local_session else None
        images = []
    if not (str(instance_type or "").startswith("local") or local_session):
        return None
    return {
        "kind": kind,
        "class": type(obj).__name__,
        "instance_type": instance_type,
        "images": [i for i in images if isinstance(i, str) and i],
        "endpoint": getattr(obj, "endpoint_name", None),
    }


def _safe(function):
    try:
        return function()
    except Exception:  # noqa: BLE001 - a fact we cannot read is left out, never an error of ours
        return None


def _stream_output(process):
    """The SDK's `_stream_output`, also keeping the output and reading what arrives after the exit.

    Where the SDK spins on an empty read once compose has closed its output (a busy loop until it exits),
    this waits for the exit. Blank lines (a pull's progress prints hundreds) are shown but not kept, so
    that they cannot push the error out of what is kept."""
    run = _Run(list(process.args) if isinstance(process.args, (list, tuple)) else [process.args], time.time())
    _RUNS.append(run)
    exit_code = None
    while exit_code is None:
        raw = process.stdout.readline()
        if not raw:
            exit_code = process.wait()
            break
        line = raw.decode("utf-8", errors="replace")
        sys.stdout.write(line)
        if line.strip():
            run.lines.append(line.rstrip("\n"))
        exit_code = process.poll()
    rest = process.stdout.read().decode("utf-8", errors="replace")
    if rest:
        sys.stdout.write(rest)
        run.lines.extend(line for line in rest.splitlines() if line.strip())
    run.exit_code = exit_code
    if exit_code not in [0, 130]:
        raise RuntimeError(f"Failed to run: {process.args}. Process exited with code: {exit_code}")
    return exit_code


def _pull_image(image):
    """The SDK's `_pull_image`, keeping the engine's error text that `check_output` let go to the void."""
    import logging

    command = ("docker pull %s" % image).strip()
    logging.getLogger("sagemaker.local.image").info("docker command: %s", command)
    done = subprocess.run(command.split(), capture_output=True)
    if done.returncode != 0:
        error = done.stderr.decode(errors="replace").strip()
        _PULLS.append({"time": time.time(), "image": image, "error": error})
        raise subprocess.CalledProcessError(done.returncode, command.split(), done.stdout, done.stderr)
    logging.getLogger("sagemaker.local.image").info("image pulled: %s", image)


def _wait_for_serving_container_factory(module):
    original = module._wait_for_serving_container

    def _wait_for_serving_container(serving_port):
        """The SDK's wait for /ping, which also gives up as soon as the serving compose process exited."""
        capture = _ACTIVE.get()
        if capture is None:
            return original(serving_port)
        import urllib3

        http = urllib3.PoolManager()
        endpoint_url = "http://%s:%d/ping" % (module.get_docker_host(), serving_port)
        deadline = time.monotonic() + module.HEALTH_CHECK_TIMEOUT_LIMIT
        while time.monotonic() < deadline:
            try:  # bounded: whatever holds the port may accept and never answer
                code = http.request("GET", endpoint_url, timeout=2.0, retries=False).status
            except urllib3.exceptions.HTTPError:
                code = -1
            if code == 200:
                return
            if any(run.exit_code is not None and run.started >= capture.started for run in list(_RUNS)):
                break
            time.sleep(SERVING_POLL_S)
        capture.serving_failed = True
        raise RuntimeError("Giving up, endpoint didn't launch correctly")

    setattr(_wait_for_serving_container, WRAPPED, True)
    return _wait_for_serving_container


def _patch_estimator(module) -> None:
    _patch_method(module.EstimatorBase, "fit", "fit")


def _patch_model(module) -> None:
    _patch_method(module.Model, "deploy", "deploy")


def _patch_predictor(module) -> None:
    _patch_method(module.Predictor, "predict", "predict")


def _patch_image(module) -> None:
    for name, replacement in (("_stream_output", _stream_output), ("_pull_image", _pull_image)):
        if not getattr(getattr(module, name, None), WRAPPED, False):
            setattr(replacement, WRAPPED, True)
            setattr(module, name, replacement)


def _patch_entities(module) -> None:
    if not getattr(module._wait_for_serving_container, WRAPPED, False):
        module._wait_for_serving_container = _wait_for_serving_container_factory(module)


def _patch_method(cls, name: str, kind: str) -> None:
    original = cls.__dict__.get(name)
    if original is not None and not getattr(original, WRAPPED, False):
        setattr(cls, name, _wrap_call(kind, original))


_PATCHES = {
    "sagemaker.estimator": _patch_estimator,
    "sagemaker.model": _patch_model,
    "sagemaker.base_predictor": _patch_predictor,
    "sagemaker.local.image": _patch_image,
    "sagemaker.local.entities": _patch_entities,
}


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Patches an SDK module right after it is executed, whenever the user imports it."""

    def find_spec(self, name, path, target=None):
        if name not in _PATCHES:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _PatchingLoader(spec.loader, _PATCHES[name])
        return spec


class _PatchingLoader(importlib.abc.Loader):
    def __init__(self, loader, patch) -> None:
        self.loader = loader
        self.patch = patch

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        self.loader.exec_module(module)
        try:
            self.patch(module)
        except Exception as exc:  # noqa: BLE001 - the SDK must import even if our patch does not fit it
            print(f"smdiag: not wrapping {module.__name__}: {exc}", file=sys.stderr)


# ---------------------------------------------------------------------------------------------- report


def hand_over(agent_python: str, state_dir: str) -> None:
    """Record reports through another interpreter (the kernel hook's case: this environment has no agent)."""
    global _AGENT_PYTHON, _AGENT_STATE_DIR
    _AGENT_PYTHON, _AGENT_STATE_DIR = agent_python, state_dir


def _report(capture: Capture, exc: BaseException) -> None:
    """Write the report and tell the user; never let our own trouble replace their exception."""
    runs = [run for run in list(_RUNS) if run.started >= capture.started - 1]
    facts = {
        "call": capture.call,
        "started": capture.started,
        "exception": {
            "type": type(exc).__name__,
            "message": str(exc),
            "errno": getattr(exc, "errno", None),
            "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
        },
        "compose_files": [run.args[run.args.index("-f") + 1] for run in runs if "-f" in run.args[:-1]],
        "compose_output": [line for run in runs for line in run.lines],
        "pull_errors": [p for p in list(_PULLS) if p["time"] >= capture.started - 1],
        "serving_failed": capture.serving_failed,
        "container_root": _container_root(),
    }
    try:
        report = _record(facts)
    except Exception as problem:  # noqa: BLE001
        print(f"smdiag: could not write a failure report: {type(problem).__name__}: {problem}", file=sys.stderr)
        return
    repair = "; to repair it, run `smdiag fix`" if report.get("remedy") else ""
    note = f"smdiag: {report['category']}: {report['summary']} (details: smdiag last-failure{repair})"
    with contextlib.suppress(AttributeError):
        exc.add_note(note)
    print(
        f"\nsmdiag: local-mode {capture.kind} failed [{report['category']}]\n"
        f"  {_one_line(report['summary'])}\n"
        f"  hint: {report['hint']}\n"
        f"  report: {report['path']} (run `smdiag last-failure`)",
        file=sys.stderr,
    )


def _record(facts: dict) -> dict:
    """Evidence is gathered by `smdiag failures record` in a subprocess of the agent's interpreter, so
    that this process (a user's kernel) needs nothing beyond the standard library."""
    import json

    env = dict(os.environ)
    if _AGENT_STATE_DIR:
        env.setdefault("SMDIAG_STATE_DIR", _AGENT_STATE_DIR)
    done = subprocess.run(
        [_AGENT_PYTHON or sys.executable, "-m", "agent", "failures", "record", "--json"],
        input=json.dumps(facts, default=str),
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
