"""How often smdiag names the cause of the local-mode failures users hit, and how fast its report arrives.

Replays every reproducible case of ../shared/FAILURES.md (testbed/failure_cases.py: the same reproductions
tests/bed/test_real_failures.py judges) on the real bed with the real SDK v2, and prints per case: the cause
the thread established, smdiag's category and summary, right or wrong (category, the summary quoting the
evidence, the hint naming the fix), the seconds from the SDK's exception to the report on disk (goal
< 2 s, issue 18) and the evidence source that took longest (the report's `evidence_seconds`); then the
total. Exits 1 when any case is wrong.

    python3 -m bench.diagnosis [--only id,id,...] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from testbed import bed, failure_cases

LATENCY_GOAL_S = 2.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated case ids")
    parser.add_argument("--json", action="store_true", help="the rows as JSON on stdout")
    args = parser.parse_args()
    chosen = [c for c in failure_cases.CASES if not args.only or c.id in args.only.split(",")]
    try:
        bed.check_prerequisites()
    except bed.BedUnavailable as exc:
        print(f"diagnosis: the bed is unavailable: {exc}", file=sys.stderr)
        return 2
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
                rows.append({
                    "case": case.id,
                    "source": case.source,
                    "cause": case.cause,
                    "expected": case.category,
                    "category": report.get("category") or "-",
                    "summary": " ".join((report.get("summary") or "-").split()),
                    "right": not problems,
                    "problems": problems,
                    "latency_s": outcome.latency_s if outcome else None,
                    "evidence_seconds": report.get("evidence_seconds") or {},
                    "case_s": time.monotonic() - started,
                })  # fmt: skip
        finally:
            cases_bed.close()
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print_table(rows)
    return 0 if all(r["right"] for r in rows) else 1


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
            f"{latency:>8} {source:<19} {r['case_s']:>7.1f}  {r['summary'][:110]}"
        )
        for problem in r["problems"]:
            print(f"{'':<24} ! {problem}")
    right = sum(r["right"] for r in rows)
    latencies = [r["latency_s"] for r in rows if r["latency_s"] is not None]
    print(f"\nright: {right}/{len(rows)}")
    if latencies:
        slow = sum(1 for s in latencies if s >= LATENCY_GOAL_S)
        median = sorted(latencies)[len(latencies) // 2]
        print(
            f"exception -> report on disk: max {max(latencies):.2f} s, median {median:.2f} s over "
            f"{len(latencies)} reports; {slow} at or over the {LATENCY_GOAL_S:.0f} s goal"
        )


if __name__ == "__main__":
    sys.exit(main())
