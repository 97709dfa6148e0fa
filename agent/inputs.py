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
    from agent.host import facts as host

    problem = host.sdk_v2_problem()
    if problem:
        raise BadInput(f"{purpose} needs {problem[0]}", problem[1])


SDK_INSTALLS = {
    None: "pip install 'smdiag[sagemaker]' (SDK v3) or pip install 'smdiag[sagemaker-v2]' (the book's v2)",
    2: "pip install 'smdiag[sagemaker-v2]'",
    3: "pip install 'smdiag[sagemaker]'",
}


def sdk_problem(major: int | None) -> tuple[str, str] | None:
    """Why this interpreter cannot run local mode on SDK `major` (None: on either major smdiag knows), and
    the fix; None when it can. Read from package metadata, nothing imported."""
    from agent.host import facts as host

    if major == 2:
        return host.sdk_v2_problem()
    sdk = host.sagemaker_sdk()
    where = f"smdiag's environment ({sys.prefix})"
    if sdk is None:
        wanted = f"the SageMaker SDK v{major}" if major else "the SageMaker SDK (v3 or v2)"
        return f"{wanted}, which is not installed in {where}", f"{SDK_INSTALLS[major]} into {where}"
    if major is None and sdk["major"] in host.KNOWN_SDK_MAJORS:
        return None
    if sdk["major"] == major:
        return None
    if major is None:
        return f"the SageMaker SDK v2 or v3, but {where} has {sdk['version']}", f"{SDK_INSTALLS[None]} into {where}"
    other = f", or use --sdk v{sdk['major']}" if sdk["major"] in host.KNOWN_SDK_MAJORS else ""
    return (
        f"the SageMaker SDK v{major}, but {where} has {sdk['version']}",
        f"run smdiag from an environment with it ({SDK_INSTALLS[major]}){other}",
    )


def sagemaker_sdk(purpose: str, major: int | None = None) -> None:
    """This interpreter has the SageMaker SDK `major` (None: v2 or v3), whose local mode `purpose` runs."""
    problem = sdk_problem(major)
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
