"""A container's state and logs: the one place smdiag reads a container's output.

Failure reports take a snapshot of a call's containers (the engine's facts — state, exit code, OOMKilled,
State.Error, the limits the container ran with — and the tail of its log) and keep each full log;
diskguard and `smdiag fix` keep the log of a container before removing it; bootstrap compares log tails
to prove a move lost nothing; health and the reports reduce a log to the error that ended it. Every read
is bounded (a training log can be gigabytes), and the pure helpers at the end need no engine.

The kernel hook copies this module beside the guest, into environments without smdiag's dependencies: at
module level it imports the standard library only (docker-py and agent's own modules inside the functions
that use them).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Iterable
from pathlib import Path

LOG_LINES = 200
"""Lines of each container's log kept inside a report (the full log is saved beside it)."""
FULL_LOG_LINES = 100_000
"""A saved log keeps at most this many last lines: the end is where a failure explains itself."""
DIGEST_LINES = 50

TRACEBACK_FILE = re.compile(r'^\s*File "([^"]+)", line (\d+)')
EXCEPTION_LINE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning)|\w+Error)(?::\s?(.*))?$")
LOG4J_PREFIX = re.compile(
    r"^\d{4}-\d\d-\d\d[ T][\d:.,]+\s+\[\s*[A-Z]+\s*\]\s+\S+\s+\S+\s+-\s?"
    r"(?:model_log\s+-\s?|MODEL_LOG\s+-\s?)?"
)
"""The log4j prefix MMS and TorchServe put before each line of the model server's Python worker:
`2024-01-01T10:00:00,123 [INFO ] W-9000-model_1-stdout MODEL_LOG - Traceback (most recent call last):`."""
USER_CODE = ("/opt/ml/code/", "/opt/ml/model/code/")
"""Where local mode puts the user's scripts (training, and inference code shipped with the model)."""
LIBRARY_CODE = re.compile(r"/(?:site|dist)-packages/|/lib/python\d|<frozen |^/opt/ml/input/data/sm_drivers/")
"""Not the user's: installed packages, and SDK v3's training driver (which prints its own traceback)."""


# ---------------------------------------------------------------------------------------------- engine


def snapshot(container, tail: int = LOG_LINES) -> tuple[dict, str | None]:
    """The engine's facts about one container and the tail of its log; also the full log text (None when
    the engine could not give it: the snapshot then says so in `logs_error`)."""
    import docker.errors

    attrs = container.attrs
    state = attrs.get("State") or {}
    host = attrs.get("HostConfig") or {}
    text, logs_error = None, None
    try:
        text = read(container)
    except docker.errors.APIError as exc:
        logs_error = str(exc.explanation or exc)
    facts = {
        "name": container.name,
        "image": (attrs.get("Config") or {}).get("Image"),
        "status": state.get("Status"),
        "exit_code": state.get("ExitCode") if state.get("Status") in ("exited", "dead") else None,
        "oom_killed": bool(state.get("OOMKilled")),
        "error": state.get("Error") or None,
        "limits": {
            "memory": host.get("Memory") or None,
            "shm_size": host.get("ShmSize") or None,
            "nano_cpus": host.get("NanoCpus") or None,
            "runtime": host.get("Runtime") or None,
        },
        "logs": lines_of(text or "")[-tail:],
    }
    if logs_error:
        facts["logs_error"] = logs_error
    return facts, text


def read(container, timestamps: bool = False, lines: int = FULL_LOG_LINES) -> str:
    """The container's stdout and stderr as the engine kept them, its last `lines` lines at most."""
    return container.logs(stdout=True, stderr=True, timestamps=timestamps, tail=lines).decode(errors="replace")


def save(container, path: Path, timestamps: bool = False) -> Path:
    """A container's log kept in a file (0600) before the container is removed."""
    from agent import fileops  # not at the top: the kernel hook's copy of this module has the standard library only

    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fileops.atomic_write(path, read(container, timestamps=timestamps), mode=0o600)
    return path


def tail_digest(container, lines: int = DIGEST_LINES) -> str:
    """A digest of the log's last lines: equal before and after a data-root move when nothing was lost.
    Raises the engine's error when the log file is unreadable (which is what a move must not cause)."""
    return hashlib.sha256(container.logs(tail=lines)).hexdigest()


def call_containers(client, names: Iterable[str], started: float) -> list:
    """The containers of one call: those its compose files name, else those created since it started."""
    import docker.errors

    from agent.engine import docker_time

    wanted = [name for name in names if name]
    found = []
    for name in wanted:
        with contextlib.suppress(docker.errors.NotFound):
            found.append(client.containers.get(name))
    if not wanted:
        for container in client.containers.list(all=True):
            created = docker_time(container.attrs.get("Created"))
            if created is not None and created >= started - 1:
                found.append(container)
    return found


# ---------------------------------------------------------------------------------------------- pure


def lines_of(text: str) -> list[str]:
    return text.replace("\r\n", "\n").splitlines()


def unprefixed(line: str) -> str:
    """The line as the program wrote it, without a model server's log4j prefix."""
    return LOG4J_PREFIX.sub("", line, count=1)


def traceback_summary(lines: list[str]) -> str | None:
    """The error that ended the script's traceback in the logs: 'Error: message (file, line N)'. Pure."""
    found = script_traceback(lines)
    if found is None:
        return None
    error, frames = found
    return f"{error} ({where_raised(frames)})" if frames else error


def where_raised(frames: list[tuple[str, str]]) -> str:
    """'train.py, line 41': the user's innermost frame, where the fix is; and the library's line that raised
    when it is not the user's ('train.py, line 41, raised in .../repository.py, line 486')."""
    raised = frames[-1]
    user = next((frame for frame in reversed(frames) if is_user_code(frame[0])), raised)
    at = f"{user[0]}, line {user[1]}"
    return at if user is raised else f"{at}, raised in {raised[0]}, line {raised[1]}"


def script_traceback(lines: list[str]) -> tuple[str, list[tuple[str, str]]] | None:
    """The traceback that tells the failure: the last one passing through the user's code (a toolkit
    prints its own after the script's), else the last one. Its error line and frames, outermost first."""
    found = tracebacks(lines)
    return next((t for t in reversed(found) if any(is_user_code(path) for path, _ in t[1])), None) or (
        found[-1] if found else None
    )


def tracebacks(lines: list[str]) -> list[tuple[str, list[tuple[str, str]]]]:
    """Every Python traceback in the lines: its error line and frames (file, line). Lines from a model
    server's worker are read without their log4j prefix."""
    found, frames = [], None
    for raw in lines:
        line = unprefixed(raw)
        if "Traceback (most recent call last)" in line:
            frames = []
            continue
        if frames is None:
            continue
        where = TRACEBACK_FILE.match(line)
        if where:
            frames.append((where.group(1), where.group(2)))
        elif EXCEPTION_LINE.match(line.strip()) and not line.startswith((" ", "\t")):
            found.append((line.strip(), frames))
            frames = None
    return found


def is_user_code(path: str) -> bool:
    return path.startswith(USER_CODE) or not (LIBRARY_CODE.search(path) or path.startswith("/usr/"))


# ---------------------------------------------------------------------------------------------- guest


def follow_output(api, container_id: str) -> Iterable[list[str]]:
    """A running container's output from its first line to its end, as the engine streams it to a client
    attached from the container's creation: the complete lines of each chunk as it arrives, the unterminated
    last one at the end. For a container the engine removes at its exit (SDK v3's `auto_remove` model
    servers) this is the only way to read it; nothing when it is gone already. The guest (agent.guest.taps_v3)
    reads it in the user's process through docker-py's low-level `api`."""
    import docker.errors  # lazy: the guest's copy of this module loads where docker-py may be absent

    try:
        stream = api.attach(container_id, stdout=True, stderr=True, stream=True, logs=True)
    except docker.errors.NotFound:
        return
    pending = b""
    for chunk in stream:
        *complete, pending = (pending + chunk).split(b"\n")
        yield [line.decode("utf-8", errors="replace") for line in complete]
    if pending:
        yield [pending.decode("utf-8", errors="replace")]
