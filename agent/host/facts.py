"""Facts about the host: is it a notebook instance, which platform, which SDK, which AWS setup."""

from __future__ import annotations

import importlib.metadata
import sys
from pathlib import Path

from agent import platform
from agent.settings import Settings


def notebook_facts(settings: Settings) -> dict:
    """Whether this is a SageMaker notebook instance (not a Studio space: agent.platform), its name, and
    its platform (AL2 or AL2023)."""
    found = platform.detect(settings)
    is_notebook = found.kind == platform.NOTEBOOK_INSTANCE
    name = found.name if is_notebook else None
    return {"is_notebook_instance": is_notebook, "name": name, "platform": found.os, "os": found.os_name}


KNOWN_SDK_MAJORS = (2, 3)
"""SDK majors with a local mode smdiag knows: v2's framework estimators, v3's ModelTrainer."""


def sagemaker_sdk() -> dict | None:
    """The installed SageMaker Python SDK's version, read from package metadata (no import: it is slow)."""
    try:
        version = importlib.metadata.version("sagemaker")
    except importlib.metadata.PackageNotFoundError:
        return None
    return {"version": version, "major": _major(version)}


def environment_sdks(patterns: list[str]) -> list[dict]:
    """The SageMaker SDK of each notebook environment (the kernels' envs, as `kernels enable` finds them)
    and whether the failure wrapper's hook is on there. Read from files, never imported."""
    from agent.host import kernels

    found = []
    for env in kernels.environments(patterns):
        version = next(filter(None, (dist_version(site, "sagemaker") for site in kernels.site_packages(env))), None)
        found.append(
            {
                "environment": str(env),
                "version": version,
                "major": _major(version) if version else None,
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


def _major(version: str) -> int | None:
    major = version.split(".", 1)[0]
    return int(major) if major.isdigit() else None


def sdk_v2_problem() -> tuple[str, str] | None:
    """Why this interpreter cannot run SDK v2 local mode (what is missing, and the fix); None when it can."""
    sdk = sagemaker_sdk()
    where = f"smdiag's environment ({sys.prefix})"
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


def aws_facts(use_instance_metadata: bool) -> dict:
    """Whether a region and credentials are configured, and where from — never their secret values.

    The instance-metadata provider is consulted only on a notebook instance: elsewhere it would wait on
    an address that does not answer.
    """
    import botocore.exceptions
    import botocore.session

    session = botocore.session.Session()
    session.set_config_variable("metadata_service_num_attempts", 1)
    session.set_config_variable("metadata_service_timeout", 2)
    resolver = session.get_component("credential_provider")
    if not use_instance_metadata:
        resolver.remove("iam-role")
    try:
        credentials = session.get_credentials()
        region = session.get_config_variable("region")
    except botocore.exceptions.BotoCoreError as exc:
        return {"region": None, "credentials": False, "credentials_source": None, "error": str(exc)}
    return {
        "region": region,
        "credentials": credentials is not None,
        "credentials_source": getattr(credentials, "method", None),
        "error": None,
    }
