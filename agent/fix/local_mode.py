"""What SageMaker local mode (SDK v2) names its objects, so that a remedy removes only what is provably its."""

from __future__ import annotations

import os
import re

NETWORK = "sagemaker-local"
"""The network local mode's Compose file declares."""
SDK_WORKDIR = re.compile(r"^tmp[a-z0-9_]{8}$")
"""A mkdtemp() working dir."""
SDK_CONTAINER = re.compile(r"^[a-z0-9]{10}-(algo-\d+-[a-z0-9]{5})$")
"""`<10 random>-algo-<n>-<5 random>`."""


def is_local_mode_container(name: str, labels: dict) -> bool:
    """Provably made by SageMaker local mode: compose's project labels name a docker-compose.yaml in an SDK
    temporary directory, and the container and service carry the names the SDK generates."""
    workdir = labels.get("com.docker.compose.project.working_dir") or ""
    config = labels.get("com.docker.compose.project.config_files") or ""
    named = SDK_CONTAINER.match(name)
    return bool(
        named
        and labels.get("com.docker.compose.service") == named.group(1)
        and SDK_WORKDIR.match(os.path.basename(workdir.rstrip("/")))
        and config == os.path.join(workdir, "docker-compose.yaml")
        and labels.get("com.docker.compose.project") == os.path.basename(workdir.rstrip("/"))
    )
