"""Whether the guest is on, where it hands its reports, and how an error of its own is kept.

Every part of the guest asks `disabled()` before it does anything beside the SDK, and runs its own work
through `guarded()`: in a user's kernel our trouble is logged, never raised. Nothing here acts on import.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import traceback
from dataclasses import dataclass

ERRORS_FILE = "wrapper-errors.jsonl"
ERRORS_FILE_MAX_BYTES = 1 << 20


@dataclass
class Agent:
    """The agent the guest reports to: this interpreter unless the kernel hook named the agent's own."""

    python: str = sys.executable
    state_dir: str | None = None
    hook_config: str | None = None
    """The kernel hook's config file: once `smdiag kernels disable` removed it, every wrapper passes through."""
    sdk: str | None = None
    """`v2` or `v3`: the installed SDK's major, read once by `install()`."""


AGENT = Agent()


def hand_over(agent_python: str, state_dir: str, hook_config: str | None = None) -> None:
    """Record reports through another interpreter (the kernel hook's case: this environment has no agent);
    with `hook_config`, the guest passes through once that file is gone (`smdiag kernels disable`)."""
    AGENT.python, AGENT.state_dir, AGENT.hook_config = agent_python, state_dir, hook_config


def disabled() -> bool:
    """`SMDIAG_DISABLE=1` (read at every call: `%env` in a running kernel counts), or the hook removed."""
    if os.environ.get("SMDIAG_DISABLE", "").strip() not in ("", "0", "false", "no"):
        return True
    return AGENT.hook_config is not None and not os.path.exists(AGENT.hook_config)


def guarded(what: str, function, *args):
    """Our own work beside a user's call: an error is logged and counted, never raised; None then."""
    try:
        return function(*args)
    except Exception as exc:  # noqa: BLE001 - the user's call goes on exactly as without us
        log_error(what, exc)
        return None


def log_error(what: str, exc: BaseException) -> None:
    """One JSON line per error of ours in `<state>/logs/wrapper-errors.jsonl` (bounded), for doctor."""
    with contextlib.suppress(Exception):
        directory = os.path.join(state_dir(), "logs")
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, ERRORS_FILE)
        with contextlib.suppress(FileNotFoundError):
            if os.path.getsize(path) > ERRORS_FILE_MAX_BYTES:
                return
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "pid": os.getpid(),
            "where": what,
            "error": f"{type(exc).__name__}: {exc}"[:500],
            "traceback": traceback.format_exception(type(exc), exc, exc.__traceback__)[-3:],
        }
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")


def state_dir() -> str:
    if AGENT.state_dir:
        return AGENT.state_dir
    # Lazy: only `import agent.autowrap` gets here (the kernel hook always hands over a state dir), and there
    # the agent itself is importable; the hook's copy of the guest has no `agent` package.
    from agent.statedir import StateDir

    return str(StateDir.from_env(os.environ).root)
