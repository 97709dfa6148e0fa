"""How often smdiag names the cause of the local-mode failures users hit, and how fast its report arrives.

Replays every reproducible case of ../shared/FAILURES.md (testbed/failure_cases.py: the same reproductions
tests/bed/test_real_failures.py judges) on the real bed with the real SDK v2, and prints per case: the cause
the thread established, smdiag's category and summary, right or wrong (category, the summary quoting the
evidence, the hint naming the fix), the seconds from the SDK's exception to the report on disk (goal
< 2 s, issue 18) and the evidence source that took longest (the report's `evidence_seconds`); then the
total. Then the same for the managed-job cases of ../shared/REMOTE_FAILURES.md against moto (bench.diagnosis_remote:
SDK v2 and v3, `--rounds` times), and the two latencies side by side. Exits 1 when any case is wrong.

    python3 -m bench.diagnosis [--only id,id,...] [--rounds N] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from bench.diagnosis_remote import remote_rows
from bench.diagnosis_row import diagnosis_row
from testbed import bed, failure_cases

LATENCY_GOAL_S = 2.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated case ids")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each managed-job case (default 3)")
    parser.add_argument("--json", action="store_true", help="the rows as JSON on stdout")
    args = parser.parse_args()
    only = args.only.split(",") if args.only else None
    chosen = [c for c in failure_cases.CASES if not only or c.id in only]
    if chosen:
        try:
            bed.check_prerequisites()
        except bed.BedUnavailable as exc:
            print(f"diagnosis: the bed is unavailable: {exc}", file=sys.stderr)
            return 2
    rows = local_rows(chosen) if chosen else []
    remote = remote_rows(only, args.rounds)
    if args.json:
        print(json.dumps({"local": rows, "remote": remote}, indent=2))
    else:
        for title, table in (("local mode (FAILURES.md) on the bed", rows), ("managed jobs (REMOTE_FAILURES.md) "
                             "against moto, the kernel hook on", remote)):  # fmt: skip
            if table:
                print(f"\n{title}:")
                print_table(table)
        print_side_by_side({"local mode, the bed's engine": rows, "managed jobs, moto": remote})
    return 0 if all(r["right"] for r in rows + remote) else 1


def local_rows(chosen: list) -> list[dict]:
    """The local-mode cases reproduced on the bed, one row each."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="smdiag-diagnosis-", dir="/tmp") as workdir:
        cases_bed = failure_cases.Bed(Path(workdir))
        try:
            for case in chosen:
                print(f"diagnosis: {case.id} ...", file=sys.stderr, flush=True)
                started = time.monotonic()
                try:
                    outcome = case.reproduce(cases_bed)
                    problems = failure_cases.judge(case, outcome)
                except Exception as exc:  # noqa: BLE001 - a case that cannot be set up is a row, not the end
                    outcome, problems = None, [f"not reproduced: {type(exc).__name__}: {exc}"]
                report = (outcome.report if outcome else None) or {}
                latency = outcome.latency_s if outcome else None
                rows.append(diagnosis_row(case.id, case, report, problems, latency, time.monotonic() - started))
        finally:
            cases_bed.close()
    return rows


def print_table(rows: list[dict]) -> None:
    print(
        f"{'case':<24} {'expected cause':<46} {'category':<22} {'ok':<5} {'report s':>8} {'slowest source':<19} "
        f"{'case s':>7}  summary"
    )
    for r in rows:
        latency = f"{r['latency_s']:.2f}" if r["latency_s"] is not None else "-"
        slowest = max(r["evidence_seconds"].items(), key=lambda item: item[1], default=None)
        source = f"{slowest[0]} {slowest[1]:.2f}" if slowest else "-"
        print(
            f"{r['case']:<24} {r['cause'][:46]:<46} {r['category']:<22} {'right' if r['right'] else 'WRONG':<5} "
            f"{latency:>8} {source:<19} {seconds(r['case_s'], 7)}  {r['summary'][:110]}"
        )
        for problem in r["problems"]:
            print(f"{'':<24} ! {problem}")
    right = sum(r["right"] for r in rows)
    latencies = [r["latency_s"] for r in rows if r["latency_s"] is not None]
    print(f"\nright: {right}/{len(rows)}")
    if latencies:
        slow = sum(1 for s in latencies if s >= LATENCY_GOAL_S)
        print(
            f"exception -> report on disk: max {max(latencies):.2f} s, median {median(latencies):.2f} s over "
            f"{len(latencies)} reports; {slow} at or over the {LATENCY_GOAL_S:.0f} s goal"
        )


def print_side_by_side(tables: dict[str, list[dict]]) -> None:
    header = f"{'right':>7} {'median s':>9} {'max s':>7} {'reports':>8} {'>= 2 s':>7}"
    print(f"\n{'exception -> report on disk':<32} {header}")
    for name, rows in tables.items():
        latencies = [r["latency_s"] for r in rows if r["latency_s"] is not None]
        right = f"{sum(r['right'] for r in rows)}/{len(rows)}"
        slow = sum(1 for s in latencies if s >= LATENCY_GOAL_S)
        print(f"{name:<32} {right:>7} {seconds(median(latencies), 9)} {seconds(max(latencies, default=None), 7)} "
              f"{len(latencies):>8} {slow:>7}")  # fmt: skip


def median(values: list[float]) -> float | None:
    return sorted(values)[len(values) // 2] if values else None


def seconds(value: float | None, width: int) -> str:
    return f"{value:>{width}.2f}" if value is not None else f"{'-':>{width}}"


if __name__ == "__main__":
    sys.exit(main())
