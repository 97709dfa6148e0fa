"""`smdiag bootstrap`: move Docker's data-root onto the EBS volume, safely, and re-point it at every boot.

The decision (unchanged, repoint, migrate) and the config edits (agent.config_edits) are pure functions of
gathered facts. The move is a transaction in `<state>/bootstrap/journal.json` (agent.journal): the undo of
every change (a config file's backup, the staging directory, the copy, the restart on the old root) is
registered before the change, and one replay of those steps serves both the rollback of a failed run and the
recovery of a killed one, which the next run does before anything else. Whether a killed run is undone or
finished is decided from facts found on disk and in the engine (`recovery_direction`), never from how far
the journal says it got. The copy itself, and what a data-root holds, are agent.dataroot's.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from agent import disks, fileops
from agent.config_edits import (
    ConfigEdit,
    apply_edits,
    edits_for,
    parse_daemon_config,
    read_text,
    write_local_mode_config,
)
from agent.dataroot import (
    COPY_UNDO,
    Inventory,
    allocated_bytes,
    changed_since,
    classify_target,
    inside,
    migrate,
    reclaim,
    remove_copy,
    set_aside,
    take_inventory,
    verify,
)
from agent.engine import Engine, validate_host
from agent.errors import BadInput, Failed, SmdiagError
from agent.journal import Journal, cause_in_words, signals_blocked, signals_unwind
from agent.log import get_logger
from agent.service import BY_ENVIRONMENT, DockerService, detect_service
from agent.settings import DEFAULT_DOCKER_HOST, Settings

log = get_logger("bootstrap")

MANUAL_LAYOUT = "docker-stuff"
"""Where the seed chapter's manual recipe put the data-root on the EBS volume."""
ROOM_MARGIN = 1.05
ROOM_SLACK_BYTES = 64 * 1024 * 1024
RESTART_UNDO = "restart_on_old_root"
"""The undo step registered before Docker is first stopped: run it on the old root again."""


@dataclass(frozen=True)
class Options:
    target: Path | None = None
    stop_cmd: str | None = None
    start_cmd: str | None = None
    reclaim: bool = False
    dry_run: bool = False
    finish: str | None = None
    """forward or back: how to end an interrupted run that left data in both trees (the user's choice)."""
    live_copy: bool = True
    """Copy once while Docker runs, then stop it for a final pass over what changed: downtime is that pass."""


# ---------------------------------------------------------------------------------------------- pure plan


@dataclass(frozen=True)
class Situation:
    current_root: str
    target: str
    target_kind: str
    """See classify_target."""
    marker_fingerprint: str | None
    inventory: Inventory
    containerd_image_store: bool
    needed_bytes: int
    target_free: int


def decide(s: Situation) -> str:
    """unchanged | repointed | migrated, or an error naming why none is safe. Pure."""
    if s.containerd_image_store:
        raise Failed(
            "the engine uses the containerd image store: images live under containerd's root, which "
            "Docker's data-root does not move; nothing was changed",
            "turn the containerd image store off in daemon.json (features.containerd-snapshotter: false)",
        )
    if s.current_root == s.target:
        return "unchanged"
    if inside(s.target, s.current_root) or inside(s.current_root, s.target):
        raise BadInput(
            f"the target {s.target} and the current data-root {s.current_root} contain each other",
            "choose a target outside the current data-root",
        )
    if s.target_kind in ("ours", "layout"):
        if s.inventory.is_empty or s.inventory.fingerprint() == s.marker_fingerprint:
            return "repointed"
        counts = s.inventory.counts()
        raise Failed(
            f"both {s.current_root} ({counts['images']} images, {counts['containers']} containers, "
            f"{counts['volumes']} volumes) and {s.target} hold Docker data; re-pointing would hide the first",
            f"remove what {s.current_root} holds (docker system prune -a --volumes) or choose another --target",
        )
    if s.target_kind == "mountpoint":
        raise BadInput(
            f"the target {s.target} is a mount point; the copy is staged next to it and renamed into place",
            f"choose a directory inside it, e.g. --target {s.target.rstrip('/')}/docker",
        )
    if s.target_kind == "foreign":
        raise BadInput(
            f"the target {s.target} holds files that are not a Docker data-root",
            "choose a new or empty directory for --target",
        )
    needed = int(s.needed_bytes * ROOM_MARGIN) + ROOM_SLACK_BYTES
    if needed > s.target_free:
        raise BadInput(
            f"the target's filesystem has {disks.human_bytes(s.target_free)} free; copying "
            f"{s.current_root} needs {disks.human_bytes(needed)}",
            "free space on the EBS volume or increase its size (stop the notebook, Edit, Volume size)",
        )
    return "migrated"


# ---------------------------------------------------------------------------------------------- edges


def run_bootstrap(
    settings: Settings, engine: Engine, options: Options, progress: Callable[[int, int], None] | None = None
) -> dict:
    """Move or re-point Docker's data-root onto the target; see the module docstring for the guarantees."""
    started = time.monotonic()
    validate_host(engine.host)
    daemon_text = read_text(settings.daemon_config)
    parse_daemon_config(daemon_text, settings.daemon_config)  # bad input stops us before anything changes
    _check_target(settings, options.target)
    service = detect_service(options.stop_cmd, options.start_cmd, settings.systemd_run_dir, engine)
    journal = Journal(settings.state.bootstrap / "journal.json")
    with fileops.exclusive_lock(settings.state.bootstrap / "lock"):
        pending = journal.load()
        if options.finish and not (pending and pending.get("phase") != "committed"):
            raise BadInput("--finish: there is no interrupted bootstrap to finish", "run smdiag bootstrap without it")
        recovered = None
        if pending is not None and not options.dry_run:
            recovered = _recover(journal, pending, service, settings, options.finish)
        result = _bootstrap(settings, options, engine, service, journal, progress)
    if options.dry_run and pending is not None:
        result["plan"].insert(0, f"first recover the run interrupted at {pending.get('phase')}")
    result.update(
        seconds=round(time.monotonic() - started, 3),
        daemon_seconds=round(service.daemon_seconds, 3),
        downtime_seconds=round(service.downtime_seconds, 3),
        service=service.kind,
        recovered=recovered and recovered["direction"],
        interrupted_phase=recovered and recovered["phase"],
        skipped=[*(recovered or {}).get("skipped", []), *result.get("skipped", [])],
        kept_aside=(recovered or {}).get("kept"),
    )
    if recovered:
        result["stopped_containers"] = recovered.get("stopped_containers", []) + result.get("stopped_containers", [])
    log.info("bootstrap.finished", **{k: v for k, v in result.items() if k != "plan"})
    return result


def _bootstrap(settings, options, engine: Engine, service, journal, progress) -> dict:
    facts = engine.describe()
    current_root = os.path.realpath(facts.root_dir)
    target = Path(os.path.realpath(_choose_target(settings, options.target)))
    kind, marker = classify_target(target)
    inventory = take_inventory(engine.client)
    edits, skipped = edits_for(settings, str(target))
    needed, free = 0, 0
    if kind in ("absent", "empty") and current_root != str(target):
        needed = allocated_bytes(Path(current_root))
        free = _free_bytes(target)
    situation = Situation(
        current_root=current_root,
        target=str(target),
        target_kind=kind,
        marker_fingerprint=(marker or {}).get("fingerprint"),
        inventory=inventory,
        containerd_image_store=facts.containerd_image_store,
        needed_bytes=needed,
        target_free=free,
    )
    action = decide(situation)
    result = {
        "action": action,
        "old_root": current_root,
        "new_root": str(target),
        **inventory.counts(),
        "bytes_copied": 0,
        "config_written": [],
        "backups": [],
        "stopped_containers": [],
    }
    if options.dry_run:
        plan = _plan_steps(action, situation, edits, service, options.live_copy)
        result.update(action="planned", plan=plan, skipped=skipped)
        return result
    local_config, why_not = write_local_mode_config(settings)
    if local_config:
        result["config_written"].append(local_config)
    result["skipped"] = skipped + why_not
    if action == "unchanged":
        result["backups"] = [str(b) for b in apply_edits(edits, journal=None) if b]
        result["config_written"] += [str(e.path) for e in edits]
        return result
    journal.begin(
        phase="begin", action=action, old_root=current_root, target=str(target),
        storage_driver=facts.storage_driver, inventory=inventory.to_dict(), settled_at=time.time(),
    )  # fmt: skip
    journal.will("command", action=RESTART_UNDO, root=current_root)
    with signals_unwind():
        try:
            if action == "migrated":
                result["bytes_copied"], inventory = migrate(
                    Path(current_root), target, engine, service, journal, options.live_copy, progress,
                )  # fmt: skip
            apply_edits(edits, journal)
            journal.record(phase="starting")
            if action == "repointed":
                service.stop()
            service.start()
            journal.record(phase="verifying")
            result["stopped_containers"] = verify(
                engine, target, facts.storage_driver, inventory, compare=action == "migrated"
            )
        except BaseException as exc:
            _rollback(journal, service, settings, cause=exc)
    result["backups"] = [s["backup"] for s in journal.steps("restore") if s["backup"]]
    result["stopped_copy_seconds"] = journal.data.get("stopped_copy_seconds", 0.0)
    result["config_written"] += [str(e.path) for e in edits]
    journal.record(phase="committed")
    if options.reclaim:
        result["reclaimed"] = reclaim(Path(current_root), target)
    journal.commit()
    return result


def _rollback(journal: Journal, service: DockerService, settings: Settings, cause: BaseException) -> NoReturn:
    """Put the old config back and Docker running on the old root; raise Failed naming the cause (also for
    Ctrl-C and SIGTERM, which then exit 1 like any failure)."""
    reason = cause_in_words(cause)
    old_root = journal.data.get("old_root")
    log.error("bootstrap.rolling_back", cause=reason, phase=journal.data.get("phase"))
    try:
        with signals_blocked():  # a second Ctrl-C must not leave the rollback half done
            kept = _undo(journal, service)
    except Exception as exc:  # noqa: BLE001 - reported together with the original cause
        raise Failed(
            f"bootstrap failed ({reason}) and the rollback failed too: {exc}",
            f"restore the *.smdiag-*.bak backups next to {settings.daemon_config} and start Docker",
        ) from cause
    raise Failed(
        f"bootstrap failed and was rolled back; Docker runs on {old_root} again"
        + (f" ({kept} is kept: an engine has run on it)" if kept else "")
        + f": {reason}",
        cause.fix if isinstance(cause, SmdiagError) and cause.fix else "see the log for details",
    ) from cause


def _undo(journal: Journal, service: DockerService) -> str | None:
    """Replay the journal: config files back, Docker on the old root, then (only now that no daemon uses
    them) the staging directory and the copy removed, so that the next run never re-points to a copy
    that failed, unless the journal says an engine ran on that copy before this run took over: then it
    is moved aside, and its new path returned."""
    data = dict(journal.data)
    kept = []

    def restart_on_old_root(step: dict) -> str | None:
        if _engine_root(service.engine) == step["root"]:
            return None
        # Stop even when it does not answer: a killed run may have left a daemon half-way through
        # stopping or starting, and a second one would not start beside it.
        with contextlib.suppress(Failed):
            service.stop()
        service.start()
        return f"Docker runs on {step['root']}"

    def undo_copy(step: dict) -> str | None:
        target = Path(step["path"])
        if data.get("target_in_use") and target.exists():
            kept.append(str(set_aside(target)))
            return f"kept {target} as {kept[-1]}"
        remove_copy(target)
        return f"removed {target}"

    journal.replay({RESTART_UNDO: restart_on_old_root, COPY_UNDO: undo_copy})
    log.warning("bootstrap.rolled_back", old_root=data.get("old_root"), kept=kept[0] if kept else None)
    return kept[0] if kept else None


def _engine_root(engine: Engine) -> str | None:
    """Where the engine runs now, or None when it does not answer."""
    if not engine.answers():
        return None
    return os.path.realpath(engine.describe().root_dir)


@dataclass(frozen=True)
class RecoveryFacts:
    """What an interrupted run left behind, as found by the next run."""

    target_complete: bool
    """The copy was renamed into place (or, re-pointing, was complete all along)."""
    target_used: bool
    """An engine has run on the copy since it settled: it runs there now, or files under it changed."""
    old_used: bool
    """The old root holds what the copy lacks: the engine runs there with more than was copied, or (the
    engine elsewhere) files under it changed since the copy."""


def recovery_direction(f: RecoveryFacts) -> str:
    """forward (finish the move, keep the target), back (undo it), or both (each tree holds what the other
    lacks: neither may be removed or hidden without the user's word). Pure."""
    if not f.target_complete:
        return "back"
    if f.target_used and f.old_used:
        return "both"
    return "back" if f.old_used else "forward"


def _recover(journal: Journal, data: dict, service: DockerService, settings: Settings, finish: str | None) -> dict:
    """A journal left behind means a run was killed. Decide from the facts, not from the phase it reached:
    finish a move whose copy an engine has used (or that is complete and unused), undo one whose copy never
    completed, and when both trees hold data the other lacks, change nothing and ask."""
    phase = data.get("phase")
    if phase == "committed":
        journal.clear()
        return {"direction": "rolled_forward", "phase": phase}
    target, old_root = Path(data["target"]), data["old_root"]
    kind, marker = classify_target(target)
    settled = data.get("settled_at") or (marker or {}).get("time")
    copied = Inventory.from_dict(data.get("inventory") or {})
    engine_root = _engine_root(service.engine)
    complete = kind == "ours" and settled is not None
    if engine_root == old_root:
        old_used = take_inventory(service.engine.client).holds_more_than(copied)
    else:
        # Re-pointing, the old root held nothing the target lacks (decide() made sure), and our own stop of
        # the engine on it came after `settled`.
        old_used = data.get("action") == "migrated" and complete and changed_since(Path(old_root), settled)
    facts = RecoveryFacts(
        target_complete=complete,
        target_used=complete and (engine_root == str(target) or changed_since(target, settled)),
        old_used=old_used,
    )
    direction = finish or recovery_direction(facts)
    log.warning("bootstrap.recovering", phase=phase, direction=direction, engine_root=engine_root, **vars(facts))
    if direction == "both":
        raise Failed(
            f"a bootstrap interrupted at {phase} left Docker data in {old_root} and in {target}, each holding "
            "what the other lacks; both are kept and nothing was changed",
            f"choose one: `smdiag bootstrap --finish forward` runs Docker on {target} ({old_root} stays on disk), "
            f"`smdiag bootstrap --finish back` runs it on {old_root} ({target} is kept, renamed aside)",
        )
    if direction == "back":
        journal.record(target_in_use=facts.target_used)
        kept = _undo(journal, service)
        return {"direction": "rolled_back", "phase": phase, "kept": kept}
    if not complete:
        raise Failed(f"--finish forward: the copy in {target} never completed", "run `smdiag bootstrap --finish back`")
    return {
        "direction": "rolled_forward",
        "phase": phase,
        **_roll_forward(journal, service, settings, facts.target_used),
    }


def _roll_forward(journal: Journal, service: DockerService, settings: Settings, target_ran: bool) -> dict:
    """Finish an interrupted move: the config names the target, Docker runs there, verified. The inventory
    is compared only when no engine has used the copy yet (afterwards, changes are the user's)."""
    data = journal.data
    target = Path(data["target"])
    edits, skipped = edits_for(settings, str(target))
    with signals_unwind():
        try:
            apply_edits(edits, journal)
            journal.record(phase="starting", target_in_use=target_ran)
            if _engine_root(service.engine) != str(target):
                with contextlib.suppress(Failed):
                    service.stop()
                service.start()
            journal.record(phase="verifying")
            inventory = Inventory.from_dict(data.get("inventory") or {})
            stopped = verify(service.engine, target, data.get("storage_driver"), inventory, compare=not target_ran)
        except BaseException as exc:
            _rollback(journal, service, settings, cause=exc)
    journal.record(phase="committed")
    journal.commit()
    return {"skipped": skipped, "stopped_containers": stopped}


def _check_target(settings: Settings, target: Path | None) -> None:
    """Bad input about the target, found before the engine is asked anything."""
    if target is not None and not target.is_absolute():
        raise BadInput(f"--target {target} is not an absolute path", "give the full path of the directory")
    if target is None and not settings.ebs_mount.is_dir():
        raise BadInput(
            f"there is no EBS volume at {settings.ebs_mount}",
            "pass --target DIR, or set SMDIAG_EBS_MOUNT to the large volume's mount point",
        )


def _choose_target(settings: Settings, target: Path | None) -> Path:
    _check_target(settings, target)
    if target is not None:
        return target
    manual = settings.ebs_mount / MANUAL_LAYOUT
    if classify_target(manual)[0] in ("ours", "layout"):
        return manual
    return settings.ebs_mount / "docker"


def _plan_steps(action: str, s: Situation, edits: list[ConfigEdit], service: DockerService, live: bool) -> list[str]:
    steps = []
    copy = (
        f"copy {s.current_root} ({disks.human_bytes(s.needed_bytes)}) to {s.target} "
        f"({disks.human_bytes(s.target_free)} free) through a staging directory"
    )
    stop = f"stop Docker ({service.describe()})"
    docker_host = service.engine.host
    if service.kind != "custom" and docker_host != DEFAULT_DOCKER_HOST:
        stop += f"; the engine is at {docker_host}, which this may not stop: pass --stop-cmd and --start-cmd"
        stop += f" ({BY_ENVIRONMENT})"
    if action == "migrated" and live:
        steps += [
            f"{copy} while Docker runs",
            f"{stop} and copy again what changed meanwhile",
        ]
    elif action == "migrated":
        steps += [stop, copy]
    elif action == "repointed":
        steps.append(f"re-point Docker at the existing data-root {s.target}: no copy")
    steps += [f"back up and rewrite {e.path}" for e in edits]
    if action != "unchanged":
        steps.append("restart Docker and verify the data-root and the inventory")
    return steps or ["nothing to do: Docker already runs on the target and the config says so"]


def _free_bytes(target: Path) -> int:
    probe = target
    while not probe.exists():
        probe = probe.parent
    usage = disks.fs_usage(probe)
    return usage.free if usage else 0


def format_result(result: dict) -> str:
    lines = [f"bootstrap: {result['action']}: {result['old_root']} -> {result['new_root']}"]
    for step in result.get("plan", []):
        lines.append(f"  - {step}")
    lines.append(
        f"  images {result['images']}, containers {result['containers']}, volumes {result['volumes']}, "
        f"copied {disks.human_bytes(result['bytes_copied'])}; {result['seconds']:.1f}s "
        f"({result['daemon_seconds']:.1f}s of it waiting for dockerd to stop and start)"
    )
    for path in result.get("config_written", []):
        lines.append(f"  wrote {path}")
    for skipped in result.get("skipped", []):
        lines.append(f"  left alone {skipped['what']}: {skipped['why']}")
    if result.get("stopped_containers"):
        lines.append(
            f"  not running since Docker restarted (no restart policy): {', '.join(result['stopped_containers'])}; "
            "start them again with `docker start NAME`"
        )
    if result.get("recovered") == "rolled_forward":
        lines.append(
            f"  an earlier run interrupted at {result['interrupted_phase']} was rolled forward (finished) first"
        )
    elif result.get("recovered") == "rolled_back":
        lines.append(f"  an earlier run interrupted at {result['interrupted_phase']} was rolled back first")
    return "\n".join(lines)
