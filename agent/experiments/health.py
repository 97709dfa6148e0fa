"""`smdiag health`: train, deploy and test the three experiments, natively or in SageMaker local mode.

`native` is the embedded default (no Docker, no AWS): each entry script runs in its own process under an
emulated /opt/ml tree and SM_* environment, like the training toolkit starts it; the saved model is
then loaded in another process the way its serving container would, and predicts the test set.
`local` is the book's path through SDK v2 and Docker (agent.experiments.local). Scoring is pure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from agent.experiments import data

SCRIPTS = Path(__file__).parent / "scripts"
ENTRY_POINTS = {"tensorflow": "tensorflow_script.py", "pytorch": "pytorch_training.py", "sklearn": "sklearn_script.py"}
FRAMEWORK_MODULES = {"tensorflow": "tensorflow", "pytorch": "torch", "sklearn": "sklearn"}
"""What a framework's entry script imports when it runs natively (in smdiag's own interpreter)."""
HYPERPARAMETERS = {
    # --quick: enough to meet the quick bar in seconds; full: the seed's own settings.
    "quick": {
        "tensorflow": {"epochs": 60, "batch-size": 32, "learning-rate": 0.003},
        "pytorch": {"epochs": 120, "batch-size": 32, "learning-rate": 0.003},
        "sklearn": {"epochs": 400, "batch-size": 32, "learning-rate": 0.003},
    },
    "full": {
        "tensorflow": {"epochs": 1000, "batch-size": 200, "learning-rate": 0.001},
        "pytorch": {"epochs": 1000, "batch-size": 100, "learning-rate": 0.001},
        "sklearn": {"epochs": 2000, "batch-size": 100, "learning-rate": 0.001},
    },
}
BAR = {"quick": 400.0, "full": 250.0}
"""Test-set RMSE a framework must reach (the noise alone has sigma 150)."""
TRAIN_TIMEOUT_S = 1800
EPOCH = re.compile(r"\b(?:epoch|iteration):?\s*(\d+)", re.IGNORECASE)
LOSS = re.compile(r"\bloss:?\s*([-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)", re.IGNORECASE)
"""What the entry scripts print while training (Keras' `Epoch 3/60 ... loss: 1.2e+04`, the PyTorch
script's `Iteration: 3 | Loss: 12000.0`): shown as progress."""

Progress = Callable[[str, str, str], None]
"""progress(framework, phase, detail): a framework enters a phase (training, serving, ...) or reports
how far it is within it (detail, e.g. "epoch 30/60, loss 14012")."""


def no_progress(_framework: str, _phase: str, _detail: str) -> None:
    """The progress callback of callers that show none."""


@dataclass
class Result:
    framework: str
    mode: str
    train_s: float | None = None
    deploy_s: float | None = None
    predict_s: float | None = None
    rmse: float | None = None
    r2: float | None = None
    passed: bool = False
    error: str | None = None
    report_id: str | None = None
    line: list[float] | None = None
    """Predictions on an even grid of x, for the plot."""

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "line"}


def score(y_true, y_pred) -> tuple[float, float]:
    """RMSE and R² of predictions. Pure."""
    import numpy as np

    y_true, y_pred = np.asarray(y_true, float), np.asarray(y_pred, float)
    residual = float(np.sum((y_true - y_pred) ** 2))
    total = float(np.sum((y_true - y_true.mean()) ** 2))
    return float(np.sqrt(residual / len(y_true))), 1.0 - residual / total if total else 0.0


def grid():
    import numpy as np

    return np.linspace(-5000, 5000, 201)


def run_native(
    framework: str, data_dir: Path, quick: bool, scripts: Path, work: Path, progress: Progress = no_progress
) -> Result:
    """Train under an emulated SageMaker training contract, then serve and predict in a fresh process."""
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
    argv = [sys.executable, str(scripts / ENTRY_POINTS[framework])]
    for key, value in hyperparameters.items():
        argv += [f"--{key}", str(value)]
    started = time.perf_counter()
    progress(framework, "training", f"{hyperparameters['epochs']} epochs")
    trained = _run(
        argv, env, work / f"{framework}-train.log", cwd=scripts,
        on_line=_training_progress(framework, hyperparameters["epochs"], progress),
    )  # fmt: skip
    result.train_s = round(time.perf_counter() - started, 2)
    if trained is not None:
        result.error = trained
        return result

    x_test, y_test = data.load(data_dir / "test_data.csv")
    request = work / f"{framework}-input.json"
    request.write_text(json.dumps({"x": [*x_test.tolist(), *grid().tolist()]}))
    serve_log = work / f"{framework}-serve.log"
    argv = [
        sys.executable,
        "-m",
        "agent.experiments.native_serve",
        framework,
        str(model_dir),
        str(scripts),
        str(request),
    ]
    progress(framework, "serving", "loading the model as its container would, predicting the test set")
    failed = _run(argv, {**env, "PYTHONPATH": _agent_root()}, serve_log)
    if failed is not None:
        result.error = failed
        return result
    answer = json.loads(serve_log.read_text().strip().splitlines()[-1])
    predictions = answer["predictions"]
    return _finish(result, y_test, predictions[: len(x_test)], predictions[len(x_test) :], answer, quick)


def _finish(result: Result, y_test, test_predictions, line, timings: dict, quick: bool) -> Result:
    result.deploy_s = round(timings["deploy_s"], 3)
    result.predict_s = round(timings["predict_s"], 3)
    rmse, r2 = score(y_test, test_predictions)
    result.rmse, result.r2, result.line = round(rmse, 1), round(r2, 4), list(line)
    result.passed = rmse <= BAR["quick" if quick else "full"]
    if not result.passed:
        result.error = f"test RMSE {rmse:.0f} is above the bar of {BAR['quick' if quick else 'full']:.0f}"
    return result


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
    argv: list[str], env: dict, log: Path, cwd: Path | None = None, on_line: Callable[[str], None] | None = None
) -> str | None:
    """Run a step with its output in `log` (each line also handed to `on_line`); None on success, else the
    error in one line."""
    from agent.container_logs import traceback_summary

    timed_out = threading.Event()
    with open(log, "w") as out:
        process = subprocess.Popen(
            argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=cwd, text=True, errors="replace"
        )
        timer = threading.Timer(TRAIN_TIMEOUT_S, lambda: (timed_out.set(), process.kill()))
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
                process.kill()
                process.wait()
    if timed_out.is_set():
        return f"timed out after {TRAIN_TIMEOUT_S}s (log: {log})"
    if returncode == 0:
        return None
    lines = log.read_text(errors="replace").splitlines()
    summary = traceback_summary(lines)
    last = next((line.strip() for line in reversed(lines) if line.strip()), "no output")
    return f"{summary or last} (exit {returncode}, log: {log})"


def _agent_root() -> str:
    return str(Path(__file__).resolve().parent.parent.parent)


def run_health(
    frameworks: list[str],
    mode: str,
    quick: bool,
    scripts: Path | None,
    settings,
    plot: Path | None = None,
    progress: Progress = no_progress,
) -> dict:
    """Every framework's result, and whether all passed. `mode` is auto, native or local.

    Everything it will use is checked first (BadInput). The work directory is kept when a framework
    failed (its logs), removed otherwise, and removed when the run is interrupted."""
    from agent import inputs
    from agent.errors import BadInput

    scripts = scripts or SCRIPTS
    if mode not in ("auto", "native", "local"):
        raise BadInput(f"unknown mode {mode!r}", "use auto, native or local")
    if not scripts.is_dir():
        raise BadInput(
            f"--scripts {scripts} is not a directory", "point --scripts at a copy of agent/experiments/scripts"
        )
    missing = [ENTRY_POINTS[f] for f in frameworks if not (scripts / ENTRY_POINTS[f]).is_file()]
    if missing:
        raise BadInput(
            f"{scripts} lacks {', '.join(missing)}", "point --scripts at a copy of agent/experiments/scripts"
        )
    if plot is not None:
        if plot.suffix.lower() != ".png":
            raise BadInput(f"--plot {plot} is not a .png file", "give a path ending in .png")
        inputs.output_file(plot, "--plot")
    if mode == "local":
        inputs.sdk_v2("health --mode local")
    inputs.packages("smdiag health", [*data.MODULES, *(["matplotlib"] if plot else [])])
    chosen, why = choose_mode(mode, settings, frameworks)
    if chosen == "native":
        inputs.packages("health --mode native", [FRAMEWORK_MODULES[f] for f in frameworks])
    work = Path(tempfile.mkdtemp(prefix="smdiag-health-"))
    try:
        results = _run_all(frameworks, chosen, quick, scripts, settings, work, plot, progress)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    passed = all(r.passed for r in results)
    if passed:  # a failure keeps the logs for the user to read
        shutil.rmtree(work, ignore_errors=True)
    return {
        "passed": passed,
        "mode": chosen,
        "mode_reason": why,
        "quick": quick,
        "bar_rmse": BAR["quick" if quick else "full"],
        "results": [r.to_dict() for r in results],
        "work_dir": None if passed else str(work),
    }


def _run_all(frameworks, chosen, quick, scripts, settings, work, plot, progress) -> list[Result]:
    data_dir = work / "data"
    progress("data", "generating", "the seed's dataset")
    data.write(data_dir)
    results = []
    for framework in frameworks:
        if chosen == "native":
            result = run_native(framework, data_dir, quick, scripts, work, progress)
        else:
            from agent.experiments import local

            result = local.run_local(framework, data_dir, quick, scripts, work, settings, progress)
        verdict = "pass" if result.passed else "FAIL"
        progress(framework, "done", f"{verdict}, RMSE {result.rmse:.0f}" if result.rmse is not None else verdict)
        results.append(result)
    if plot is not None:
        progress("plot", "drawing", str(plot))
        draw(plot, data_dir, results, f"smdiag health: {chosen} mode{', quick' if quick else ''}")
    return results


def choose_mode(mode: str, settings, frameworks: list[str]) -> tuple[str, str]:
    """auto: local when an engine answers, the SDK v2 is here and every framework's images are there;
    else native, saying which of these is missing."""
    if mode in ("native", "local"):
        return mode, "asked for"
    import contextlib

    from agent import engine, host
    from agent.errors import SmdiagError
    from agent.experiments import local

    try:
        client = engine.connect(settings.docker_host, timeout=5)
    except SmdiagError as exc:
        if exc.exit_code == 2:
            raise
        return "native", "no Docker engine answers"
    with contextlib.closing(client):
        sdk_problem = host.sdk_v2_problem()
        if sdk_problem:
            return "native", f"the Docker engine answers, but local mode needs {sdk_problem[0]}"
        missing = local.missing_images(client, frameworks)
    if missing:
        return (
            "native",
            f"local-mode images are missing ({', '.join(missing[:3])}); build them with smdiag images build",
        )
    return "local", "a Docker engine, the SDK v2 and every framework's images are here"


def draw(path: Path, data_dir: Path, results: list[Result], title: str) -> None:
    """The seed's picture: all the data as a scatter, one prediction line per framework."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    x, y = data.load(data_dir / "all_data.csv")
    figure, axes = pyplot.subplots(figsize=(10, 8))
    axes.scatter(x, y, s=1, color="grey", label=f"the seed's data ({len(x)} points)")
    for result in results:
        if result.line:
            verdict = "pass" if result.passed else "FAIL"
            label = f"{result.framework} prediction (test RMSE {result.rmse:.0f}, {verdict})"
            axes.plot(grid(), result.line, linewidth=2, label=label)
    axes.set_title(f"{title}: each framework's predictions over the data")
    axes.set_xlabel("x")
    axes.set_ylabel("y")
    axes.legend()
    figure.savefig(path, format="png", dpi=80)
    pyplot.close(figure)


def format_health(report: dict) -> str:
    """A rich table per framework, rendered to text."""
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"smdiag health: {report['mode']} mode ({report['mode_reason']}), bar RMSE ≤ {report['bar_rmse']:.0f}"
    )
    for column in ("framework", "mode", "train s", "deploy s", "predict s", "RMSE", "R²", "result"):
        table.add_column(column)
    for r in report["results"]:
        table.add_row(
            r["framework"],
            r["mode"],
            _fmt(r["train_s"]),
            _fmt(r["deploy_s"]),
            _fmt(r["predict_s"]),
            _fmt(r["rmse"], "{:.0f}"),
            _fmt(r["r2"], "{:.3f}"),
            "pass" if r["passed"] else "FAIL",
        )
    console = Console(width=110, record=True, file=open(os.devnull, "w"))
    console.print(table)
    lines = [console.export_text().rstrip()]
    for r in report["results"]:
        if r["error"]:
            lines.append(f"{r['framework']}: {r['error']}" + (f" (report {r['report_id']})" if r["report_id"] else ""))
    if report.get("work_dir"):
        lines.append(f"logs kept in {report['work_dir']}")
    return "\n".join(lines)


def _fmt(value, pattern: str = "{:.2f}") -> str:
    return "-" if value is None else pattern.format(value)
