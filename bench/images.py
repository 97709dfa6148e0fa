"""Benchmark of the offline contract images (root; see tests/install-bed.sh).

In one run and one fresh engine, side by side with their per-stage times: a first build of the three
images, a rebuild with nothing changed, and a rebuild after an smdiag upgrade that changed only the
contract (a copy of it with one line more; goal: under 30 s for the three). Then, per framework, the
image's size and fit / deploy / predict seconds of `smdiag health --quick` in local mode beside native
mode.

    python3 -m bench.images [--cold] [--no-health]

By default the first build reuses the tests' build cache (SMDIAG_TEST_CACHE/build: the debootstrap base
and pip's install of each framework, as a machine that ran the tests has them); `--cold` starts from an
empty cache (a new machine's first build, pip's own download cache aside).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from agent.disks import human_bytes
from agent.images import CONTRACT
from testbed import bed

UPGRADED_BUILD = """
import contextlib, json, sys
from pathlib import Path
with contextlib.redirect_stdout(sys.stderr):  # stdout is the report's alone, as the CLI's is
    from agent import frameworks, images
    from agent.engine import Engine
    from agent.settings import Settings
    settings = Settings.load()
    with Engine.for_settings(settings, timeout=images.ENGINE_TIMEOUT_S) as engine:
        result = images.build(engine, ["tensorflow", "pytorch", "sklearn"], frameworks.region(),
                              settings.cache_dir / "images", contract=Path(sys.argv[1]))
print(json.dumps(result))
"""
"""`smdiag images build` as an upgraded smdiag runs it: the same build, the upgrade's contract."""


def smdiag(*args: str, env: dict) -> dict:
    done = subprocess.run([sys.executable, "-m", "agent", *args, "--json"], env=env, capture_output=True, text=True)
    if done.returncode not in (0, 1):
        sys.exit(f"smdiag {' '.join(args)} failed: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout)


def timed(argv: list[str], env: dict) -> dict:
    """A build in its own process, as a user runs it; its report with the wall time of the whole command."""
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv[:4])} failed: {done.stderr.strip()[-2000:]}")
    return {**json.loads(done.stdout), "wall": wall}


def print_builds(runs: dict[str, dict]) -> None:
    """One row per stage, one column per run: seconds, `reused`, or `-` where the run had no such stage."""
    rows: list[tuple[str | None, str]] = []
    for report in runs.values():
        rows += [(s["framework"], s["stage"]) for s in report["stages"] if (s["framework"], s["stage"]) not in rows]
    print(f"{'stage':30}" + "".join(f"{name:>18}" for name in runs))
    for framework, stage in rows:
        cells = []
        for report in runs.values():
            found = [s for s in report["stages"] if (s["framework"], s["stage"]) == (framework, stage)]
            cells.append("-" if not found else "reused" if found[0]["reused"] else f"{found[0]['seconds']:.1f}")
        print(f"{f'{framework} {stage}' if framework else stage:30}" + "".join(f"{cell:>18}" for cell in cells))
    print(f"{'build (its own report)':30}" + "".join(f"{r['seconds']:>18.1f}" for r in runs.values()))
    print(f"{'command, wall':30}" + "".join(f"{r['wall']:>18.1f}" for r in runs.values()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold", action="store_true", help="build with an empty build cache")
    parser.add_argument("--no-health", action="store_true", help="measure the builds only")
    args = parser.parse_args()
    bed.check_prerequisites()
    work = Path(tempfile.mkdtemp(prefix="smdiag-bench-images-"))
    test_cache = Path(os.environ.get("SMDIAG_TEST_CACHE", "/var/cache/smdiag-test")) / "build"
    cache = work / "cache" if args.cold else test_cache
    upgrade = work / "upgrade" / "smdiag_container.py"
    upgrade.parent.mkdir()
    upgrade.write_text(CONTRACT.read_text() + "\n# an upgrade of smdiag that changed only the contract\n")
    daemon = bed.Dockerd(work / "engine")
    env = {**os.environ, "SMDIAG_CACHE_DIR": str(cache), "SMDIAG_STATE_DIR": str(work / "state"),
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
           "SAGEMAKER_SUPPRESS_V2_WARNING": "1"}  # fmt: skip
    load = os.getloadavg()
    try:
        daemon.start()
        env["DOCKER_HOST"] = daemon.host
        command = [sys.executable, "-m", "agent", "images", "build", "--json"]
        builds = {"first build": timed(command, env), "nothing changed": timed(command, env)}
        runs = {}
        if not args.no_health:
            runs = {mode: smdiag("health", "--mode", mode, "--quick", env=env) for mode in ("native", "local")}
        upgraded = [sys.executable, "-c", UPGRADED_BUILD, str(upgrade)]
        builds["contract changed"] = timed(upgraded, env)
    finally:
        daemon.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    print(f"build cache: {'empty (--cold)' if args.cold else cache}; fresh engine; load average "
          f"{load[0]:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")  # fmt: skip
    print_builds(builds)
    changed = builds["contract changed"]["wall"]
    verdict = "met" if changed < 30 else "NOT met"
    print(f"rebuild after a contract change: {changed:.1f} s for the three (goal < 30 s: {verdict})")
    if not runs:
        return
    built = {i["framework"]: i for i in builds["first build"]["images"]}
    results = {mode: {r["framework"]: r for r in report["results"]} for mode, report in runs.items()}
    columns = f"{'fit s':>7} {'deploy s':>9} {'predict s':>10} {'RMSE':>5}"
    print()
    print(f"{'framework':11} {'size':>10}  {'':6} {columns}")
    for framework, image in built.items():
        for mode in ("native", "local"):
            r = results[mode][framework]
            cells = [f"{r[k]:.2f}" if r[k] is not None else "-" for k in ("train_s", "deploy_s", "predict_s")]
            head = f"{framework:11} {human_bytes(image['size']):>10}" if mode == "native" else " " * 22
            print(f"{head}  {mode:6} {cells[0]:>7} {cells[1]:>9} {cells[2]:>10} {r['rmse'] or '-':>5}")
        local, native = results["local"][framework], results["native"][framework]
        if local["train_s"] and native["train_s"]:
            print(f"{'':24}local / native fit: {local['train_s'] / native['train_s']:.2f}")


if __name__ == "__main__":
    main()
