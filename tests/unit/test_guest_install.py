"""Installing the guest, each case in a fresh interpreter: importing any of its modules patches nothing; one
call installs (`import agent.autowrap`, `%load_ext agent`), once; `SMDIAG_DISABLE=1` keeps it off."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PROBE = """
import importlib, json, pkgutil, sys
import agent.guest
names = sorted(m.name for m in pkgutil.iter_modules(agent.guest.__path__))
for name in names:
    importlib.import_module(f"agent.guest.{name}")
finders = lambda: sum(type(f).__name__ == "PatchOnImport" for f in sys.meta_path)
seen = {"modules": names, "imported": finders()}
import agent
agent.load_ipython_extension(None)
seen["loaded"] = finders()
from agent.guest.config import AGENT
from agent.guest.install import install
seen.update(again=install(), installed=finders(), sdk=AGENT.sdk, sdk_imported="sagemaker" in sys.modules)
print(json.dumps(seen))
"""


def probe(code: str, **env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if k != "SMDIAG_DISABLE"}
    done = subprocess.run([sys.executable, "-c", code], env={**clean, "PYTHONPATH": str(REPO), **env},
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_importing_the_guest_installs_nothing_and_one_call_installs_it_once():
    seen = probe(PROBE)
    assert {"calls", "capture", "config", "handover", "install", "local", "patches", "taps_v2", "taps_v3"} <= set(
        seen["modules"]
    )
    assert seen["imported"] == 0 and seen["loaded"] == 1
    assert seen["again"] is True and seen["installed"] == 1
    assert seen["sdk"] == "v2" and seen["sdk_imported"] is False  # the major read from metadata alone


def test_import_agent_autowrap_installs_unless_smdiag_disable_is_set():
    code = "import sys, agent.autowrap; print(sum(type(f).__name__ == 'PatchOnImport' for f in sys.meta_path))"
    assert probe(code) == 1
    assert probe(code, SMDIAG_DISABLE="1") == 0
