"""The frameworks catalogue: what smdiag knows about the seed's three frameworks, named once.

Both halves of the local-mode story read it: `agent.images` builds an image per framework with its
packages and tags it with the URIs the SDK resolves for its version; `agent.experiments` runs its entry
script with its hyperparameters, natively (importing its module) or through the SDK (its version). Pure
data and one lookup of the SDK's image URIs; it imports neither of its users.
"""

from __future__ import annotations

import os
from pathlib import Path

FRAMEWORKS = ("tensorflow", "pytorch", "sklearn")

SCRIPTS = Path(__file__).resolve().parent / "experiments" / "scripts"
"""The entry scripts smdiag ships (`health --scripts DIR` runs the user's copies instead)."""
ENTRY_POINTS = {"tensorflow": "tensorflow_script.py", "pytorch": "pytorch_training.py", "sklearn": "sklearn_script.py"}
SERVING_ENTRY_POINTS = {"pytorch": "pytorch_inference.py"}
"""A serving script apart from the training one (the others serve from the SavedModel or the entry script)."""
MODULES = {"tensorflow": "tensorflow", "pytorch": "torch", "sklearn": "sklearn"}
"""What a framework's entry script imports when it runs natively (in smdiag's own interpreter)."""

HYPERPARAMETERS = {
    # Inputs and targets are scaled inside the scripts, so larger learning rates converge in far fewer
    # epochs than the seed's (its own settings are the anchor in bench/seed_scripts). --quick: RMSE ≤ 200
    # in seconds; full: RMSE ≤ 165 (the noise alone gives 150), in less time than the seed's scripts.
    "quick": {
        "tensorflow": {"epochs": 10, "batch-size": 64, "learning-rate": 0.005},
        "pytorch": {"epochs": 40, "batch-size": 64, "learning-rate": 0.005},
        "sklearn": {"epochs": 150, "batch-size": 64, "learning-rate": 0.01},
    },
    "full": {
        "tensorflow": {"epochs": 100, "batch-size": 64, "learning-rate": 0.005},
        "pytorch": {"epochs": 200, "batch-size": 64, "learning-rate": 0.005},
        "sklearn": {"epochs": 300, "batch-size": 64, "learning-rate": 0.01},
    },
}

VERSIONS = {
    "tensorflow": ("2.16", "py310"),
    "pytorch": ("2.3", "py311"),
    "sklearn": ("1.2-1", "py3"),
}
"""(framework_version, py_version) the SDK's estimators are given, and so the image URIs they resolve."""
PACKAGES = {
    "tensorflow": ("tensorflow-cpu==2.21.0",),
    "pytorch": ("torch==2.13.0", "numpy==2.4.6"),
    "sklearn": ("scikit-learn==1.9.1", "joblib==1.6.0", "numpy==2.4.6"),
}
"""What each offline image installs (pinned: torch's CPU build comes from a wheel on disk, see the README)."""

REGION = "us-east-1"


def region() -> str:
    """The region the SDK's session takes (and so the one whose image URIs local mode looks for)."""
    return os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or REGION


def image_uris(framework: str, region_name: str | None = None) -> list[str]:
    """The ECR URIs (training, then inference when it differs) the SDK resolves for `framework`: the names
    an offline image must carry for local mode to find it instead of pulling. Both majors resolve the same."""
    try:
        from sagemaker import image_uris as uris
    except ImportError:  # SDK v3: the same catalogue, in sagemaker-core
        from sagemaker.core import image_uris as uris

    version, py_version = VERSIONS[framework]
    return list(
        dict.fromkeys(
            uris.retrieve(
                framework,
                region_name or region(),
                version=version,
                py_version=py_version,
                image_scope=scope,
                instance_type="local",
            )
            for scope in ("training", "inference")
        )
    )
