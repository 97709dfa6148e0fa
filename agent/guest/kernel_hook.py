"""The kernel hook: smdiag's failure reports in a Python environment that does not have smdiag installed.

`smdiag kernels enable` (agent.host.kernels) copies this module into `<state>/kernel-hook/` as
`smdiag_kernel_hook.py`, beside a copy of the guest package (`smdiag_agent/guest/`, with the agent's
`__init__.py` and `container_logs.py`, which the guest imports relatively) and a config.json naming the
agent's own interpreter; a one-line `.pth` file in each environment's site-packages imports it at
interpreter start and calls `watch()`. That only registers an import watcher: the first `import sagemaker`
loads the guest, which hands each failure to the agent's interpreter in a subprocess. When the agent is
absent, broken or disabled (`SMDIAG_DISABLE=1`), nothing is patched and the kernel behaves as before; once
`smdiag kernels disable` removed the hook directory, a running kernel's guest passes every call through.
Standard library only; importing it does nothing.
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


def watch() -> None:
    """Called by the `.pth` line at interpreter start: wait for the SDK's first import (Python 3.10+)."""
    if sys.version_info >= (3, 10) and SageMakerWatcher not in sys.meta_path:
        sys.meta_path.insert(0, SageMakerWatcher)


def activate() -> bool:
    """Load the guest when the agent it hands reports to is there; True when it is active."""
    try:
        # Lazy, json and the guest below: the .pth imports this module at every interpreter start, and only
        # a kernel that imports the SDK pays for more.
        import json

        config_path = os.path.join(HOOK_DIR, "config.json")
        with open(config_path, encoding="utf-8") as handle:
            config = json.load(handle)
        if not os.access(config["agent_python"], os.X_OK):
            return False
        from smdiag_agent.guest import install

        install.hand_over(config["agent_python"], config["state_dir"], config_path)
        return install.install()
    except Exception:  # noqa: BLE001 - a broken agent must leave the kernel exactly as it was
        return False
