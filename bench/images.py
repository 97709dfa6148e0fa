"""Benchmark of the offline contract images (root; see tests/install-bed.sh).

Per framework: the image's build time and size in a fresh engine, and fit / deploy / predict seconds of
`smdiag health --quick` in local mode beside native mode, from the same run.

    python3 bench/images.py [--cold]

By default the build reuses the tests' build cache (SMDIAG_TEST_CACHE/build: the debootstrap base and
pip's install of each framework, as a machine that ran the tests has them); `--cold` starts from an
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from agent.disks import human_bytes  # noqa: E402

import bed  # noqa: E402


def smdiag(*args: str, env: dict) -> dict:
    done = subprocess.run([sys.executable, "-m", "agent", *args, "--json"], env=env, capture_output=True, text=True)
    if done.returncode not in (0, 1):
        sys.exit(f"smdiag {' '.join(args)} failed: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold", action="store_true", help="build with an empty build cache")
    args = parser.parse_args()
    bed.check_prerequisites()
    work = Path(tempfile.mkdtemp(prefix="smdiag-bench-images-"))
    test_cache = Path(os.environ.get("SMDIAG_TEST_CACHE", "/var/cache/smdiag-test")) / "build"
    cache = work / "cache" if args.cold else test_cache
    daemon = bed.Dockerd(work / "engine")
    env = {**os.environ, "SMDIAG_CACHE_DIR": str(cache), "SMDIAG_STATE_DIR": str(work / "state"),
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
           "SAGEMAKER_SUPPRESS_V2_WARNING": "1"}  # fmt: skip
    try:
        daemon.start()
        env["DOCKER_HOST"] = daemon.host
        built = {i["framework"]: i for i in smdiag("images", "build", env=env)["images"]}
        runs = {mode: smdiag("health", "--mode", mode, "--quick", env=env) for mode in ("native", "local")}
    finally:
        daemon.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    results = {mode: {r["framework"]: r for r in report["results"]} for mode, report in runs.items()}
    print(f"build cache: {'empty (--cold)' if args.cold else cache}")
    columns = f"{'fit s':>7} {'deploy s':>9} {'predict s':>10} {'RMSE':>5}"
    print(f"{'framework':11} {'build s':>8} {'size':>10}  {'':6} {columns}")
    for framework, image in built.items():
        for mode in ("native", "local"):
            r = results[mode][framework]
            cells = [f"{r[k]:.2f}" if r[k] is not None else "-" for k in ("train_s", "deploy_s", "predict_s")]
            head = (
                f"{framework:11} {image['seconds']:>8.1f} {human_bytes(image['size']):>10}"
                if mode == "native"
                else " " * 31
            )
            print(f"{head}  {mode:6} {cells[0]:>7} {cells[1]:>9} {cells[2]:>10} {r['rmse'] or '-':>5}")
        local, native = results["local"][framework], results["native"][framework]
        if local["train_s"] and native["train_s"]:
            print(f"{'':33}local / native fit: {local['train_s'] / native['train_s']:.2f}")


if __name__ == "__main__":
    main()
