"""The managed-job half of bench.diagnosis: every case of ../shared/REMOTE_FAILURES.md (testbed/remote_cases.py:
the same reproductions tests/bed/test_remote_cases.py judges), run as its user ran it with the kernel hook on
against moto (SDK v2's calls, and v3's `ModelTrainer.train` for the training cases), `rounds` times; per case
and SDK: right or wrong, and the seconds from the SDK's exception to the report on disk. A case whose call
returns (a Stopped job) is judged by `smdiag job NAME`, which names it after the fact.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.diagnosis_row import diagnosis_row
from testbed import bed
from testbed.failure_cases import CACHE
from testbed.remote_aws import ManagedAws
from testbed.remote_case import judge
from testbed.remote_cases import CASES
from testbed.remote_runs import CaseRun, Users, job_flag


def remote_rows(only: list[str] | None, rounds: int) -> list[dict]:
    chosen = [c for c in CASES if not only or c.id in only]
    if not chosen:
        return []
    v3_site = bed.site_packages_of(bed.cached_sdk_venv(CACHE, bed.SDK_V3_REQUIREMENT))
    rows = []
    with tempfile.TemporaryDirectory(prefix="smdiag-diagnosis-remote-", dir="/tmp") as workdir, ManagedAws() as aws:
        users = Users(Path(workdir), aws, v3_site)
        for round_ in range(rounds):
            if round_:
                aws.reset()  # the same job names again
            for sdk in ("v2", "v3"):
                cases = [c for c in chosen if sdk in c.sdks]
                print(f"diagnosis: managed jobs, SDK {sdk}, round {round_ + 1}: {len(cases)} cases ...",
                      file=sys.stderr, flush=True)  # fmt: skip
                if cases:
                    rows += [row(sdk, run, users) for run in users.run(sdk, cases).values()]
    return rows


def row(sdk: str, run: CaseRun, users: Users) -> dict:
    case = run.case
    if case.returns:
        report = job_answer(run, users)
        problems = judge(case, report) + (["the call raised"] if run.raised else [])
    else:
        report = run.report or {}
        problems = judge(case, run.report)
    return diagnosis_row(f"{case.id} {sdk}", case, report, problems, run.latency_s)


def job_answer(run: CaseRun, users: Users) -> dict:
    """`smdiag job NAME --json` on the case's job: what names a job whose call returned."""
    command = [sys.executable, "-m", "agent", "job", run.job or "-", *job_flag(run.case.resource), "--json"]
    done = subprocess.run(command, env=users.env, capture_output=True, text=True, timeout=120)
    return json.loads(done.stdout) if done.returncode == 0 else {}
