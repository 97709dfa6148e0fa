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


def new_path(path: Path, flag: str) -> None:
    """The one rule for every path option naming something smdiag writes or makes: the path itself may be
    new, the directory it goes in must exist. A mistyped parent is refused, never created (mkdir -p would
    make the typo); a relative path is taken from the current directory."""
    parent = path.parent
    if not parent.is_dir():
        why = "is not a directory" if parent.exists() else "does not exist"
        raise BadInput(f"{flag} {path}: the directory {parent} {why}", f"create it first, or give another {flag}")


def output_dir(path: Path, flag: str) -> None:
    """`path` is a directory this process can write into (made when missing: its parent must exist)."""
    new_path(path, flag)
    if path.exists() and not path.is_dir():
        raise BadInput(f"{flag} {path} is a file, not a directory", "give a directory path; a missing one is made")
    try:
        path.mkdir(exist_ok=True)
        _probe(path)
    except OSError as exc:
        raise BadInput(
            f"{flag} {path} cannot be written: {exc.strerror or exc}", "give a directory you can write to"
        ) from None


def output_file(path: Path, flag: str) -> None:
    """`path` can be written: its directory exists and is writable, and it is not itself a directory."""
    if path.is_dir():
        raise BadInput(f"{flag} {path} is a directory", "give a file path, e.g. DIR/name.png")
    new_path(path, flag)
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
