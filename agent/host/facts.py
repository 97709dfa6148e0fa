"""Facts about the host: is it a notebook instance, which platform, which AWS setup (which SDK:
agent.host.sdk)."""

from __future__ import annotations

import botocore.exceptions
import botocore.session

from agent import platform
from agent.settings import Settings


def notebook_facts(settings: Settings) -> dict:
    """Whether this is a SageMaker notebook instance (not a Studio space: agent.platform), its name, and
    its platform (AL2 or AL2023)."""
    found = platform.detect(settings)
    is_notebook = found.kind == platform.NOTEBOOK_INSTANCE
    name = found.name if is_notebook else None
    return {"is_notebook_instance": is_notebook, "name": name, "platform": found.os, "os": found.os_name}


def aws_facts(use_instance_metadata: bool) -> dict:
    """Whether a region and credentials are configured, and where from — never their secret values.

    The instance-metadata provider is consulted only on a notebook instance: elsewhere it would wait on
    an address that does not answer.
    """
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
