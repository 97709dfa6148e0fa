"""Checks of what a command is about to use, made before it does any work.

Each refusal is a BadInput (exit 2) naming the problem and the fix; nothing has been changed by then.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
from pathlib import Path

from agent.errors import BadInput
from agent.host import sdk


def output_dir(path: Path, flag: str) -> None:
    """`path` is a directory this process can write into (made when missing, as the command would)."""
    if path.exists() and not path.is_dir():
        raise BadInput(f"{flag} {path} is a file, not a directory", "give a directory path; a missing one is made")
    try:
        path.mkdir(parents=True, exist_ok=True)
        _probe(path)
    except OSError as exc:
        raise BadInput(
            f"{flag} {path} cannot be written: {exc.strerror or exc}", "give a directory you can write to"
        ) from None


def output_file(path: Path, flag: str) -> None:
    """`path` can be written: its directory exists and is writable, and it is not itself a directory."""
    if path.is_dir():
        raise BadInput(f"{flag} {path} is a directory", "give a file path, e.g. DIR/name.png")
    if not path.parent.is_dir():
        raise BadInput(f"{flag} {path}: the directory {path.parent} does not exist", "create it, or give another path")
    try:
        _probe(path.parent)
    except OSError as exc:
        raise BadInput(
            f"{flag} {path} cannot be written: {exc.strerror or exc}", "give a path in a directory you can write to"
        ) from None
    if path.exists() and not os.access(path, os.W_OK):
        raise BadInput(f"{flag} {path} is not writable", "give another path, or make it writable")


def sdk_v2(purpose: str) -> None:
    """This interpreter has the SageMaker SDK v2, whose local-mode estimators `purpose` needs."""
    sagemaker_sdk(purpose, 2)


def sagemaker_sdk(purpose: str, major: int | None = None) -> None:
    """This interpreter has the SageMaker SDK `major` (None: v2 or v3), whose local mode `purpose` runs."""
    problem = sdk.problem(major)
    if problem:
        raise BadInput(f"{purpose} needs {problem[0]}", problem[1])


def packages(purpose: str, modules: list[str]) -> None:
    """This interpreter has the modules `purpose` imports (looked up, not imported)."""
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        raise BadInput(
            f"{purpose} needs {', '.join(missing)}, not installed in smdiag's environment ({sys.prefix})",
            "pip install 'smdiag[frameworks]' into it",
        )


def _probe(directory: Path) -> None:
    fd, probe = tempfile.mkstemp(prefix=".smdiag-probe-", dir=directory)
    os.close(fd)
    os.unlink(probe)
