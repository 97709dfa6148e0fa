"""`smdiag health`: train, deploy and test the three experiments, natively or in SageMaker local mode.

It checks its inputs, picks a runner (agent.experiments.native: the entry scripts in processes of this
host; agent.experiments.local and local_v3: SDK v2 or v3 and Docker; all implement
agent.experiments.runner.Runner), hands it the seed's data, and reports, draws and formats the scored results.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from agent import inputs
from agent.errors import BadInput, SmdiagError
from agent.experiments import data, local
from agent.experiments.local_v3 import LocalV3Runner
from agent.experiments.native import NativeRunner
from agent.experiments.runner import BAR, Progress, Result, Runner, grid, no_progress
from agent.frameworks import ENTRY_POINTS, SCRIPTS
from agent.host import sdk as sdk_lookup
from agent.waiting import wait_until

if TYPE_CHECKING:
    from agent.engine import Engine

ENGINE_TIMEOUT_S = 5
"""How long auto mode waits for the engine to answer before it runs natively instead."""
SDKS = {"auto": None, "v2": 2, "v3": 3}
"""--sdk: the SDK major local mode drives (auto: the one installed in smdiag's environment)."""


def run_health(
    frameworks: list[str],
    mode: str,
    quick: bool,
    scripts: Path | None,
    settings,
    engine: Engine,
    plot: Path | None = None,
    progress: Progress = no_progress,
    sdk: str = "auto",
) -> dict:
    """Every framework's result, and whether all passed. `mode` is auto, native or local; `sdk` is auto,
    v2 or v3 (the SDK major local mode drives).

    Everything it will use is checked first (BadInput). The work directory is kept when a framework
    failed (its logs), removed otherwise, and removed when the run is interrupted."""
    scripts = scripts or SCRIPTS
    if mode not in ("auto", "native", "local"):
        raise BadInput(f"unknown mode {mode!r}", "use auto, native or local")
    if sdk not in SDKS:
        raise BadInput(f"unknown --sdk {sdk!r}", "use v2, v3 or auto")
    major = sdk_major(sdk)
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
    if mode == "local":  # asked for, the SDK is named before the dataset's packages
        if major is None:
            inputs.sagemaker_sdk("health --mode local")
        runner_for(mode, settings, major).check(frameworks)
    inputs.packages("smdiag health", [*data.MODULES, *(["matplotlib"] if plot else [])])
    chosen, why = choose_mode(mode, engine, frameworks, major)
    chosen_runner = runner_for(chosen, settings, major)
    chosen_runner.check(frameworks)
    work = Path(tempfile.mkdtemp(prefix="smdiag-health-"))
    try:
        results = _run_all(frameworks, chosen_runner, quick, scripts, work, plot, progress)
    except BaseException:
        _remove(work)
        raise
    passed = all(r.passed for r in results)
    if passed:  # a failure keeps the logs for the user to read
        _remove(work)
    return {
        "passed": passed,
        "mode": chosen,
        "mode_reason": why,
        "sdk": f"v{major}" if chosen == "local" else None,
        "quick": quick,
        "bar_rmse": BAR["quick" if quick else "full"],
        "results": [r.to_dict() for r in results],
        "work_dir": None if passed else str(work),
    }


def sdk_major(sdk: str) -> int | None:
    """The SDK major of --sdk: as asked, or (auto) the one installed here when smdiag knows it, else None.
    Read from package metadata, nothing imported."""
    return SDKS[sdk] if SDKS[sdk] is not None else sdk_lookup.known_major()


def runner_for(mode: str, settings, major: int | None) -> Runner:
    """The runner of a chosen mode (native, or local on SDK `major`)."""
    if mode == "native":
        return NativeRunner()
    if major == 3:
        return LocalV3Runner(settings)
    return local.LocalRunner(settings)


def _run_all(frameworks, runner: Runner, quick, scripts, work, plot, progress) -> list[Result]:
    data_dir = work / "data"
    progress("data", "generating", "the seed's dataset")
    data.write(data_dir)
    results = runner.run_all(frameworks, data_dir, quick, scripts, work, progress)
    if plot is not None:
        progress("plot", "drawing", str(plot))
        draw(plot, data_dir, results, f"smdiag health: {runner.mode} mode{', quick' if quick else ''}")
    return results


def choose_mode(mode: str, engine: Engine, frameworks: list[str], major: int | None) -> tuple[str, str]:
    """auto: local when an engine answers, the SDK `major` (None: v2 or v3) is here and every framework's
    images are there; else native, saying which of these is missing."""
    if mode in ("native", "local"):
        return mode, "asked for"
    try:
        client = engine.client
    except SmdiagError as exc:
        if exc.exit_code == 2:
            raise
        return "native", "no Docker engine answers"
    sdk_problem = sdk_lookup.problem(major)
    if sdk_problem:
        return "native", f"the Docker engine answers, but local mode needs {sdk_problem[0]}"
    missing = local.missing_images(client, frameworks)
    if missing:
        return (
            "native",
            f"local-mode images are missing ({', '.join(missing[:3])}); build them with smdiag images build",
        )
    return "local", f"a Docker engine, the SDK v{major} and every framework's images are here"


def draw(path: Path, data_dir: Path, results: list[Result], title: str) -> None:
    """The seed's picture: all the data as a scatter, one prediction line per framework."""
    import matplotlib  # optional (smdiag[frameworks]), and only --plot draws

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
    sdk = f", SDK {report['sdk']}" if report.get("sdk") else ""
    table = Table(
        title=f"smdiag health: {report['mode']} mode{sdk} ({report['mode_reason']}), "
        f"bar RMSE ≤ {report['bar_rmse']:.0f}"
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


def _remove(work: Path) -> None:
    """Remove the run's work directory, again while a killed step's last writes still land in it."""

    def gone() -> bool:
        shutil.rmtree(work, ignore_errors=True)
        return not work.exists()

    wait_until(gone, timeout=10)
