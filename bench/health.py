"""Benchmark of `smdiag health`: per framework and mode, train / deploy / predict seconds and test RMSE,
and the wall time of the whole `--quick` native check (goal: under 90 s on 2 cores).

    python3 bench/health.py [--full] [--mode native|local]
"""

import argparse
import json
import subprocess
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the seed's epochs instead of --quick")
    parser.add_argument("--mode", default="native", choices=["native", "local"])
    args = parser.parse_args()
    argv = [sys.executable, "-m", "agent", "health", "--mode", args.mode, "--json"]
    if not args.full:
        argv.append("--quick")
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True)
    total = time.perf_counter() - started
    report = json.loads(done.stdout)
    print(f"{'framework':12} {'mode':7} {'train s':>8} {'deploy s':>9} {'predict s':>10} {'RMSE':>6}  result")
    for r in report["results"]:
        cells = [r["train_s"], r["deploy_s"], r["predict_s"]]
        times = " ".join(
            f"{c:>{w}.2f}" if c is not None else f"{'-':>{w}}" for c, w in zip(cells, (8, 9, 10), strict=True)
        )
        rmse = f"{r['rmse']:6.0f}" if r["rmse"] is not None else f"{'-':>6}"
        print(f"{r['framework']:12} {r['mode']:7} {times} {rmse}  {'pass' if r['passed'] else 'FAIL'}")
    label = "full" if args.full else "--quick"
    print(f"total wall time, {label} {report['mode']}: {total:.1f} s (goal for --quick native: < 90 s)")


if __name__ == "__main__":
    main()
