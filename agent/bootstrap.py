"""`smdiag bootstrap`: move Docker's data-root onto the EBS volume, safely, and re-point it at every boot.

The decision (unchanged, repoint, migrate) and the config edits are pure functions of gathered facts.
The migration is a journaled transaction: every step that changes something is recorded first in
`<state>/bootstrap/journal.json`, so that a run killed at any point is rolled back by the next run
before it does anything else. The copy goes into a staging directory renamed to the target only when
complete, and a marker inside it records what was copied: a half-copied tree never looks complete.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shlex
import shutil
import signal
import stat
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import docker.errors

from agent import container_logs, disks, engine, fileops
from agent.errors import BadInput, Failed, SmdiagError
from agent.log import get_logger
from agent.service import DockerService, detect_service
from agent.settings import DEFAULT_DOCKER_HOST, Settings

log = get_logger("bootstrap")

MARKER = ".smdiag-data-root.json"
"""Written into a copy before it is renamed into place: its presence means the copy is complete."""
MANUAL_LAYOUT = "docker-stuff"
"""Where the seed chapter's manual recipe put the data-root on the EBS volume."""
DRIVER_DIRS = ("overlay2", "overlay", "fuse-overlayfs", "devicemapper", "btrfs", "zfs", "vfs", "aufs")
ROOT_FLAGS = ("-g", "--graph", "--data-root")
DROPIN_NAME = "docker.service.d/smdiag-tmpdir.conf"
LOCAL_MODE_DIR = ".sagemaker-local"
"""Under the EBS mount: the SDK's local-mode `container_root` (model artifacts, staged inputs)."""
ROOM_MARGIN = 1.05
ROOM_SLACK_BYTES = 64 * 1024 * 1024
RSYNC_ARGS = ("rsync", "-aHAXS", "--numeric-ids", "-x", "--delete")


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


# ---------------------------------------------------------------------------------------------- inventory


@dataclass
class Inventory:
    """What the engine holds, compared before and after a move: nothing may go missing."""

    images: dict[str, list[str]] = field(default_factory=dict)
    containers: dict[str, dict] = field(default_factory=dict)
    volumes: dict[str, dict[str, int]] = field(default_factory=dict)
    """Volume name -> {relative file path: size}."""
    logs: dict[str, str] = field(default_factory=dict)
    """Stopped container id -> digest of its log tail (running ones keep writing)."""

    @property
    def is_empty(self) -> bool:
        return not (self.images or self.containers or self.volumes)

    def fingerprint(self) -> str:
        names = [sorted(self.images), sorted(self.containers), sorted(self.volumes)]
        return hashlib.sha256(json.dumps(names).encode()).hexdigest()

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Inventory:
        return cls(**data)

    def counts(self) -> dict[str, int]:
        return {"images": len(self.images), "containers": len(self.containers), "volumes": len(self.volumes)}

    def holds_more_than(self, other: Inventory) -> bool:
        """Whether this has images, tags, containers or volume files that `other` lacks (logs aside: a
        container stopped by a daemon restart has new ones)."""
        return bool(Inventory(self.images, self.containers, self.volumes).missing_from(other))

    def missing_from(self, after: Inventory) -> list[str]:
        """What this (before) inventory has that `after` lost or changed, in words."""
        lost = []
        for image_id, tags in self.images.items():
            if image_id not in after.images:
                lost.append(f"image {tags[0] if tags else image_id[:19]}")
            elif set(tags) - set(after.images[image_id]):
                lost.append(f"tags {sorted(set(tags) - set(after.images[image_id]))}")
        for cid, container in self.containers.items():
            if after.containers.get(cid, {}).get("image") != container["image"]:
                lost.append(f"container {container['name']}")
        for name, files in self.volumes.items():
            if after.volumes.get(name) != files:
                lost.append(f"volume {name} (files differ)")
        for cid, digest in self.logs.items():
            if after.logs.get(cid) != digest:
                lost.append(f"logs of container {self.containers[cid]['name']}")
        return lost


def take_inventory(client) -> Inventory:
    inventory = Inventory()
    for image in client.images.list():
        inventory.images[image.id] = sorted(image.tags)
    for container in client.containers.list(all=True):
        running = container.status in ("running", "restarting", "paused")
        inventory.containers[container.id] = {
            "name": container.name,
            "image": container.attrs.get("Image"),
            "running": running,
            "restart": ((container.attrs.get("HostConfig") or {}).get("RestartPolicy") or {}).get("Name") or "no",
        }
        digest = container_logs.tail_digest(container)  # raises when the log file is unreadable
        if not running:
            inventory.logs[container.id] = digest
    for volume in client.volumes.list():
        inventory.volumes[volume.name] = _files(Path(volume.attrs.get("Mountpoint") or "/nonexistent"))
    return inventory


def _files(top: Path) -> dict[str, int]:
    found = {}
    for directory, _dirs, names in os.walk(top):
        for name in names:
            path = Path(directory) / name
            with contextlib.suppress(OSError):
                found[str(path.relative_to(top))] = path.lstat().st_size
    return found


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
    if _inside(s.target, s.current_root) or _inside(s.current_root, s.target):
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


def _inside(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def merged_daemon_config(text: str | None, data_root: str, source: Path) -> str:
    """daemon.json with `data-root` set and every other key kept; BadInput if it is not a JSON object."""
    config = parse_daemon_config(text, source)
    config["data-root"] = data_root
    return json.dumps(config, indent=2) + "\n"


def parse_daemon_config(text: str | None, source: Path) -> dict:
    if text is None or not text.strip():
        return {}
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInput(f"{source} is not valid JSON: {exc}", f"fix or remove {source}, then run again") from None
    if not isinstance(config, dict):
        raise BadInput(f"{source} is not a JSON object", f"fix {source}: dockerd needs {{...}} at its top")
    return config


def sysconfig_without_root_flags(text: str) -> str:
    """The Amazon Linux OPTIONS line without -g/--graph/--data-root (dockerd refuses a flag that is also a
    daemon.json key, and Docker 23 removed -g). Other lines are kept byte for byte."""
    lines = []
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        if stripped.startswith("OPTIONS="):
            words = shlex.split(" ".join(shlex.split(stripped[len("OPTIONS=") :])))
            kept = _without_root_flags(words)
            if kept != words:
                ending = "\n" if line.endswith("\n") else ""
                line = f'OPTIONS="{" ".join(kept)}"{ending}'
        lines.append(line)
    return "".join(lines)


def _without_root_flags(words: list[str]) -> list[str]:
    kept, skip = [], False
    for word in words:
        if skip:
            skip = False
        elif word in ROOT_FLAGS:
            skip = True
        elif not any(word.startswith(flag + "=") for flag in ROOT_FLAGS):
            kept.append(word)
    return kept


def tmpdir_dropin(tmpdir: str) -> str:
    return (
        "# Written by smdiag bootstrap: Docker's temporary files (local mode stages inputs there) go to the\n"
        "# EBS volume, not the small root volume.\n"
        f"[Service]\nEnvironment=DOCKER_TMPDIR={tmpdir}\n"
    )


def local_mode_config(text: str | None, container_root: str) -> str | None:
    """The SageMaker SDK config with `local: container_root:` set, other keys kept; None when it is already
    set so. ValueError when the file is not a YAML mapping: it is the user's to fix, and we leave it alone."""
    import yaml

    try:
        config = (yaml.safe_load(text) if text else None) or {}
    except yaml.YAMLError as exc:
        raise ValueError(str(exc).splitlines()[0]) from None
    if not isinstance(config, dict) or not isinstance(config.setdefault("local", {}) or {}, dict):
        raise ValueError("its top level or its `local` key is not a mapping")
    config["local"] = config["local"] or {}
    if config["local"].get("container_root") == container_root:
        return None
    config["local"]["container_root"] = container_root
    return yaml.safe_dump(config, default_flow_style=False, sort_keys=False)


# ---------------------------------------------------------------------------------------------- edges


@dataclass(frozen=True)
class ConfigEdit:
    path: Path
    new_text: str


class Journal:
    """The record of a migration in progress, read back by the next run after a kill."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict = {}

    def load(self) -> dict | None:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, json.JSONDecodeError) as exc:
            raise Failed(f"the bootstrap journal {self.path} is unreadable: {exc}", "remove it and run again") from None

    def record(self, **fields) -> None:
        self.data.update(fields)
        fileops.write_json(self.path, self.data)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
        self.data = {}


class _Interrupted(BaseException):
    """SIGTERM/SIGHUP during a migration: unwind through the rollback like Ctrl-C does."""


@contextlib.contextmanager
def _signals_unwind() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def raise_interrupt(signum, _frame):
        raise _Interrupted(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, raise_interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def _signals_blocked() -> Iterator[None]:
    blocked = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def run_bootstrap(settings: Settings, options: Options, progress: Callable[[int, int], None] | None = None) -> dict:
    """Move or re-point Docker's data-root onto the target; see the module docstring for the guarantees."""
    started = time.monotonic()
    engine.validate_host(settings.docker_host)
    daemon_text = _read(settings.daemon_config)
    parse_daemon_config(daemon_text, settings.daemon_config)  # bad input stops us before anything changes
    _check_target(settings, options.target)
    service = detect_service(options.stop_cmd, options.start_cmd, settings.systemd_run_dir)
    bootstrap_dir = settings.state_dir / "bootstrap"
    journal = Journal(bootstrap_dir / "journal.json")
    with fileops.exclusive_lock(bootstrap_dir / "lock"):
        pending = journal.load()
        if options.finish and not (pending and pending.get("phase") != "committed"):
            raise BadInput("--finish: there is no interrupted bootstrap to finish", "run smdiag bootstrap without it")
        recovered = None
        if pending is not None and not options.dry_run:
            recovered = _recover(journal, pending, service, settings, options.finish)
        client = engine.connect(settings.docker_host)
        try:
            result = _bootstrap(settings, options, service, journal, client, progress)
        finally:
            client.close()
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


def _bootstrap(settings, options, service, journal, client, progress) -> dict:
    facts = engine.describe(client, settings.docker_host)
    current_root = os.path.realpath(facts.root_dir)
    target = Path(os.path.realpath(_choose_target(settings, options.target)))
    kind, marker = classify_target(target)
    inventory = take_inventory(client)
    edits, skipped = _config_edits(settings, str(target))
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
        plan = _plan_steps(action, situation, edits, service, options.live_copy, settings.docker_host)
        result.update(action="planned", plan=plan, skipped=skipped)
        return result
    local_config, why_not = write_local_mode_config(settings)
    if local_config:
        result["config_written"].append(local_config)
    result["skipped"] = skipped + why_not
    if action == "unchanged":
        result["backups"] = [str(b) for b in _apply_edits(edits, journal=None) if b]
        result["config_written"] += [str(e.path) for e in edits]
        return result
    journal.data = {}
    journal.record(
        phase="begin", action=action, old_root=current_root, target=str(target), backups=[],
        storage_driver=facts.storage_driver, inventory=inventory.to_dict(), settled_at=time.time(),
    )  # fmt: skip
    with _signals_unwind():
        try:
            if action == "migrated":
                result["bytes_copied"], inventory = _migrate(
                    current_root, target, client, service, journal, settings, options, progress
                )
            _apply_edits(edits, journal)
            journal.record(phase="starting")
            if action == "repointed":
                service.stop(settings.docker_host)
            service.start(settings.docker_host)
            journal.record(phase="verifying")
            result["stopped_containers"] = _verify(
                settings.docker_host, target, facts.storage_driver, inventory, compare=action == "migrated"
            )
        except BaseException as exc:
            _rollback(journal, service, settings, cause=exc)
    result["backups"] = [b for b in (e["backup"] for e in journal.data["backups"]) if b]
    result["stopped_copy_seconds"] = journal.data.get("stopped_copy_seconds", 0.0)
    result["config_written"] += [str(e.path) for e in edits]
    journal.record(phase="committed")
    if options.reclaim:
        result["reclaimed"] = reclaim(Path(current_root), target)
    journal.clear()
    return result


def _migrate(
    current_root, target: Path, client, service, journal, settings, options, progress
) -> tuple[int, Inventory]:
    """Copy the data-root into staging (first while Docker runs, if `live_copy`), stop Docker, make the copy
    exact, rename it into place. Returns the bytes copied and the inventory Docker held when it stopped."""
    source = Path(current_root)
    staging = target.with_name(f".{target.name}.smdiag-partial")
    live_since = None
    if options.live_copy:
        journal.record(phase="precopying", staging=str(staging))
        live_since = time.time()
        size = allocated_bytes(source)
        copy_tree(source, staging, size, progress, live=True)
        progress = None  # the final pass is short: no second bar
    inventory = take_inventory(client)  # now, so that what the user changed meanwhile is what we verify
    journal.record(phase="stopping", staging=str(staging))
    service.stop(settings.docker_host)
    # Running containers write into their volumes until Docker stops them: count the files at rest.
    for name in inventory.volumes:
        inventory.volumes[name] = _files(source / "volumes" / name / "_data")
    journal.record(phase="copying", inventory=inventory.to_dict())
    stopped_copy_started = time.monotonic()
    if live_since is not None:
        _drop_changed_copies(source, staging, live_since - CLOCK_MARGIN_S)
    else:
        size = allocated_bytes(source)
    copy_tree(source, staging, size, progress)
    journal.record(stopped_copy_seconds=round(time.monotonic() - stopped_copy_started, 3))
    marker = {"source": current_root, "fingerprint": inventory.fingerprint(), "bytes": size, "time": time.time()}
    fileops.write_json(staging / MARKER, marker, mode=0o644)
    if target.exists():
        # classify_target found it empty; a dead daemon's bind mount of it may still make it busy.
        _release_daemon_mounts(target)
        target.rmdir()
    os.rename(staging, target)
    # From here on both trees are the same data: whatever changes either later was done by an engine.
    journal.record(phase="renamed", created_target=True, settled_at=time.time())
    return size, inventory


CLOCK_MARGIN_S = 2
"""Files changed this close before the live pass began are copied again too (clock steps, coarse mtimes)."""


def _drop_changed_copies(source: Path, staging: Path, since: float) -> int:
    """Delete from staging every file, link or node whose source changed since `since`, so that the final
    pass copies it whole. rsync's quick check (size and mtime, compared to the second) cannot see a
    same-size rewrite within the second of the live copy, as a database page update is."""
    dropped = 0
    for path, st in walk_filesystem(source):
        if not stat.S_ISDIR(st.st_mode) and st.st_ctime >= since:
            (staging / path.relative_to(source)).unlink(missing_ok=True)
            dropped += 1
    log.info("bootstrap.changed_during_live_copy", files=dropped)
    return dropped


RESTARTED_BY_DOCKER = ("always", "unless-stopped")
"""Restart policies under which a container that ran before a daemon restart runs again after it."""
RESTART_WAIT_S = 60


def _verify(host: str, target: Path, storage_driver: str | None, inventory: Inventory, compare: bool) -> list[str]:
    """The engine runs on the target with the same storage driver and, if `compare` (a copy no one has used
    yet), holds everything the inventory had and runs again every container Docker restarts by policy.
    Returns the containers that ran before and that Docker leaves stopped after any restart (no policy)."""
    client = engine.connect(host)
    try:
        after = engine.describe(client, host)
        if os.path.realpath(after.root_dir) != str(target):
            raise Failed(
                f"Docker came back on {after.root_dir}, not {target}",
                "check for a --data-root flag in the docker unit or sysconfig and remove it",
            )
        changed_driver = storage_driver is not None and after.storage_driver != storage_driver
        if changed_driver or (after.storage_driver == "overlay2" and not after.d_type):
            raise Failed(
                f"on {target} the storage driver is {after.storage_driver} (d_type {after.d_type}), "
                f"was {storage_driver}",
                "put the target on an xfs (ftype=1) or ext4 filesystem with d_type support",
            )
        if not compare:
            return []
        lost = inventory.missing_from(take_inventory(client))
        if lost:
            raise Failed(f"after the copy the engine lacks: {', '.join(lost[:5])}", "report this as a bug")
        ran = {cid: c for cid, c in inventory.containers.items() if c["running"]}
        expected = [cid for cid, c in ran.items() if c.get("restart") in RESTARTED_BY_DOCKER]
        down = _not_running_after(client, expected)
        if down:
            raise Failed(
                f"containers that ran before the move do not run after it: {'; '.join(down[:5])}",
                "read their logs (docker logs NAME); the move is rolled back so they run on the old root",
            )
        return sorted(c["name"] for cid, c in ran.items() if cid not in expected)
    finally:
        client.close()


def _not_running_after(client, container_ids: list[str]) -> list[str]:
    """Wait for Docker to restart the containers it restarts by policy; name those that do not run, and why."""
    deadline = time.monotonic() + RESTART_WAIT_S
    while True:
        down = []
        for cid in container_ids:
            try:
                container = client.containers.get(cid)
            except docker.errors.NotFound:
                down.append(f"{cid[:12]} is gone")
                continue
            if container.status != "running":
                state = container.attrs.get("State") or {}
                why = state.get("Error") or f"exit code {state.get('ExitCode')}"
                down.append(f"{container.name} is {container.status} ({why})")
        if not down or time.monotonic() > deadline:
            return down
        time.sleep(0.5)


def _rollback(journal: Journal, service: DockerService, settings: Settings, cause: BaseException) -> NoReturn:
    """Put the old config back and Docker running on the old root; raise Failed naming the cause (also for
    Ctrl-C and SIGTERM, which then exit 1 like any failure)."""
    if isinstance(cause, SmdiagError):
        reason = cause.problem
    elif isinstance(cause, (_Interrupted, KeyboardInterrupt)):
        reason = f"interrupted ({cause or 'SIGINT'})"
    else:
        reason = f"{type(cause).__name__}: {cause}"
    old_root = journal.data.get("old_root")
    log.error("bootstrap.rolling_back", cause=reason, phase=journal.data.get("phase"))
    try:
        with _signals_blocked():  # a second Ctrl-C must not leave the rollback half done
            kept = _undo(journal, service, settings)
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


def _undo(journal: Journal, service: DockerService, settings: Settings) -> str | None:
    """Restore the config and run Docker on the old root. The copy this run made is removed (so the next
    run never re-points to a copy that failed) unless the journal says an engine ran on it before this
    run took over: then it is moved aside, and its new path returned."""
    data = journal.data
    for entry in reversed(data.get("backups", [])):
        fileops.restore(Path(entry["path"]), Path(entry["backup"]) if entry["backup"] else None)
    if _engine_root(settings.docker_host) != data.get("old_root"):
        # Stop even when it does not answer: a killed run may have left a daemon half-way through
        # stopping or starting, and a second one would not start beside it.
        with contextlib.suppress(Failed):
            service.stop(settings.docker_host)
        service.start(settings.docker_host)
    # Only now that no daemon uses them: the staging directory, and the copy this run made.
    if data.get("staging"):
        shutil.rmtree(data["staging"], ignore_errors=True)
    kept = None
    if data.get("created_target"):
        target = Path(data["target"])
        if data.get("target_in_use"):
            kept = str(_set_aside(target))
        else:
            _remove_copy(target)
    journal.clear()
    log.warning("bootstrap.rolled_back", old_root=data.get("old_root"), kept=kept)
    return kept


def _engine_root(host: str) -> str | None:
    """Where the engine runs now, or None when it does not answer."""
    from agent.service import answers

    if not answers(host):
        return None
    with contextlib.closing(engine.connect(host)) as client:
        return os.path.realpath(engine.describe(client, host).root_dir)


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
    journal.data = data
    phase = data.get("phase")
    if phase == "committed":
        journal.clear()
        return {"direction": "rolled_forward", "phase": phase}
    target, old_root = Path(data["target"]), data["old_root"]
    kind, marker = classify_target(target)
    settled = data.get("settled_at") or (marker or {}).get("time")
    copied = Inventory.from_dict(data.get("inventory") or {})
    engine_root = _engine_root(settings.docker_host)
    complete = kind == "ours" and settled is not None
    if engine_root == old_root:
        with contextlib.closing(engine.connect(settings.docker_host)) as client:
            old_used = take_inventory(client).holds_more_than(copied)
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
        kept = _undo(journal, service, settings)
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
    edits, skipped = _config_edits(settings, str(target))
    with _signals_unwind():
        try:
            _apply_edits(edits, journal)
            journal.record(phase="starting", target_in_use=target_ran)
            if _engine_root(settings.docker_host) != str(target):
                with contextlib.suppress(Failed):
                    service.stop(settings.docker_host)
                service.start(settings.docker_host)
            journal.record(phase="verifying")
            inventory = Inventory.from_dict(data.get("inventory") or {})
            stopped = _verify(
                settings.docker_host, target, data.get("storage_driver"), inventory, compare=not target_ran
            )
        except BaseException as exc:
            _rollback(journal, service, settings, cause=exc)
    journal.record(phase="committed")
    journal.clear()
    return {"skipped": skipped, "stopped_containers": stopped}


def changed_since(top: Path, stamp: float) -> bool:
    """Whether anything under `top` (not `top` itself, nor our marker) had its inode changed after `stamp`:
    an engine starting on a data-root writes into it at once, copying out of one only reads it."""
    marker = top / MARKER
    return any(st.st_ctime > stamp and path != marker for path, st in walk_filesystem(top))


def walk_filesystem(top: Path) -> Iterator[tuple[Path, os.stat_result]]:
    """Every entry below `top` with its lstat, staying on top's filesystem as the copy does (a running
    container's overlay mount inside a data-root is not part of it); nothing when `top` does not exist."""
    try:
        device = top.stat().st_dev
    except FileNotFoundError:
        return
    stack = [top]
    while stack:
        directory = stack.pop()
        with contextlib.suppress(OSError), os.scandir(directory) as entries:
            for entry in entries:
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if st.st_dev != device:
                    continue
                yield Path(entry.path), st
                if stat.S_ISDIR(st.st_mode):
                    stack.append(Path(entry.path))


def _set_aside(target: Path) -> Path:
    """Keep a data-root an engine has used, under a name no later run adopts."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    aside = target.with_name(f"{target.name}.smdiag-kept-{stamp}")
    _release_daemon_mounts(target)
    os.rename(target, aside)
    return aside


def _apply_edits(edits: list[ConfigEdit], journal: Journal | None) -> list[Path | None]:
    """Back up and atomically rewrite each file; the journal learns of each backup before the write."""
    saved = []
    for edit in edits:
        backup = fileops.backup(edit.path)
        if journal is not None:
            entry = {"path": str(edit.path), "backup": str(backup) if backup else None}
            journal.record(backups=[*journal.data.get("backups", []), entry])
        fileops.atomic_write(edit.path, edit.new_text)
        saved.append(backup)
    return saved


def _config_edits(settings: Settings, target: str) -> tuple[list[ConfigEdit], list[dict]]:
    """The config files to rewrite for `target`, and what was left alone because this host does not use it."""
    edits, skipped = [], []
    daemon_text = _read(settings.daemon_config)
    if parse_daemon_config(daemon_text, settings.daemon_config).get("data-root") != target:
        edits.append(
            ConfigEdit(settings.daemon_config, merged_daemon_config(daemon_text, target, settings.daemon_config))
        )
    sysconfig_text = _read(settings.sysconfig)
    if sysconfig_text is not None and sysconfig_without_root_flags(sysconfig_text) != sysconfig_text:
        edits.append(ConfigEdit(settings.sysconfig, sysconfig_without_root_flags(sysconfig_text)))
    dropin = settings.systemd_dir / DROPIN_NAME
    if not settings.systemd_run_dir.is_dir():
        skipped.append({"what": str(dropin), "why": "systemd does not run here, so it does not start Docker"})
    elif not settings.systemd_dir.is_dir():
        skipped.append({"what": str(dropin), "why": f"{settings.systemd_dir} does not exist"})
    elif _read(dropin) != tmpdir_dropin(f"{target}/tmp"):
        edits.append(ConfigEdit(dropin, tmpdir_dropin(f"{target}/tmp")))
    return edits, skipped


def write_local_mode_config(settings: Settings) -> tuple[str | None, list[dict]]:
    """Point the SDK's local-mode container_root at the EBS volume, in the config of the notebook user, who
    owns it; (the file written, what was skipped and why). No user home, no file: we never make a home."""
    path = settings.sagemaker_config
    home = path.parent.parent
    if not settings.ebs_mount.is_dir():
        return None, [{"what": str(path), "why": f"there is no EBS volume at {settings.ebs_mount}"}]
    if not home.is_dir():
        return None, [{"what": str(path), "why": f"the notebook user's home {home} does not exist"}]
    container_root = settings.ebs_mount / LOCAL_MODE_DIR
    try:
        new_text = local_mode_config(_read(path), str(container_root))
    except ValueError as exc:
        log.warning("bootstrap.sagemaker_config_left_alone", path=str(path), problem=str(exc))
        return None, [{"what": str(path), "why": f"it is not a SageMaker config smdiag can edit: {exc}"}]
    owner = home.stat()
    made_root = not container_root.exists()
    container_root.mkdir(exist_ok=True)
    if made_root:
        with contextlib.suppress(OSError):
            os.chown(container_root, owner.st_uid, owner.st_gid)
    if new_text is None:
        return None, []
    made_dir = not path.parent.exists()
    fileops.backup(path)
    fileops.atomic_write(path, new_text)
    for made in ([path.parent] if made_dir else []) + [path]:
        with contextlib.suppress(OSError):
            os.chown(made, owner.st_uid, owner.st_gid)
    return str(path), []


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


def classify_target(target: Path) -> tuple[str, dict | None]:
    """absent, empty, ours (a complete copy: marker), layout (a data-root without marker), mountpoint,
    or foreign (anything else, which we never overwrite)."""
    if not target.exists():
        return "absent", None
    if not target.is_dir():
        return "foreign", None
    with contextlib.suppress(OSError, json.JSONDecodeError):
        return "ours", json.loads((target / MARKER).read_text())
    if os.path.ismount(target):
        return "mountpoint", None
    entries = {entry.name for entry in os.scandir(target)}
    if not entries:
        return "empty", None
    if "image" in entries and entries & set(DRIVER_DIRS):
        return "layout", None
    return "foreign", None


def allocated_bytes(top: Path) -> int:
    """Disk space the tree takes (hard links once), staying on its filesystem like the copy does."""
    seen: set[int] = set()
    total = 0
    for _path, st in walk_filesystem(top):
        if not stat.S_ISDIR(st.st_mode) and st.st_nlink > 1:
            if st.st_ino in seen:
                continue
            seen.add(st.st_ino)
        total += st.st_blocks * 512
    return total


RSYNC_VANISHED = (23, 24)
"""rsync's exit codes for files that changed or vanished while it read them: expected of a live pass."""


def copy_tree(
    source: Path, staging: Path, total: int, progress: Callable[[int, int], None] | None, live: bool = False
) -> None:
    """rsync everything a data-root holds (owners by number, modes, xattrs, ACLs, hard links, sparse files,
    symlinks, device nodes) into `staging`; progress is the staging filesystem's growth. A `live` pass runs
    while Docker writes to the source: files that vanish under it are left to the final pass."""
    staging.mkdir(parents=True, exist_ok=True)
    base = disks.fs_usage(staging)
    argv = [*RSYNC_ARGS, f"{source}/", f"{staging}/"]
    log.info("bootstrap.copying", argv=argv, total=total)
    proc = None
    stderr_lines: list[bytes] = []
    try:
        with _signals_blocked():  # a SIGTERM now would leave an rsync we never learnt of
            proc = subprocess.Popen(
                argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=_die_with_parent
            )
        reader = threading.Thread(target=lambda: stderr_lines.extend(proc.stderr), daemon=True)
        reader.start()
        while True:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=0.25)
                break
            if progress is not None and base is not None:
                usage = disks.fs_usage(staging)
                progress(min(total, max(0, usage.used - base.used)) if usage else 0, total)
        reader.join(5)
    except BaseException:
        if proc is not None:  # interrupted: the copy must not go on writing into what the rollback removes
            proc.kill()
            proc.wait()
        raise
    if proc.returncode != 0 and not (live and proc.returncode in RSYNC_VANISHED):
        # The first complaint is the cause (the receiver's ENOSPC); later ones are its echoes (broken pipe).
        lines = b"".join(stderr_lines).decode(errors="replace").strip().splitlines()
        raise Failed(
            f"copying {source} to {staging} failed (rsync exit {proc.returncode})" + (f": {lines[0]}" if lines else ""),
            "free space on the target volume, then run again",
        )
    if progress is not None:
        progress(total, total)


def _die_with_parent() -> None:
    """In the rsync child: a SIGKILLed agent must not leave a copy running into a staging directory that
    the next run deletes."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def reclaim(old_root: Path, target: Path) -> bool:
    """Delete the old data-root's contents after a verified move; kept when anything is mounted in it."""
    mounted_inside = [point for point in disks.mounts_at_or_under(old_root) if point != str(old_root)]
    if _inside(str(target), str(old_root)) or mounted_inside:
        log.warning("bootstrap.reclaim_skipped", old_root=str(old_root))
        return False
    for entry in list(old_root.iterdir()):
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    return True


def _remove_copy(target: Path) -> None:
    (target / MARKER).unlink(missing_ok=True)  # first: whatever is left can never count as complete
    _release_daemon_mounts(target)
    shutil.rmtree(target, ignore_errors=True)


def _release_daemon_mounts(root: Path) -> None:
    """dockerd bind-mounts its data-root onto itself and leaves that mount behind when it dies; a
    directory we created and are about to replace or delete must not stay busy because of it."""
    for point in disks.mounts_at_or_under(root):
        if subprocess.run(["umount", point], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", point], capture_output=True)


def _plan_steps(
    action: str, s: Situation, edits: list[ConfigEdit], service: DockerService, live: bool, docker_host: str
) -> list[str]:
    steps = []
    copy = (
        f"copy {s.current_root} ({disks.human_bytes(s.needed_bytes)}) to {s.target} "
        f"({disks.human_bytes(s.target_free)} free) through a staging directory"
    )
    stop = f"stop Docker ({service.describe()})"
    if service.kind != "custom" and docker_host != DEFAULT_DOCKER_HOST:
        stop += f"; the engine is at {docker_host}, which this may not stop: pass --stop-cmd and --start-cmd"
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


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except FileNotFoundError:
        return None


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
