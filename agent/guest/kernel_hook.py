"""The kernel hook: smdiag's failure reports in a Python environment that does not have smdiag installed.

`smdiag kernels enable` copies this module (stdlib only) into `<state>/kernel-hook/` as
`smdiag_kernel_hook.py`, beside a copy of agent/autowrap.py and a config.json naming the agent's own
interpreter, and puts a one-line `.pth` file into each environment's site-packages that imports it at
interpreter start. At start it only registers an import watcher: the first `import sagemaker` loads the
wrapper, which hands each failure to the agent's interpreter in a subprocess. When the agent is absent,
broken or disabled (`SMDIAG_DISABLE=1`), nothing is patched and the kernel behaves as before; once
`smdiag kernels disable` removed the hook directory, a running kernel's wrapper passes every call through.
"""

import os
import sys

HOOK_DIR = os.path.dirname(os.path.abspath(__file__))


class SageMakerWatcher:
    """A meta path finder that finds nothing: it notices the first `import sagemaker...`."""

    activated = False

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if not cls.activated and name.partition(".")[0] == "sagemaker":
            cls.activated = True
            activate()
        return None


def activate() -> bool:
    """Load the wrapper when the agent it hands reports to is there; True when it is active."""
    try:
        import json

        config_path = os.path.join(HOOK_DIR, "config.json")
        with open(config_path, encoding="utf-8") as handle:
            config = json.load(handle)
        if not os.access(config["agent_python"], os.X_OK):
            return False
        import smdiag_autowrap

        smdiag_autowrap.hand_over(config["agent_python"], config["state_dir"], config_path)
        return smdiag_autowrap.install()
    except Exception:  # noqa: BLE001 - a broken agent must leave the kernel exactly as it was
        return False


if sys.version_info >= (3, 10):
    sys.meta_path.insert(0, SageMakerWatcher)
