"""`smdiag kernels`: failure reports in every notebook Python environment, installing nothing into them.

Each environment gets one file, `smdiag-kernel-hook.pth` in its site-packages, whose single line puts
`<state>/kernel-hook/` at the end of sys.path and starts the stdlib-only hook there (agent.guest.kernel_hook),
which loads the hook directory's copy of the guest package (`smdiag_agent.guest`) at the first SDK import:
the users' packages do not change, and removing the hook directory or the agent makes the line a no-op.
Which environments and which site-packages is pure planning; writing and verifying touch the edges.
`enable` is a transaction (agent.journal): each file's old bytes are registered before it is written, so
an enable that fails is undone and one that was killed is undone by the next enable before it starts.
"""

from __future__ import annotations

import contextlib
import glob
import json
import re
import subprocess
from pathlib import Path

from agent import fileops
from agent.errors import BadInput
from agent.journal import Journal, restore_inline, signals_blocked
from agent.log import get_logger
from agent.statedir import StateDir

log = get_logger("kernels")

PTH_NAME = "smdiag-kernel-hook.pth"
HOOK_MODULE = "smdiag_kernel_hook"
PACKAGE = "smdiag_agent"
"""The agent's package as the hook directory holds it: a name no user's package has."""
AGENT = Path(__file__).resolve().parent.parent
LEGACY_FILES = ("smdiag_autowrap.py",)
"""What an older `kernels enable` wrote beside the hook: its one-module wrapper."""
VERIFY_TIMEOUT_S = 30


def hook_files() -> dict[str, Path]:
    """Each file of the hook directory (its path there) and its source: the hook, and the guest package with
    the agent's `__init__.py` and `container_logs.py`, which the guest imports relatively."""
    files = {
        f"{HOOK_MODULE}.py": AGENT / "guest" / "kernel_hook.py",
        f"{PACKAGE}/__init__.py": AGENT / "__init__.py",
        f"{PACKAGE}/container_logs.py": AGENT / "container_logs.py",
    }
    files.update({f"{PACKAGE}/guest/{source.name}": source for source in sorted((AGENT / "guest").glob("*.py"))})
    return files


def environments(patterns: list[str]) -> list[Path]:
    """The Python environments (directories with bin/python) that the glob patterns name, each once."""
    found: dict[Path, None] = {}
    for pattern in patterns:
        for match in sorted(glob.glob(pattern)):
            env = Path(match)
            if (env / "bin" / "python").exists():
                found[env.resolve()] = None
    return list(found)


def site_packages(env: Path) -> list[Path]:
    """Where an environment's interpreter processes .pth files (one per Python version it holds)."""
    return sorted(env.glob("lib/python3.*/site-packages"))


def hook_enabled(env: Path) -> bool:
    """Whether the environment's interpreter loads the hook: a .pth of ours naming a hook directory that
    has the hook module (read from the files, no interpreter started)."""
    for site in site_packages(env):
        try:
            line = (site / PTH_NAME).read_text(encoding="utf-8")
        except OSError:
            continue
        named = re.search(r"hook = (['\"])(.*?)\1", line)
        if named and (Path(named.group(2)) / f"{HOOK_MODULE}.py").is_file():
            return True
    return False


def pth_line(hook_dir: Path) -> str:
    """The .pth line: starting the hook only when its file is there, on Python 3.10 or newer."""
    return (
        f"import os, sys; hook = {str(hook_dir)!r}; sys.version_info >= (3, 10) and "
        f"os.path.isfile(os.path.join(hook, {HOOK_MODULE + '.py'!r})) and "
        f"(sys.path.append(hook) or __import__({HOOK_MODULE!r}).watch())\n"
    )


def enable(state_dir: Path, patterns: list[str], agent_python: Path) -> dict:
    """Write the hook directory, then the .pth file into each environment, then check that each
    environment's interpreter loads the hook. `ok` is False when any environment failed."""
    if not agent_python.exists():
        raise BadInput(f"the agent's interpreter {agent_python} does not exist", "give --agent-python PATH")
    state = StateDir(state_dir)
    hook_dir = state.kernel_hook
    journal = Journal(state.kernels / "journal.json")
    with fileops.exclusive_lock(state.kernels / "lock"):
        if journal.load() is not None:
            journal.replay()
        journal.begin(command="kernels enable")
        try:
            files = hook_files()
            directories = [hook_dir, *sorted({(hook_dir / name).parent for name in files} - {hook_dir})]
            for directory in directories:
                if not directory.exists():
                    journal.will("created", path=str(directory))
                    directory.mkdir()
                directory.chmod(0o755)  # kernels of other users read it
            for name, source in files.items():
                _write(journal, hook_dir / name, source.read_bytes())
            for stale in _stale_files(hook_dir, files):
                journal.will("restore", **restore_inline(stale))
                _unlink_with_bytecode(stale)
            config = {"agent_python": str(agent_python), "state_dir": str(state_dir)}
            _write(journal, hook_dir / "config.json", json.dumps(config, indent=2) + "\n")
            line = pth_line(hook_dir)
            results = [_enable_one(journal, env, line) for env in environments(patterns)]
        except BaseException:
            with signals_blocked():
                journal.replay()
            raise
        journal.commit()
    ok = all(r["error"] is None for r in results)
    log.info("kernels.enabled", hook_dir=str(hook_dir), environments=len(results), ok=ok)
    return {"ok": ok, "hook_dir": str(hook_dir), "environments": results}


def disable(state_dir: Path, patterns: list[str]) -> dict:
    """Remove the .pth file from each environment (they are then exactly as before), then the hook
    directory: its config first, whose absence turns the wrapper in running kernels into a pass-through."""
    removed = []
    for env in environments(patterns):
        for site in site_packages(env):
            pth = site / PTH_NAME
            if pth.exists():
                pth.unlink()
                removed.append(str(pth))
    hook_dir = StateDir(state_dir).kernel_hook
    files = hook_files()
    ours = [hook_dir / "config.json", *(hook_dir / name for name in files), *_stale_files(hook_dir, files)]
    for path in ours:
        if path.exists():
            _unlink_with_bytecode(path)
            removed.append(str(path))
    for directory in sorted({p.parent for p in ours} | {p.parent / "__pycache__" for p in ours}, reverse=True):
        with contextlib.suppress(OSError):
            directory.rmdir()  # only when empty: nothing of anyone else's goes
    log.info("kernels.disabled", removed=removed)
    return {"ok": True, "removed": removed}


def _stale_files(hook_dir: Path, files: dict[str, Path]) -> list[Path]:
    """Modules an older enable wrote that this one does not: its one-module wrapper, or a module the guest
    package no longer has."""
    package = [p for p in (hook_dir / PACKAGE).rglob("*.py") if "__pycache__" not in p.parts]
    legacy = [hook_dir / name for name in LEGACY_FILES]
    return [p for p in [*legacy, *package] if p.exists() and str(p.relative_to(hook_dir)) not in files]


def _unlink_with_bytecode(path: Path) -> None:
    """The module and what Python compiled of it (a removed module must not import from its bytecode)."""
    path.unlink()
    for compiled in (path.parent / "__pycache__").glob(f"{path.stem}.*.pyc"):
        compiled.unlink()


def _write(journal: Journal, path: Path, data: str | bytes) -> bool:
    """Write `data` unless the file already holds it (re-running leaves files and mtimes alone), the
    file's old bytes registered first."""
    payload = data.encode() if isinstance(data, str) else data
    with contextlib.suppress(FileNotFoundError):
        if path.read_bytes() == payload:
            return False
    journal.will("restore", **restore_inline(path))
    fileops.atomic_write(path, payload, 0o644)
    return True


def _enable_one(journal: Journal, env: Path, line: str) -> dict:
    result: dict = {"environment": str(env), "pth": [], "changed": False, "hook_loaded": False, "error": None}
    sites = site_packages(env)
    if not sites:
        result["error"] = "no lib/python3.*/site-packages"
        return result
    try:
        for site in sites:
            pth = site / PTH_NAME
            result["changed"] |= _write(journal, pth, line)
            result["pth"].append(str(pth))
    except OSError as exc:
        result["error"] = f"cannot write {PTH_NAME}: {exc}"
        return result
    result["hook_loaded"], result["error"] = verify_hook(env)
    return result


def verify_hook(env: Path) -> tuple[bool, str | None]:
    """Start the environment's interpreter as a kernel would and ask whether the hook is loaded."""
    probe = f"import sys; print({HOOK_MODULE!r} in sys.modules)"
    try:
        done = subprocess.run(
            [str(env / "bin" / "python"), "-c", probe],
            capture_output=True,
            text=True,
            timeout=VERIFY_TIMEOUT_S,
            env={"PATH": "/usr/bin:/bin"},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"its python did not run: {exc}"
    if done.returncode != 0:
        return False, f"its python exited {done.returncode}: {(done.stderr.strip().splitlines() or [''])[-1]}"
    if done.stdout.strip() != "True":
        return False, "its python started without loading the hook (Python older than 3.10?)"
    return True, None


def format_result(result: dict) -> str:
    """One line per environment, then a summary line (the lifecycle script logs the last line)."""
    if "removed" in result:
        return "\n".join(f"removed {p}" for p in result["removed"]) or "no environment had the hook"
    lines = [f"hook: {result['hook_dir']}"]
    for env in result["environments"]:
        state = "FAILED: " + env["error"] if env["error"] else "enabled" if env["changed"] else "already enabled"
        lines.append(f"  {env['environment']}: {state}")
    envs = result["environments"]
    failed = [env["environment"] for env in envs if env["error"]]
    newly = sum(1 for env in envs if env["changed"] and not env["error"])
    summary = f"{len(envs)} environments: {newly} enabled now, {len(envs) - newly - len(failed)} already"
    lines.append(summary + (f", {len(failed)} FAILED ({', '.join(failed)})" if failed else ""))
    return "\n".join(lines)
