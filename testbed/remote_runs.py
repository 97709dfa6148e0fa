"""The managed-job cases run as their users ran them (testbed/remote_program.py) with the kernel hook on, against
moto (testbed/remote_aws.py): shared by tests/bed/test_remote_cases.py and bench/diagnosis.py.

One program per SDK runs every case it is given, in a row (an SDK's import costs seconds; v3's environment is
another interpreter): each case's job gets the case's state, or its Create is refused, by the job's name.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from agent.host import kernels
from testbed import TESTBED, bed
from testbed.remote_aws import ManagedAws
from testbed.remote_case import JOBS, RemoteCase

PROGRAM = TESTBED / "remote_program.py"
PROGRAM_TIMEOUT_S = 900
REPORT_TIMEOUT_S = 30
"""How long the program waits for the report of a call that raised (a missing report is a failure of the case)."""


@dataclass
class CaseRun:
    """What one case's user got: the exception as raised (None: the call returned), smdiag's report (None: none),
    seconds from the SDK's exception to the report on disk, the case's own output, and its job's name."""

    case: RemoteCase
    raised: dict | None
    report: dict | None
    latency_s: float | None
    stdout: str
    stderr: str
    job: str | None


class Users:
    """A user's environment per SDK with the kernel hook on (v2: the host's packages; v3: the cached SDK v3
    environment), in `work`, reaching AWS through `aws`."""

    def __init__(self, work: Path, aws: ManagedAws, v3_site: str | None = None) -> None:
        self.work = work
        self.aws = aws
        self.v3_site = v3_site
        self.env = {
            **bed.hermetic_environment(work),
            **aws.env(work),
            "HOME": str(work / "home"),
            "SAGEMAKER_VALIDATE_ROLE": "false",  # v3 simulates the role's policies, which moto does not implement
            "AWS_RETRY_MODE": "standard",  # a user's retry settings: the throttled case retries once, not four times
            "AWS_MAX_ATTEMPTS": "2",
        }
        self.state = Path(self.env["SMDIAG_STATE_DIR"])
        self.runs = 0

    def environment(self, sdk: str) -> Path:
        venv = self.work / "envs" / sdk
        if not venv.exists():
            if sdk == "v2":
                bed.host_packages_venv(venv)
            else:
                bed.packages_venv(venv, self.v3_site)
            enabled = kernels.enable(self.state, [str(venv)], Path(sys.executable))
            assert enabled["ok"], enabled
        return venv

    def run(self, sdk: str, cases: list[RemoteCase]) -> dict[str, CaseRun]:
        """Each case's call in one program of `sdk`, the hook on; its outcome per case id."""
        self.runs += 1
        cwd = self.work / f"{sdk}-run{self.runs}"
        cwd.mkdir(parents=True)
        spec, result = cwd / "spec.json", cwd / "result.json"
        spec.write_text(json.dumps({
            "cases": [{"id": c.id, "name": c.name, "resource": c.resource, "call": c.call,
                       "wait_timeout": c.wait_timeout} for c in cases],
            "state_dir": str(self.state), "report_timeout": REPORT_TIMEOUT_S,
        }))  # fmt: skip
        python = self.environment(sdk) / "bin" / "python"
        with self.cases_on_aws(cases) as created:
            done = subprocess.run([str(python), str(PROGRAM), sdk, str(spec), str(result)], env=self.env, cwd=cwd,
                                  capture_output=True, text=True, timeout=PROGRAM_TIMEOUT_S)  # fmt: skip
        results = json.loads(result.read_text()) if result.exists() else {}
        assert done.returncode == 0 and len(results) == len(cases), done.stderr[-4000:]
        outputs = by_case(done.stdout), by_case(done.stderr)
        return {case.id: self.outcome(case, results[case.id], outputs, created) for case in cases}

    @contextlib.contextmanager
    def cases_on_aws(self, cases: list[RemoteCase]):
        """Each case's job in its state, or its Create refused, by the job's name; the names created."""
        created: list[str] = []
        with contextlib.ExitStack() as stack:
            for resource in JOBS:
                outcomes = {c.name: c.refusal or c.state() for c in cases if c.resource == resource}
                if outcomes:
                    created.append(stack.enter_context(self.aws.by_name(outcomes, resource)))
            for case in cases:
                if case.describe_refusal:
                    stack.enter_context(self.aws.refuse_describe(case.name, case.describe_refusal, case.resource))
            yield created

    def outcome(self, case: RemoteCase, result: dict, outputs: tuple[dict, dict], created: list) -> CaseRun:
        raised = result if result.get("type") else None
        found = (raised or {}).get("report")
        report = json.loads((self.state / "failures" / found["dir"] / "report.json").read_text()) if found else None
        latency = found["mtime"] - raised["raised_at"] if found and raised.get("raised_at") else None
        names = [n for names in created for n in names if n == case.name or n.startswith(case.name + "-")]
        return CaseRun(case, raised, report, latency, outputs[0].get(case.id, ""), outputs[1].get(case.id, ""),
                       names[0] if names else None)  # fmt: skip

    def reports(self) -> list[Path]:
        return sorted(self.state.glob("failures/*/report.json"))


def by_case(output: str) -> dict[str, str]:
    """A program's output split at its `=== case ID` lines."""
    parts: dict[str, str] = {}
    current = None
    for line in output.splitlines(keepends=True):
        if line.startswith("=== case "):
            current = line.split()[2]
            parts[current] = ""
        elif current is not None:
            parts[current] += line
    return parts


def job_flag(resource: str) -> list[str]:
    """`smdiag job`'s flag for a job that is not a training job."""
    return [] if resource == "training" else [f"--{resource}"]
