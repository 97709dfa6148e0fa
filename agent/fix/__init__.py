"""`smdiag fix` and `smdiag doctor --fix`: from a diagnosis to its repair.

The remedy is chosen once, by whoever diagnosed the cause: a failure report's classification
(`report["remedy"]`: its name and arguments) or doctor's problem record (its `remedy`). This package never
decides it again; it runs it. Each remedy is one module with one shape (agent.fix.remedy.Remedy): gather the
facts at the moment it runs → plan from them (pure) → act, each change's undo journaled first → verify by
measuring again; `smdiag fix --undo` replays the newest fix's undo (agent.fix.history).

- remedy.py: the Remedy type, its Plan and Actions, the options, the journal step;
- registry.py: the one registry, name → Remedy;
- compose_shim, stale_network, leftover_containers, start_engine, free_disk, container_root, bootstrap:
  one remedy each; local_mode.py: what proves a container local mode's own;
- run.py (`smdiag fix`), doctor_fix.py (`doctor --fix`), history.py (`fix --undo`), text.py (their text).

The CLI's entry points are re-exported here.
"""

from agent.fix.doctor_fix import DOCTOR_CHECKS, run_doctor_fix
from agent.fix.history import undo_last
from agent.fix.remedy import DEFAULT_BIN_DIR, FixOptions, Plan
from agent.fix.run import run_fix
from agent.fix.text import format_doctor_fix, format_fix, format_undo

__all__ = [
    "DEFAULT_BIN_DIR",
    "DOCTOR_CHECKS",
    "FixOptions",
    "Plan",
    "format_doctor_fix",
    "format_fix",
    "format_undo",
    "run_doctor_fix",
    "run_fix",
    "undo_last",
]
