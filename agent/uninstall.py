"""`smdiag uninstall`: take back what smdiag added to this machine, and say what it kept and why.

What goes (what lifecycle-config/on-start.sh and studio-on-start.sh install, and `smdiag fix` writes):
- the guard: its process, and its systemd unit where there is one (agent.guard.daemon.stop);
- the kernel hook: the .pth in every Python environment and `<state>/kernel-hook/` (agent.host.kernels);
- the `docker-compose` shim, only a file that still carries smdiag's mark;
- the `smdiag` link on PATH, only a symlink into the state dir or to this smdiag.
What stays, named with how to undo it by hand: Docker's data-root where bootstrap moved it (moving it back
means stopping Docker and copying every image), the files bootstrap edited and their backups, and the state
dir (the failure reports, logs, the agent's own environment).

Journaled (agent.journal): the undo of each removal (a file's bytes, the link's target, how the guard ran)
is on disk before the removal, so a failed uninstall puts everything back and one that was killed is put
back by the next uninstall before it starts again. Gathering touches the edges; the plan and the "kept"
list are pure functions of what was gathered.
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import psutil

from agent import fileops
from agent.config_edits import DROPIN_NAME, LOCAL_MODE_DIR, parse_daemon_config, read_text
from agent.dataroot import MARKER
from agent.errors import Failed, SmdiagError
from agent.fix.compose_shim import SHIM_MARK
from agent.guard import daemon
from agent.host import kernels
from agent.journal import Journal, cause_in_words, restore_inline, signals_blocked, signals_unwind
from agent.log import get_logger
from agent.settings import DEFAULT_DOCKER_ROOT, Settings

log = get_logger("uninstall")

DEFAULT_BIN_DIRS = (Path("/usr/local/bin"), Path("~/.local/bin").expanduser())
"""Where on-start.sh (as root) and studio-on-start.sh (as the space's user) link `smdiag`."""
NOTHING_CHANGED = "(dry run: nothing changed)"


@dataclass(frozen=True)
class Facts:
    """This machine's smdiag parts, as found now."""

    settings: Settings
    guard: dict
    """agent.guard.daemon.running_guard: the unit, the running guard's pid and command line."""
    hooks: list[Path]
    """The .pth files of the hook in the environments."""
    hook_dir: Path | None
    shims: dict[Path, bool]
    """Each bin dir's `docker-compose`: whether it carries smdiag's mark."""
    links: dict[Path, str | None]
    """Each bin dir's `smdiag`: its target when it is smdiag's link, None when it is something else."""
    reports: int
    agent_env: bool
    """The agent's own environment (on-start.sh's venv) is in the state dir."""
    onstart: bool
    """The lifecycle script ran here (it installs smdiag again at the next start)."""
    data_root: str | None
    """Where bootstrap moved Docker's data-root (daemon.json names it, and bootstrap's marker or backup is
    there); None when it did not move it."""
    original_root: str
    """Where the data-root was before bootstrap: the oldest daemon.json backup's, else Docker's default."""
    backups: dict[str, list[Path]] = field(default_factory=dict)
    """Each file bootstrap edited -> its `.smdiag-*.bak` copies, oldest first."""
    bootstrap_files: list[tuple[Path, str]] = field(default_factory=list)
    """Files bootstrap wrote that stay, with what each does now."""
    set_aside: list[Path] = field(default_factory=list)
    """Data-root copies bootstrap kept under `*.smdiag-kept-*`."""


def gather(settings: Settings, patterns: list[str], bin_dirs: list[Path]) -> Facts:
    """What of smdiag's is on this machine (reads only)."""
    hooks = [
        site / kernels.PTH_NAME
        for env in kernels.environments(patterns)
        for site in kernels.site_packages(env)
        if (site / kernels.PTH_NAME).exists()
    ]
    shims = {}
    links = {}
    for directory in bin_dirs:
        shim = directory / "docker-compose"
        with contextlib.suppress(FileNotFoundError, IsADirectoryError):
            shims[shim] = SHIM_MARK in shim.read_text(errors="replace")
        link = directory / "smdiag"
        if link.is_symlink() or link.exists():
            links[link] = _smdiag_link(link, settings.state_dir)
    state = settings.state
    edited = [settings.daemon_config, settings.sysconfig, settings.sagemaker_config]
    backups = {str(path): sorted(path.parent.glob(f"{path.name}.smdiag-*.bak")) for path in edited}
    oldest = backups[str(settings.daemon_config)][:1]
    data_root = _data_root(read_text(settings.daemon_config), settings.daemon_config)
    if data_root and not (oldest or Path(data_root, MARKER).exists()):
        data_root = None  # set by someone else: not smdiag's to explain
    original = (_data_root(read_text(oldest[0]), oldest[0]) if oldest else None) or str(DEFAULT_DOCKER_ROOT)
    set_aside = sorted(Path(data_root).parent.glob(f"{Path(data_root).name}.smdiag-kept-*")) if data_root else []
    return Facts(
        settings=settings,
        guard=daemon.running_guard(settings),
        hooks=hooks,
        hook_dir=state.kernel_hook if state.kernel_hook.exists() else None,
        shims=shims,
        links=links,
        reports=len(list(state.failures.glob("*/report.json"))),
        agent_env=state.venv.exists(),
        onstart=state.onstart_status.exists(),
        data_root=data_root,
        original_root=original,
        backups={name: found for name, found in backups.items() if found},
        bootstrap_files=_bootstrap_files(settings, data_root),
        set_aside=set_aside,
    )


def plan(facts: Facts) -> tuple[list[dict], list[dict]]:
    """(what goes, what is left alone and why), each {what, path, detail}. Pure."""
    removals, left = [], []
    guard = facts.guard
    if guard["pid"] is not None or guard["unit"]:
        how = f"systemd unit {daemon.UNIT}" if guard["systemd"] else "detached"
        running = f"pid {guard['pid']}, {how}" if guard["pid"] is not None else f"not running, {how}"
        removals.append({"what": "disk guard", "path": guard["unit"], "detail": running})
    removals += [{"what": "kernel hook", "path": str(pth), "detail": None} for pth in facts.hooks]
    if facts.hook_dir:
        removals.append({"what": "hook directory", "path": str(facts.hook_dir), "detail": None})
    for shim, ours in facts.shims.items():
        if ours:
            removals.append({"what": "compose shim", "path": str(shim), "detail": "written by smdiag fix"})
        else:
            left.append({"what": "docker-compose", "path": str(shim), "detail": "not smdiag's shim"})
    for link, target in facts.links.items():
        if target is not None:
            removals.append({"what": "link", "path": str(link), "detail": f"to {target}"})
        else:
            left.append({"what": "smdiag", "path": str(link), "detail": "not smdiag's link"})
    return removals, left


def kept(facts: Facts) -> list[dict]:
    """What stays on purpose, each {path, what}. Pure."""
    state = facts.settings.state_dir
    holds = [_count(facts.reports, "failure report"), "logs", *(["the agent's own environment"] * facts.agent_env)]
    found = [{"path": str(state), "what": f"the state dir ({', '.join(holds)}); once done with them: rm -rf {state}"}]
    if facts.data_root:
        found.append({"path": facts.data_root, "what": "Docker's data-root, with its images and containers"})
    found += [{"path": str(path), "what": "a data-root copy bootstrap kept aside"} for path in facts.set_aside]
    found += [{"path": str(path), "what": what} for path, what in facts.bootstrap_files]
    for name, copies in facts.backups.items():
        found += [{"path": str(copy), "what": f"backup of {name} (before bootstrap edited it)"} for copy in copies]
    return found


def move_back(facts: Facts) -> list[str]:
    """The steps that put Docker's data-root back where it was, by hand; none when bootstrap did not move
    it. Pure."""
    settings, root, original = facts.settings, facts.data_root, facts.original_root
    if not root:
        return []
    before = facts.backups.get(str(settings.daemon_config), [])
    undo_config = (
        f'set "data-root" back to "{original}"'
        if original != str(DEFAULT_DOCKER_ROOT)
        else 'remove the "data-root" line'
    )
    steps = [
        "stop Docker: sudo systemctl stop docker (or: sudo service docker stop)",
        f"in {settings.daemon_config}, {undo_config}"
        + (f" (its copy from before bootstrap: {before[0]})" if before else ""),
    ]
    sysconfig = facts.backups.get(str(settings.sysconfig), [])
    if sysconfig:
        steps.append(f"put {settings.sysconfig} back from {sysconfig[0]} (bootstrap took out its data-root flag)")
    dropin = settings.systemd_dir / DROPIN_NAME
    if any(path == dropin for path, _what in facts.bootstrap_files):
        steps.append(f"sudo rm {dropin} && sudo systemctl daemon-reload")
    steps += [
        f"copy the images back: sudo rsync -aHAX --delete {root}/ {original}/ (or skip it: Docker then "
        "starts empty, and pulls again)",
        "start Docker: sudo systemctl start docker (or: sudo service "
        f"docker start), then check: docker info --format '{{{{.DockerRootDir}}}}' says {original}",
    ]
    local = settings.sagemaker_config
    if any(path == local for path, _what in facts.bootstrap_files):
        steps.append(f"optional: in {local}, remove local: container_root: (local mode then writes under /tmp)")
    if facts.onstart:
        steps.append(
            "on a notebook instance, a restart with the lifecycle configuration detached does all of this "
            f"but the copy: the root volume, with /etc, starts fresh, and Docker starts empty on {original}"
        )
    return steps


def run_uninstall(settings: Settings, patterns: list[str], bin_dirs: list[Path], dry_run: bool) -> dict:
    """Remove what `plan` names, in one journaled run (nothing removed, with --dry-run); what went, what was
    left alone, what was kept, and how to move the data-root back."""
    if dry_run:
        return _result(gather(settings, patterns, bin_dirs), dry_run, undone=[])
    journal = Journal(settings.state.root / "uninstall" / "journal.json")
    handlers = _undo_handlers(settings)
    with fileops.exclusive_lock(journal.path.with_name("lock")):
        undone = journal.replay(handlers) if journal.load() is not None else []
        facts = gather(settings, patterns, bin_dirs)
        removals, _left = plan(facts)
        _check_permissions(facts, removals)
        if removals:
            _remove(facts, patterns, journal, handlers)
    log.info("uninstall.done", removed=len(removals), recovered=undone)
    return _result(facts, dry_run, undone)


def _remove(facts: Facts, patterns: list[str], journal: Journal, handlers: dict) -> None:
    """Every removal, its undo registered first; a failure or a signal puts back what went."""
    settings = facts.settings
    journal.begin(command="uninstall")
    with signals_unwind():
        try:
            if facts.guard["pid"] is not None or facts.guard["unit"]:
                if facts.guard["unit"]:
                    journal.will("restore", **restore_inline(Path(facts.guard["unit"])))
                journal.will("command", action="start_guard", guard=facts.guard)
                daemon.stop(settings, remove_unit=True)
            if facts.hooks or facts.hook_dir:
                hook_files = [p for p in facts.hook_dir.rglob("*") if p.is_file()] if facts.hook_dir else []
                for path in [*facts.hooks, *hook_files]:
                    journal.will("restore", **restore_inline(path))
                kernels.disable(settings.state_dir, patterns)
            for shim in (shim for shim, ours in facts.shims.items() if ours):
                journal.will("restore", **restore_inline(shim))
                if SHIM_MARK in shim.read_text(errors="replace"):  # still ours: nothing replaced it meanwhile
                    shim.unlink()
            for link, target in facts.links.items():
                if target is not None:
                    journal.will("command", action="relink", path=str(link), target=target)
                    link.unlink(missing_ok=True)
        except BaseException as cause:
            _put_back(journal, handlers, cause)
    journal.commit()


def _put_back(journal: Journal, handlers: dict, cause: BaseException) -> NoReturn:
    """Undo what went, then raise Failed naming the cause (Ctrl-C and SIGTERM too: they exit 1 like any
    failure). A put-back that fails leaves the journal for the next uninstall, which replays it first."""
    reason = cause_in_words(cause)
    log.error("uninstall.putting_back", cause=reason)
    try:
        with signals_blocked():  # a second Ctrl-C must not leave the put-back half done
            journal.replay(handlers)
    except Exception as exc:  # noqa: BLE001 - reported together with the original cause
        raise Failed(
            f"uninstall failed ({reason}) and putting back what it had removed failed too: {exc}",
            "run `smdiag uninstall` again: it puts back what is in its journal first",
        ) from cause
    fix = cause.fix if isinstance(cause, SmdiagError) and cause.fix else "see the log for details"
    raise Failed(f"uninstall failed, and put back what it had removed: {reason}", fix) from cause


def _undo_handlers(settings: Settings) -> dict:
    def relink(step: dict) -> str:
        path = Path(step["path"])
        staged = path.with_name(f".{path.name}.smdiag-new")
        staged.unlink(missing_ok=True)
        staged.symlink_to(step["target"])
        os.replace(staged, path)
        return f"linked {path} -> {step['target']} again"

    return {"start_guard": lambda step: daemon.resume(settings, step["guard"]), "relink": relink}


def _check_permissions(facts: Facts, removals: list[dict]) -> None:
    """Refuse before any change what this user may not remove (on a notebook: run it with sudo)."""
    paths = [Path(r["path"]) for r in removals if r["path"]]
    blocked = [str(p) for p in paths if not os.access(p.parent, os.W_OK)]
    if os.geteuid() != 0 and (facts.guard["systemd"] or _owner(facts.guard["pid"]) not in (None, os.geteuid())):
        blocked.append(f"the disk guard (pid {facts.guard['pid']})")
    if blocked:
        raise Failed(
            f"this user may not remove {', '.join(blocked)}; nothing was changed",
            "run it as root: sudo smdiag uninstall",
        )


def _result(facts: Facts, dry_run: bool, undone: list[str]) -> dict:
    removals, left = plan(facts)
    return {
        "dry_run": dry_run,
        "removed": removals,
        "left_alone": left,
        "kept": kept(facts),
        "data_root": facts.data_root,
        "move_back": move_back(facts),
        "reinstalled_at_start": facts.onstart,
        "recovered": undone,
    }


def format_result(result: dict) -> str:
    """What went (or would go), what was left alone, what stays, and how to move the data-root back."""
    lines = [f"put back first what a killed uninstall had removed: {said}" for said in result["recovered"]]
    removals = result["removed"]
    lines.append(
        ("would remove:" if result["dry_run"] else "removed:") if removals else "nothing of smdiag's to remove"
    )
    lines += [f"  {_removal_line(r)}" for r in removals]
    if result["left_alone"]:
        lines.append("left alone:")
        lines += [f"  {r['path']}: {r['detail']}" for r in result["left_alone"]]
    lines.append("kept:")
    lines += [f"  {k['path']}: {k['what']}" for k in result["kept"]]
    if result["move_back"]:
        lines.append(f"Docker's data-root stays at {result['data_root']}. To move it back:")
        lines += [f"  {n}. {step}" for n, step in enumerate(result["move_back"], 1)]
    if result["reinstalled_at_start"]:
        lines.append(
            "the lifecycle configuration installs smdiag again at the next start: detach it from the "
            "notebook instance or Studio space to keep smdiag off"
        )
    if result["dry_run"]:
        lines.append(NOTHING_CHANGED)
    return "\n".join(lines)


def _removal_line(removal: dict) -> str:
    path, detail = removal["path"], removal["detail"]
    return f"{removal['what']}: " + (f"{path} ({detail})" if path and detail else path or detail)


def _owner(pid: int | None) -> int | None:
    with contextlib.suppress(psutil.Error, TypeError):
        return psutil.Process(pid).uids().effective
    return None


def _smdiag_link(link: Path, state_dir: Path) -> str | None:
    """The target of `link` when it is smdiag's own: a symlink into the state dir (as on-start.sh makes) or
    to the `smdiag` beside this interpreter; None for anything else, which is never removed."""
    if not link.is_symlink():
        return None
    target = os.readlink(link)
    pointed = Path(os.path.normpath(link.parent / target))
    own_script = Path(sys.executable).parent / "smdiag"
    if _inside(pointed, state_dir) or _inside(pointed.resolve(), state_dir.resolve()):
        return target
    return target if own_script.exists() and pointed.resolve() == own_script.resolve() else None


def _inside(path: Path, directory: Path) -> bool:
    return path == directory or directory in path.parents


def _data_root(text: str | None, source: Path) -> str | None:
    with contextlib.suppress(SmdiagError):
        root = parse_daemon_config(text, source).get("data-root")
        return str(root) if root else None
    return None


def _bootstrap_files(settings: Settings, data_root: str | None) -> list[tuple[Path, str]]:
    """The files bootstrap wrote that stay (they serve the data-root, which stays), with what each does."""
    found = []
    if data_root:
        found.append((settings.daemon_config, f"points Docker at {data_root} (edited by bootstrap)"))
    dropin = settings.systemd_dir / DROPIN_NAME
    if dropin.exists():
        found.append((dropin, "puts Docker's temporary files on the data-root's volume (written by bootstrap)"))
    container_root = settings.ebs_mount / LOCAL_MODE_DIR
    if container_root.exists():
        found.append((container_root, "local mode's files (the SageMaker SDK's container_root)"))
        text = read_text(settings.sagemaker_config) or ""
        if str(container_root) in text:
            found.append((settings.sagemaker_config, f"sets local mode's container_root to {container_root}"))
    return found


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
