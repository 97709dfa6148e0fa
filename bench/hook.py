"""Benchmark of the kernel hook's cost (root; see tests/install-bed.sh): the same Python environment of the
host's SageMaker SDK v2 with `smdiag kernels enable` and without.

- `import sagemaker`: a fresh interpreter's whole run (`python -c "import sagemaker"`, the hook's .pth at
  start included), its wall time and its CPU time (user + system, which a busy machine disturbs far less),
  goal: the hook adds at most 5 %;
- a successful local-mode `fit()` of a busybox image whose `train` echoes two lines, against a private
  bed engine, timed around `fit()` in the program, goal: at most 1 %.
Runs alternate between the two environments so that the machine's load falls on both alike; medians.
On a busy machine the noise is larger than these goals, so two more lines time the hook's own work
in-process: at import, the hook's and the wrapper's modules (`-X importtime`, cumulative: an upper bound,
as it counts stdlib modules the SDK imports anyway) as a share of the import's CPU time; in a local fit,
reading the call's attributes and keeping a copy of each compose line the fit printed, as a share of it.

    python3 -m bench.hook [--imports N] [--fits N]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from agent.host import kernels
from testbed import bed

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
OWN_WORK = """
import timeit
import sagemaker
from smdiag_agent.guest import capture, config, local
from sagemaker.estimator import Estimator, EstimatorBase
from sagemaker.local import LocalSession
estimator = Estimator(image_uri="x", role="arn:aws:iam::111111111111:role/dummy", instance_count=1,
                      instance_type="local", sagemaker_session=LocalSession())
fit, run, line = EstimatorBase.fit.__wrapped__, capture.Run([]), b"x" * 80 + b"\\n"
is_local = local.method("fit")
describe = min(timeit.repeat(lambda: is_local(fit, (estimator,), {}), number=1000, repeat=5))
keep = min(timeit.repeat(lambda: config.guarded("stream", run.keep, line), number=1000, repeat=5))
print("own_s", describe / 1000, keep / 1000)
"""


def timed(argv: list[str], env: dict, cwd: Path) -> tuple[float, float, subprocess.CompletedProcess]:
    """Wall and CPU seconds of one run (the CPU of the children reaped meanwhile: only this one)."""
    before, started = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True)
    wall, after = time.perf_counter() - started, resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed: {done.stderr.strip()[-2000:]}")
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, done


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
        import_runs = {"plain": [], "hooked": []}
        imports = alternate(args.imports, lambda name: _import_seconds(python[name], env, work, import_runs[name]))
        import_cpu = {name: statistics.median(cpu) for name, cpu in import_runs.items()}
        fit_lines: list[int] = []
        fits = alternate(args.fits, lambda name: _fit_seconds(python[name], env, work, fit_lines))
        _wall, _cpu, own = timed([python["hooked"], "-c", OWN_WORK], env, work)
        _wall, _cpu, importtime = timed([python["hooked"], "-X", "importtime", "-c", "import sagemaker"], env, work)
    finally:
        daemon.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    print(f"{'measure (median)':34} {'without hook':>13} {'with hook':>10} {'ratio':>7}  goal")
    for label, result, goal in (
        (f"import sagemaker, wall x{args.imports}", imports, 1.05),
        (f"import sagemaker, CPU x{args.imports}", import_cpu, 1.05),
        (f"local fit(), busybox train x{args.fits}", fits, 1.01),
    ):
        ratio = result["hooked"] / result["plain"]
        verdict = "met" if ratio <= goal else "MISSED"
        print(f"{label:34} {result['plain']:>12.3f}s {result['hooked']:>9.3f}s {ratio:>7.3f}  <= {goal:.2f} {verdict}")
    hook_import_s = sum(
        int(line.split("|")[1]) / 1e6
        for line in importtime.stderr.splitlines()
        if line.startswith("import time:")
        and line.split("|")[-1].strip().startswith(("smdiag_kernel_hook", "smdiag_agent"))
    )
    label, ratio = "hook's own modules at import", 1 + hook_import_s / import_cpu["plain"]
    print(f"{label:34} {import_cpu['plain']:>12.3f}s {import_cpu['plain'] + hook_import_s:>9.3f}s {ratio:>7.4f}  "
          f"<= 1.05 {'met' if ratio <= 1.05 else 'MISSED'} ({hook_import_s * 1e3:.1f} ms)")  # fmt: skip
    describe_s, keep_s = map(float, own.stdout.rsplit("own_s", 1)[1].split())
    own_s = describe_s + keep_s * max(fit_lines)
    label = f"wrapper's own work in a fit, {max(fit_lines)} lines"
    ratio = 1 + own_s / fits["plain"]
    print(f"{label:34} {fits['plain']:>12.3f}s {fits['plain'] + own_s:>9.3f}s {ratio:>7.5f}  <= 1.01 "
          f"{'met' if ratio <= 1.01 else 'MISSED'} ({own_s * 1e6:.0f} us)")  # fmt: skip


def _import_seconds(python: str, env: dict, work: Path, cpu: list[float]) -> float:
    wall, cpu_s, _done = timed([python, "-c", "import sagemaker"], env, work)
    cpu.append(cpu_s)
    return wall


def _fit_seconds(python: str, env: dict, work: Path, lines: list[int]) -> float:
    _wall, _cpu, done = timed([python, str(work / "fit.py"), IMAGE], env, work)
    lines.append(len(done.stdout.splitlines()))
    return float(done.stderr.rsplit("fit_s", 1)[1].split()[0])


if __name__ == "__main__":
    main()
