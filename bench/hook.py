"""Benchmark of the kernel hook's cost (root; see tests/install-bed.sh): the same Python environment of the
host's SageMaker SDK v2 with `smdiag kernels enable` and without.

- `import sagemaker`: a fresh interpreter's whole run (`python -c "import sagemaker"`, the hook's .pth at
  start included), goal: the hook adds at most 5 %;
- a successful local-mode `fit()` of a busybox image whose `train` echoes two lines, against a private
  bed engine, timed around `fit()` in the program, goal: at most 1 %.
Runs alternate between the two environments so that the machine's load falls on both alike; medians.

    python3 bench/hook.py [--imports N] [--fits N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from agent import kernels  # noqa: E402

import bed  # noqa: E402

IMAGE = "bench/hook-train:1"
FIT = """
import sys, time
from sagemaker.estimator import Estimator
from sagemaker.local import LocalSession
session = LocalSession(sagemaker_config={"SchemaVersion": "1.0",
    "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}})
session.config = {"local": {"local_code": True}}
estimator = Estimator(image_uri=sys.argv[1], role="arn:aws:iam::111111111111:role/dummy", instance_count=1,
                      instance_type="local", sagemaker_session=session)
started = time.perf_counter()
estimator.fit()
print("fit_s", time.perf_counter() - started, file=sys.stderr)
"""


def timed(argv: list[str], env: dict, cwd: Path) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed: {done.stderr.strip()[-2000:]}")
    return wall, done.stderr


def alternate(runs: int, measure) -> dict[str, float]:
    """The median of `runs` measurements per environment, taken in turns."""
    seen: dict[str, list[float]] = {"plain": [], "hooked": []}
    for _ in range(runs):
        for name, values in seen.items():
            values.append(measure(name))
    return {name: statistics.median(values) for name, values in seen.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--imports", type=int, default=15, help="runs of `import sagemaker` per environment")
    parser.add_argument("--fits", type=int, default=5, help="local fits per environment")
    args = parser.parse_args()
    bed.check_prerequisites()
    work = Path(tempfile.mkdtemp(prefix="smdiag-bench-hook-"))
    envs = {name: bed.host_packages_venv(work / name) for name in ("plain", "hooked")}
    state = work / "state"
    enabled = kernels.enable(state, [str(envs["hooked"])], Path(sys.executable))
    if not enabled["ok"]:
        sys.exit(kernels.format_result(enabled))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SMDIAG_", "DOCKER_"))}
    env.update(HOME=str(work), SMDIAG_STATE_DIR=str(state), AWS_DEFAULT_REGION="us-east-1",
               AWS_EC2_METADATA_DISABLED="true", SAGEMAKER_SUPPRESS_V2_WARNING="1")  # fmt: skip
    (work / "fit.py").write_text(FIT)
    daemon = bed.Dockerd(work / "engine")
    try:
        daemon.start()
        env["DOCKER_HOST"] = daemon.host
        with daemon.client() as client:
            bed.ImageFactory(work).build(client, IMAGE, scripts={"train": "echo training; echo done"})
            client.networks.create("sagemaker-local")
        python = {name: str(path / "bin" / "python") for name, path in envs.items()}
        imports = alternate(args.imports, lambda name: timed([python[name], "-c", "import sagemaker"], env, work)[0])
        fits = alternate(args.fits, lambda name: _fit_seconds(python[name], env, work))
    finally:
        daemon.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    print(f"{'measure (median)':34} {'without hook':>13} {'with hook':>10} {'ratio':>7}  goal")
    for label, result, goal in (
        (f"import sagemaker, whole process x{args.imports}", imports, 1.05),
        (f"local fit(), busybox train x{args.fits}", fits, 1.01),
    ):
        ratio = result["hooked"] / result["plain"]
        verdict = "met" if ratio <= goal else "MISSED"
        print(f"{label:34} {result['plain']:>12.3f}s {result['hooked']:>9.3f}s {ratio:>7.3f}  <= {goal:.2f} {verdict}")


def _fit_seconds(python: str, env: dict, work: Path) -> float:
    _wall, stderr = timed([python, str(work / "fit.py"), IMAGE], env, work)
    return float(stderr.rsplit("fit_s", 1)[1].split()[0])


if __name__ == "__main__":
    main()
