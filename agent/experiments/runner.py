"""What every way of running the experiments shares: the interface a runner implements (native: the
entry scripts in processes of this host; local: the SageMaker SDK and Docker), the result it returns and
its scoring. Pure but for numpy; it imports no runner, so `health` picks one and the runners depend on
this module alone."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

BAR = {"quick": 400.0, "full": 250.0}
"""Test-set RMSE a framework must reach (the noise alone has sigma 150)."""

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
    cpu_s: float | None = None
    """CPU seconds of the framework's processes (native mode): unlike wall time, barely moved by the load
    other work puts on the machine."""
    rmse: float | None = None
    r2: float | None = None
    passed: bool = False
    error: str | None = None
    report_id: str | None = None
    line: list[float] | None = None
    """Predictions on an even grid of x, for the plot."""

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "line"}


class Runner(Protocol):
    """One way of training, deploying and testing the frameworks."""

    mode: str
    """Its name in the report: native or local."""

    def check(self, frameworks: list[str]) -> None:
        """BadInput naming what it needs and lacks, before any work starts."""

    def run_all(self, frameworks: list[str], data_dir: Path, quick: bool, scripts: Path, work: Path,
                progress: Progress) -> list[Result]:  # fmt: skip
        """Every framework's result, in the order given; each announced `done` through `progress`."""


def score(y_true, y_pred) -> tuple[float, float]:
    """RMSE and R² of predictions. Pure."""
    import numpy as np  # optional (smdiag[frameworks]): imported where the data is handled

    y_true, y_pred = np.asarray(y_true, float), np.asarray(y_pred, float)
    residual = float(np.sum((y_true - y_pred) ** 2))
    total = float(np.sum((y_true - y_true.mean()) ** 2))
    return float(np.sqrt(residual / len(y_true))), 1.0 - residual / total if total else 0.0


def grid():
    """The x values whose predictions draw a framework's line in the plot."""
    import numpy as np  # optional (smdiag[frameworks]): imported where the data is handled

    return np.linspace(-5000, 5000, 201)


def finish(result: Result, y_test, test_predictions, line, timings: dict, quick: bool) -> Result:
    """`result` with its serving timings, its score and its verdict against the bar."""
    result.deploy_s = round(timings["deploy_s"], 3)
    result.predict_s = round(timings["predict_s"], 3)
    rmse, r2 = score(y_test, test_predictions)
    result.rmse, result.r2, result.line = round(rmse, 1), round(r2, 4), list(line)
    result.passed = rmse <= BAR["quick" if quick else "full"]
    if not result.passed:
        result.error = f"test RMSE {rmse:.0f} is above the bar of {BAR['quick' if quick else 'full']:.0f}"
    return result


def reported(result: Result, progress: Progress) -> Result:
    """`result`, once its `done` phase is shown."""
    verdict = "pass" if result.passed else "FAIL"
    progress(result.framework, "done", f"{verdict}, RMSE {result.rmse:.0f}" if result.rmse is not None else verdict)
    return result
