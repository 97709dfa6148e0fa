"""The native runner (`health --mode native`, the embedded default: no Docker, no AWS): each framework's
entry script runs in a process of its own under an emulated /opt/ml tree and SM_* environment, like the
training toolkit starts it; the same process then loads the saved model the way its serving container
would and predicts the test set (agent.experiments.native_worker: one import of the framework, not two).
The frameworks run at once: their start-up (TensorFlow's import takes seconds) and single-threaded
training overlap on the cores."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from agent import inputs
from agent.container_logs import traceback_summary
from agent.experiments import data, native_worker
from agent.experiments.runner import Progress, Result, finish, grid, no_progress, reported
from agent.frameworks import ENTRY_POINTS, HYPERPARAMETERS, MODULES, SERVING_ENTRY_POINTS

TRAIN_TIMEOUT_S = 1800
EPOCH = re.compile(r"\b(?:epoch|iteration):?\s*(\d+)", re.IGNORECASE)
LOSS = re.compile(r"\bloss:?\s*([-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)", re.IGNORECASE)
"""What the entry scripts print while training (Keras' `Epoch 3/60 ... loss: 1.2e+04`, the PyTorch
script's `Iteration: 3 | Loss: 12000.0`): shown as progress."""


class NativeRunner:
    mode = "native"

    def check(self, frameworks: list[str]) -> None:
        inputs.packages("health --mode native", [MODULES[f] for f in frameworks])

    def run_all(self, frameworks, data_dir, quick, scripts, work, progress) -> list[Result]:
        """Every framework in a thread of its own. Interrupted, their processes are killed and they show no
        more progress (a terminal nobody reads any more would block them)."""
        interrupted, steps = threading.Event(), Steps()

        def shown(framework: str, phase: str, detail: str) -> None:
            if not interrupted.is_set():
                progress(framework, phase, detail)

        def one(framework: str) -> Result:
            return reported(run_native(framework, data_dir, quick, scripts, work, shown, steps), shown)

        pool = ThreadPoolExecutor(max_workers=len(frameworks), thread_name_prefix="health")
        futures = [pool.submit(one, framework) for framework in frameworks]
        try:
            return [future.result() for future in futures]
        except BaseException:
            interrupted.set()
            steps.kill_all()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


class Steps:
    """The step processes of one run (its frameworks run in parallel threads), for an interrupt to kill:
    those running, and any a thread starts after it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: set[subprocess.Popen] = set()
        self._stopped = False

    def started(self, process: subprocess.Popen) -> None:
        with self._lock:
            self._running.add(process)
            if self._stopped:
                kill_step(process)

    def ended(self, process: subprocess.Popen) -> None:
        with self._lock:
            self._running.discard(process)

    def kill_all(self) -> None:
        with self._lock:
            self._stopped = True
            for process in self._running:
                kill_step(process)


def kill_step(process: subprocess.Popen) -> None:
    """Kill a step and every process it started (a framework's workers would go on writing into the run's
    work directory after it is removed)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_native(
    framework: str,
    data_dir: Path,
    quick: bool,
    scripts: Path,
    work: Path,
    progress: Progress = no_progress,
    steps: Steps | None = None,
) -> Result:
    """Train under an emulated SageMaker training contract, then, in the same process, load the saved model
    as its serving container would and predict."""
    result = Result(framework, "native")
    level = "quick" if quick else "full"
    opt_ml = work / framework / "opt" / "ml"
    model_dir, output = opt_ml / "model", opt_ml / "output"
    channels = {"train": "training_data.csv", "validation": "validation_data.csv"}
    for channel, name in channels.items():
        (opt_ml / "input" / "data" / channel).mkdir(parents=True, exist_ok=True)
        shutil.copy(data_dir / name, opt_ml / "input" / "data" / channel / name)
    model_dir.mkdir(parents=True)
    (output / "data").mkdir(parents=True)
    hyperparameters = HYPERPARAMETERS[level][framework]
    env = {
        **os.environ,
        "SM_MODEL_DIR": str(model_dir),
        "SM_OUTPUT_DATA_DIR": str(output / "data"),
        "SM_CHANNEL_TRAIN": str(opt_ml / "input" / "data" / "train"),
        "SM_CHANNEL_VALIDATION": str(opt_ml / "input" / "data" / "validation"),
        "SM_CHANNELS": json.dumps(sorted(channels)),
        "SM_HPS": json.dumps(hyperparameters),
        "SM_CURRENT_HOST": "algo-1",
        "SM_HOSTS": json.dumps(["algo-1"]),
        "SM_NUM_CPUS": str(os.cpu_count() or 1),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONUNBUFFERED": "1",
    }
    x_test, y_test = data.load(data_dir / "test_data.csv")
    request, answer = work / f"{framework}-input.json", work / f"{framework}-answer.json"
    request.write_text(json.dumps({"x": [*x_test.tolist(), *grid().tolist()]}))
    scripts = scripts.resolve()  # the step runs in it: a relative --scripts would not name it from there
    serving_script = scripts / SERVING_ENTRY_POINTS.get(framework, ENTRY_POINTS[framework])
    argv = [
        sys.executable,
        str(Path(native_worker.__file__)),
        framework,
        str(scripts / ENTRY_POINTS[framework]),
        "" if framework == "tensorflow" else str(serving_script),
        str(model_dir),
        str(request),
        str(answer),
    ]
    for key, value in hyperparameters.items():
        argv += [f"--{key}", str(value)]
    started = time.perf_counter()
    progress(framework, "training", f"{hyperparameters['epochs']} epochs")
    read_training = _training_progress(framework, hyperparameters["epochs"], progress)

    def read(line: str) -> None:
        if result.train_s is not None:
            return
        if line.rstrip("\n").endswith(native_worker.TRAINED):
            result.train_s = round(time.perf_counter() - started, 2)
            progress(framework, "serving", "loading the model as its container would, predicting the test set")
        else:
            read_training(line)

    failed = _run(argv, env, work / f"{framework}.log", cwd=scripts, on_line=read, steps=steps)
    if failed is not None:
        result.error = failed if result.train_s is None else f"serving: {failed}"
        result.train_s = result.train_s or round(time.perf_counter() - started, 2)
        return result
    answered = json.loads(answer.read_text())
    result.cpu_s = round(answered["cpu_s"], 2)
    predictions = answered["predictions"]
    return finish(result, y_test, predictions[: len(x_test)], predictions[len(x_test) :], answered, quick)


def _training_progress(framework: str, epochs: int, progress: Progress) -> Callable[[str], None]:
    """A line reader that turns the script's epoch and loss lines into progress details."""
    seen: dict[str, str] = {}

    def read(line: str) -> None:
        epoch, loss = EPOCH.search(line), LOSS.search(line)
        if epoch:
            seen["epoch"] = epoch.group(1)
        if loss:
            seen["loss"] = f"{float(loss.group(1)):.4g}"
        if epoch or loss:
            detail = f"epoch {seen.get('epoch', '?')}/{epochs}" + (f", loss {seen['loss']}" if "loss" in seen else "")
            progress(framework, "training", detail)

    return read


def _run(
    argv: list[str],
    env: dict,
    log: Path,
    cwd: Path | None = None,
    on_line: Callable[[str], None] | None = None,
    steps: Steps | None = None,
) -> str | None:
    """Run a step with its output in `log` (each line also handed to `on_line`); None on success, else the
    error in one line."""
    timed_out = threading.Event()
    with open(log, "w") as out:
        process = subprocess.Popen(
            argv,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            text=True,
            errors="replace",
            start_new_session=True,  # its own process group: a kill reaches what it started too
        )
        steps = steps or Steps()
        steps.started(process)
        timer = threading.Timer(TRAIN_TIMEOUT_S, lambda: (timed_out.set(), kill_step(process)))
        timer.start()
        try:
            for line in process.stdout:
                out.write(line)
                if on_line:
                    on_line(line)
            returncode = process.wait()
        finally:
            timer.cancel()
            if process.poll() is None:  # interrupted: the step must not outlive us
                kill_step(process)
                process.wait()
            steps.ended(process)
    if timed_out.is_set():
        return f"timed out after {TRAIN_TIMEOUT_S}s (log: {log})"
    if returncode == 0:
        return None
    lines = log.read_text(errors="replace").splitlines()
    summary = traceback_summary(lines)
    last = next((line.strip() for line in reversed(lines) if line.strip()), "no output")
    return f"{summary or last} (exit {returncode}, log: {log})"
