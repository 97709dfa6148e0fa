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
"""
