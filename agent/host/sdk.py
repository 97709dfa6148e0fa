"""Which SageMaker Python SDK is installed, in smdiag's environment and in each notebook environment, and
whether local mode can run on it.

Read from package metadata, never imported (importing the SDK takes seconds). The guest reads the SDK's
version its own way, with the standard library alone: it runs in kernels where smdiag is not installed.
"""

from __future__ import annotations

import importlib.metadata
import sys
from pathlib import Path

from agent.host import kernels
from agent.settings import Settings

KNOWN_MAJORS = (2, 3)
"""SDK majors with a local mode smdiag knows: v2's framework estimators, v3's ModelTrainer."""
INSTALLS = {
    None: "pip install 'smdiag[sagemaker]' (SDK v3) or pip install 'smdiag[sagemaker-v2]' (the book's v2)",
    2: "pip install 'smdiag[sagemaker-v2]'",
    3: "pip install 'smdiag[sagemaker]'",
}
"""How to install the SDK a command needs into smdiag's environment, per major (None: either)."""


def installed() -> dict | None:
    """The SDK installed in smdiag's environment: {version, major}, or None."""
    try:
        version = importlib.metadata.version("sagemaker")
    except importlib.metadata.PackageNotFoundError:
        return None
    return {"version": version, "major": major_of(version)}


def known_major() -> int | None:
    """The major of the SDK installed here when smdiag knows its local mode, else None."""
    sdk = installed()
    return sdk["major"] if sdk and sdk["major"] in KNOWN_MAJORS else None


def problem(major: int | None) -> tuple[str, str] | None:
    """Why smdiag's environment cannot run local mode on SDK `major` (None: on either major smdiag knows):
    what is missing, and the fix; None when it can."""
    sdk = installed()
    where = f"smdiag's environment ({sys.prefix})"
    if major == 2:
        return _v2_problem(sdk, where)
    if sdk is None:
        wanted = f"the SageMaker SDK v{major}" if major else "the SageMaker SDK (v3 or v2)"
        return f"{wanted}, which is not installed in {where}", f"{INSTALLS[major]} into {where}"
    if sdk["major"] == major or (major is None and sdk["major"] in KNOWN_MAJORS):
        return None
    if major is None:
        return f"the SageMaker SDK v2 or v3, but {where} has {sdk['version']}", f"{INSTALLS[None]} into {where}"
    other = f", or use --sdk v{sdk['major']}" if sdk["major"] in KNOWN_MAJORS else ""
    return (
        f"the SageMaker SDK v{major}, but {where} has {sdk['version']}",
        f"run smdiag from an environment with it ({INSTALLS[major]}){other}",
    )


def _v2_problem(sdk: dict | None, where: str) -> tuple[str, str] | None:
    if sdk is None:
        return (
            f"the SageMaker SDK v2, which is not installed in {where}",
            f"pip install 'smdiag[sagemaker-v2]' into {where}",
        )
    if sdk["major"] != 2:
        return (
            f"the SageMaker SDK v2, but {where} has {sdk['version']} (local-mode estimators are v2 only)",
            f"pip install 'sagemaker>=2.250,<3' into {where}",
        )
    return None


def environments(settings: Settings) -> list[dict]:
    """smdiag's own interpreter, then every notebook environment (settings.conda_envs) besides it: each
    one's SDK {environment, version, major, hook, own}, `hook` whether the failure wrapper is on there."""
    own_sdk = installed() or {"version": None, "major": None}
    own = {"environment": sys.prefix, **own_sdk, "hook": None, "own": True}
    others = [
        {**env, "own": False}
        for env in notebook_environments(list(settings.conda_envs))
        if Path(env["environment"]) != Path(sys.prefix).resolve()
    ]
    return [own, *others]


def notebook_environments(patterns: list[str]) -> list[dict]:
    """The SageMaker SDK of each notebook environment (the kernels' envs, as `kernels enable` finds them)
    and whether the failure wrapper's hook is on there. Read from files, never imported."""
    found = []
    for env in kernels.environments(patterns):
        version = next(filter(None, (dist_version(site, "sagemaker") for site in kernels.site_packages(env))), None)
        found.append(
            {
                "environment": str(env),
                "version": version,
                "major": major_of(version) if version else None,
                "hook": kernels.hook_enabled(env),
            }
        )
    return found


def dist_version(site_packages: Path, name: str) -> str | None:
    """The version of distribution `name` installed in a site-packages, from its dist-info METADATA."""
    for metadata in sorted(site_packages.glob(f"{name}-*.dist-info/METADATA")):
        fields = {}
        try:
            with open(metadata, encoding="utf-8", errors="replace") as handle:
                for line in handle:
                    if not line.strip():
                        break  # the headers end at the first blank line
                    key, _, value = line.partition(":")
                    fields[key.strip().lower()] = value.strip()
        except OSError:
            continue
        if fields.get("name", "").lower() == name and fields.get("version"):
            return fields["version"]
    return None


def major_of(version: str) -> int | None:
    major = version.split(".", 1)[0]
    return int(major) if major.isdigit() else None
