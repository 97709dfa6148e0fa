"""The failure texts that more than one reader recognises, in one place: the local and the managed rules
(agent.failures.classify, classify_remote, remote_rules). Pure.
"""

from __future__ import annotations


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
