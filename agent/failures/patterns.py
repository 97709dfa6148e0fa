"""The failure texts that more than one reader recognises, in one place: the local and the managed rules
(agent.failures.classify, classify_remote, remote_rules) and the recorder (agent.remote.evidence). Pure,
standard library only.
"""

from __future__ import annotations

import re


def any_of(*alternatives: str) -> str:
    """One pattern that matches any of the alternatives."""
    return "|".join(alternatives)


ENOSPC = any_of(r"no space left on device", r"errno 28\b")
"""A full disk, as the kernel (and Python's OSError) says it."""
REQUIREMENTS_FAILED = any_of(
    r"InstallModuleError", r"InstallRequirementsError", r"No matching distribution found",
    r"Could not find a version that satisfies", r"pip install .*-r requirements\.txt",
)  # fmt: skip
"""Installing a script's requirements failed, as the SageMaker toolkits and pip say it (locally or in a job)."""
CLIENT_ERROR = re.compile(
    r"An error occurred \((?P<code>[\w.]+)\) when calling the (?P<operation>\w+) operation(?: \([^)]*\))?: "
    r"(?P<message>.*)",
    re.DOTALL,
)
"""botocore's ClientError text: "An error occurred (<Code>) when calling the <Operation> operation: <message>"
(with "(reached max retries: 4)" before the colon when its retries ran out)."""


def parse_refusal(message: str) -> dict | None:
    """A botocore ClientError's code, operation and message, from its text; None for any other text."""
    found = CLIENT_ERROR.search(message or "")
    if found is None:
        return None
    return {"code": found["code"], "operation": found["operation"], "message": found["message"].strip()}
