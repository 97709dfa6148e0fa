"""Benchmark of `smdiag health` against the seed chapter's own scripts, side by side in one run.

    python3 -m bench.health               # the seed's scripts, smdiag full and smdiag --quick, idle
    python3 -m bench.health --quick [--runs N]    # smdiag --quick alone, N runs one after another
    python3 -m bench.health --contended [--full]  # smdiag --quick (or full), idle and with one core busy

The anchor is bench/seed_scripts: the chapter's three entry scripts with their own settings (unscaled
inputs, 1000/1000/2000 epochs, the PyTorch DataLoader's num_workers=2, default threads), run one framework
at a time as the book does. smdiag's runs are the real command (`python -m agent health --mode native`),
which trains the three at once. Each framework's time is its training process's wall time (start-up
included); its CPU seconds (training and serving; smdiag's runs only) move less with the load other work
puts on a shared machine; RMSE is on the seed's test set (the noise alone is N(150, 150): ≈150 is the floor).
Goals: full RMSE ≤ 165 for every framework in less time than the seed's; --quick RMSE ≤ 200 for every
framework in ≤ 20 s wall for all three; with one core busy, each framework's time ≤ 2× its idle time.
"""

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEED_SCRIPTS = Path(__file__).resolve().parent / "seed_scripts"
FRAMEWORKS = ("tensorflow", "pytorch", "sklearn")
GOALS = {"full": 165.0, "quick": 200.0}
QUICK_WALL_GOAL_S = 20.0


def health(*args: str) -> tuple[dict, float]:
    """One `smdiag health --mode native --json` run: its report and wall seconds."""
    argv = [sys.executable, "-m", "agent", "health", "--mode", "native", "--json", *args]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, env=env)
    wall = time.perf_counter() - started
    try:
        return json.loads(done.stdout), wall
    except json.JSONDecodeError:
        sys.exit(f"bench: health {' '.join(args)} printed no report (exit {done.returncode}):\n{done.stderr[-2000:]}")


def seed_run() -> tuple[dict, float]:
    """The seed's scripts, one framework after another as the book runs them."""
    results, wall = [], 0.0
    for framework in FRAMEWORKS:
        report, seconds = health("--framework", framework, "--scripts", str(SEED_SCRIPTS))
        results += report["results"]
        wall += seconds
    return {"results": results}, wall


def by_framework(report: dict) -> dict:
    return {r["framework"]: r for r in report["results"]}


@contextlib.contextmanager
def one_core_busy():
    """A single spinning process (ours, killed by its pid on the way out): another kernel's busy loop."""
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        yield
    finally:
        burner.kill()
        burner.wait()


def cell(result: dict, key: str, pattern: str) -> str:
    return pattern.format(result[key]) if result.get(key) is not None else "-"


def print_runs(runs: list[tuple[str, dict, float]], reference: str) -> None:
    """One row per framework and run: time, RMSE, and the ratios to the `reference` run."""
    base = by_framework(next(report for label, report, _ in runs if label == reference))
    print(f"ratios (×) to the {reference} run")
    print(f"{'framework':11} {'run':22} {'train s':>8} {'CPU s':>6} {'RMSE':>6} {'time ×':>7} {'RMSE ×':>7}")
    for framework in FRAMEWORKS:
        for label, report, _ in runs:
            r, b = by_framework(report)[framework], base[framework]
            time_ratio = f"{r['train_s'] / b['train_s']:.2f}" if r["train_s"] and b["train_s"] else "-"
            rmse_ratio = f"{r['rmse'] / b['rmse']:.2f}" if r["rmse"] and b["rmse"] else "-"
            error = f"  {r['error']}" if r.get("error") else ""
            print(
                f"{framework:11} {label:22} {cell(r, 'train_s', '{:8.1f}'):>8} {cell(r, 'cpu_s', '{:6.1f}'):>6}"
                f" {cell(r, 'rmse', '{:6.1f}'):>6} {time_ratio:>7} {rmse_ratio:>7}{error}"
            )
    print(" ".join(f"{label}: {wall:.1f} s wall;" for label, _, wall in runs))


def verdicts(runs: dict[str, tuple[dict, float]]) -> list[str]:
    """The goals, each met or not, from the runs that measure it."""
    lines = []
    if "smdiag full" in runs:
        full = by_framework(runs["smdiag full"][0])
        seed = by_framework(runs["seed"][0]) if "seed" in runs else None
        for framework, r in full.items():
            ok = r["rmse"] is not None and r["rmse"] <= GOALS["full"]
            faster = seed is None or (r["train_s"] or 1e9) < (seed[framework]["train_s"] or 0)
            vs_seed = "" if seed is None else f", {'faster' if faster else 'NOT faster'} than the seed's"
            lines.append(f"full {framework}: RMSE {r['rmse']} {'≤' if ok else '>'} {GOALS['full']:.0f}{vs_seed}"
                         f" -> {'met' if ok and faster else 'MISSED'}")  # fmt: skip
    for label, (quick, wall) in runs.items():
        if label.startswith("smdiag --quick"):
            worst = max((r["rmse"] or 1e9) for r in quick["results"])
            ok = worst <= GOALS["quick"] and wall <= QUICK_WALL_GOAL_S
            lines.append(f"{label[7:]}: worst RMSE {worst}, {wall:.1f} s wall (goals ≤ {GOALS['quick']:.0f}, "
                         f"≤ {QUICK_WALL_GOAL_S:.0f} s) -> {'met' if ok else 'MISSED'}")  # fmt: skip
    return lines


def load() -> str:
    return "load average " + ", ".join(f"{v:.2f}" for v in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contended", action="store_true", help="smdiag idle and with one core busy")
    parser.add_argument("--full", action="store_true", help="with --contended: the full mode, not --quick")
    parser.add_argument("--quick", action="store_true", help="smdiag --quick alone (no seed, no full run)")
    parser.add_argument("--runs", type=int, default=1, help="with --quick: how many runs, one after another")
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores, {load()} at the start")
    if args.quick:
        runs = {}
        for number in range(1, args.runs + 1):
            runs[f"smdiag --quick #{number}"] = health("--quick")
            print(f"run {number}: {load()}")
        print_runs([(label, *run) for label, run in runs.items()], reference="smdiag --quick #1")
        print("\n".join(verdicts(runs)))
    elif not args.contended:
        runs = {"seed": seed_run(), "smdiag full": health(), "smdiag --quick": health("--quick")}
        print_runs([(label, *run) for label, run in runs.items()], reference="seed")
        print("\n".join(verdicts(runs)))
    else:
        for mode, flags in [("full", ()) if args.full else ("--quick", ("--quick",))]:
            idle = health(*flags)
            with one_core_busy():
                busy = health(*flags)
            print(f"\nsmdiag {mode}:")
            print_runs([("idle", *idle), ("one core busy", *busy)], reference="idle")
            for framework, r in by_framework(busy[0]).items():
                ratio = r["train_s"] / by_framework(idle[0])[framework]["train_s"]
                print(f"{framework}: contended / idle = {ratio:.2f} (goal ≤ 2) -> {'met' if ratio <= 2 else 'MISSED'}")
    print(f"{load()} at the end")


if __name__ == "__main__":
    main()
