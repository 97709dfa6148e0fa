"""`smdiag images build`: SageMaker framework images for local mode, built offline.

Local mode pulls its framework images from ECR, which an offline host (CI, an air-gapped machine) cannot
reach. These images honour the same container contract (agent/images/container/smdiag_container.py:
`train` under the training toolkit's rules, `serve` on port 8080) with the framework installed by the
host's pip, and are tagged with the exact ECR URIs the SDK v2 estimators resolve (agent.frameworks), so
local mode finds them and never pulls. How they are built, in cached stages so that a new contract
rebuilds only its own small layer: agent/images/build.py.
"""

from agent.images.build import (
    BASE_REPOSITORY,
    CONTRACT,
    ENGINE_TIMEOUT_S,
    LABEL,
    Wanted,
    base_fingerprint,
    build,
    dockerfile,
    format_result,
    image_fingerprint,
    packages_dir,
    packages_tag,
    plan,
)

__all__ = [
    "BASE_REPOSITORY",
    "CONTRACT",
    "ENGINE_TIMEOUT_S",
    "LABEL",
    "Wanted",
    "base_fingerprint",
    "build",
    "dockerfile",
    "format_result",
    "image_fingerprint",
    "packages_dir",
    "packages_tag",
    "plan",
]
