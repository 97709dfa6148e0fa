"""One row of bench.diagnosis's tables, local mode's or a managed job's: the case, what smdiag said of it, right
or wrong, and how long the report took."""

from __future__ import annotations


def diagnosis_row(label: str, case, report: dict, problems: list[str], latency_s: float | None,
                  case_s: float | None = None) -> dict:  # fmt: skip
    return {
        "case": label,
        "source": case.source,
        "cause": case.cause,
        "expected": case.category,
        "category": report.get("category") or "-",
        "summary": " ".join((report.get("summary") or "-").split()),
        "right": not problems,
        "problems": problems,
        "latency_s": latency_s,
        "evidence_seconds": report.get("evidence_seconds") or {},
        "case_s": case_s,
    }
