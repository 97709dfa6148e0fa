"""What the differential guest tests share (test_guest.py with SDK v2, test_sdk_v3.py with v3): one run of a user's
program, its output normalized by the values that differ between any two runs of that SDK (each test module
names its own), and the check that the user sees the same with the kernel hook as without it.

Its asserts are rewritten by pytest (conftest.py registers this module), so a difference shows as a diff.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

Varying = list[tuple[re.Pattern, str]]

SUMMARY = re.compile(
    r"\nsmdiag: (local-mode \w+ failed( at step '.*')?|managed (\w+ job|endpoint)( \S+)? failed) \[\w+\]\n(  .*\n){3}"
)
"""The wrapper's own summary of a failing call, local (`local-mode fit failed`) or managed (`managed training job
NAME failed`, `managed endpoint NAME failed`): the one thing the hook adds to stderr."""


@dataclass
class Run:
    stdout: str
    stderr: str
    result: dict
    varying: Varying

    def normalized(self, text: str) -> str:
        for pattern, replacement in self.varying:
            text = pattern.sub(replacement, text)
        return text

    @property
    def api(self) -> list:
        """The AWS API calls the program recorded (service, operation, parameters), normalized."""
        return json.loads(self.normalized(json.dumps(self.result["api"])))

    @property
    def exception(self) -> dict | None:
        raised = self.result["exception"]
        return raised and {"type": raised["type"], "message": self.normalized(raised["message"])}


def assert_same_output(plain: Run, hooked: Run) -> None:
    """stdout, stderr (less the wrapper's summary) and the exception's type and message are the SDK's own."""
    assert hooked.normalized(hooked.stdout) == plain.normalized(plain.stdout)
    assert hooked.normalized(SUMMARY.sub("", hooked.stderr)) == plain.normalized(plain.stderr)
    assert hooked.exception == plain.exception
