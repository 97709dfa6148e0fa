"""Installing the guest: the one call that patches anything (`install()`, idempotent), and the names the
users and the kernel hook call (`import agent.autowrap` and `%load_ext agent` call `install()` for them).
"""

from __future__ import annotations

import sys
import threading

from .calls import explained
from .config import AGENT, disabled, guarded, hand_over
from .patches import PATCHES_BY_MAJOR, PatchOnImport, sdk_major

__all__ = ["disabled", "explained", "hand_over", "install"]

_LOCK = threading.Lock()
_installed: PatchOnImport | None = None
"""The import hook, once installed."""


def install() -> bool:
    """Patch the SDK now if it is loaded, else when it is; True when active. The installed SDK's major is read
    once, from its package metadata (a major the guest does not know is left alone)."""
    global _installed
    if disabled():
        return False
    with _LOCK:
        if _installed is None:
            major = guarded("sdk major", sdk_major)
            AGENT.sdk = f"v{major}" if major else None
            _installed = PatchOnImport(PATCHES_BY_MAJOR.get(major, {}))
            _installed.patch_imported()
            sys.meta_path.insert(0, _installed)
    return True
