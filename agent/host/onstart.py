"""What the lifecycle script (lifecycle-config/on-start.sh) left behind, for `smdiag doctor`.

The script never fails the notebook's start, so a failing step is only visible here: it writes
`StateDir.onstart_status` (a `step<TAB>state<TAB>seconds<TAB>detail` line per step, between `# started`
and `# finished` lines), and a first data-root migration that outlasts its budget goes on in the
background with `bootstrap.pid`, then `bootstrap.rc` and `bootstrap.out` (its output) beside it.
"""

from __future__ import annotations

import contextlib

import psutil

from agent.statedir import StateDir

STEP_STATES = ("ok", "failed", "skipped", "background")


def parse_status(text: str) -> dict:
    """The steps and times of one on-start run. Pure; unreadable lines are ignored."""
    started = finished = total_s = None
    steps = []
    for line in text.splitlines():
        if line.startswith("# started "):
            started = line.split()[2]
        elif line.startswith("# finished "):
            parts = line.split()
            finished = parts[2]
            with contextlib.suppress(IndexError, ValueError):
                total_s = float(parts[3])
        else:
            fields = line.split("\t", 3)
            if len(fields) == 4 and fields[1] in STEP_STATES:
                with contextlib.suppress(ValueError):
                    steps.append(
                        {"step": fields[0], "state": fields[1], "seconds": float(fields[2]), "detail": fields[3]}
                    )
    return {"started": started, "finished": finished, "total_s": total_s, "steps": steps}


def read(state: StateDir) -> dict | None:
    """The last on-start run's record, with the background migration's state; None if it never ran."""
    try:
        record = parse_status(state.onstart_status.read_text(errors="replace"))
    except OSError:
        return None
    record["log"] = str(state.onstart_log)
    record["background"] = None
    if any(step["state"] == "background" for step in record["steps"]):
        record["background"] = _background(state)
    return record


def _background(state: StateDir) -> dict:
    """running (its pid is alive), done, failed (its error), or lost (killed before it could say)."""
    with contextlib.suppress(OSError, ValueError):
        code = int(state.onstart_bootstrap("rc").read_text())
        lines = [""]
        with contextlib.suppress(OSError):
            lines = state.onstart_bootstrap("out").read_text(errors="replace").strip().splitlines() or lines
        if code == 0:
            return {"state": "done", "detail": lines[0]}
        return {"state": "failed", "detail": lines[-1] or f"smdiag bootstrap exited {code}"}
    pid = None
    with contextlib.suppress(OSError, ValueError):
        pid = int(state.onstart_bootstrap("pid").read_text())
    if pid is not None and psutil.pid_exists(pid):
        return {"state": "running", "detail": f"pid {pid}"}
    return {"state": "lost", "detail": "it ended without a result (killed?)"}


def problems(record: dict | None) -> list[tuple[str, str]]:
    """(problem, fix) for each failed step and an unfinished or failed background migration. Pure."""
    if record is None:
        return []
    found = []
    for step in record["steps"]:
        if step["state"] == "failed":
            found.append(
                (
                    f"the lifecycle on-start step {step['step']!r} failed at the last start: {step['detail']}",
                    f"see {record['log']}; the script is safe to run again: sudo bash on-start.sh",
                )
            )
    background = record["background"]
    if background and background["state"] == "running":
        found.append(
            (
                f"the first move of Docker's data-root is still copying in the background ({background['detail']});"
                " Docker is stopped until it ends",
                "wait for it: `smdiag doctor` says when it is done",
            )
        )
    elif background and background["state"] in ("failed", "lost"):
        found.append(
            (
                f"the background move of Docker's data-root did not finish: {background['detail']}",
                "run `sudo smdiag bootstrap`: it rolls back an interrupted move, then tries again",
            )
        )
    return found
