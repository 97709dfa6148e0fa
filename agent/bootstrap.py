"""`smdiag bootstrap`: move Docker's data-root onto the EBS volume, safely, and re-point it at every boot.

The decision (unchanged, repoint, migrate) and the config edits are pure functions of gathered facts.
The migration is a journaled transaction: every step that changes something is recorded first in
`<state>/bootstrap/journal.json`, so that a run killed at any point is rolled back by the next run
before it does anything else. The copy goes into a staging directory renamed to the target only when
complete, and a marker inside it records what was copied: a half-copied tree never looks complete.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

from agent import disks, engine, fileops
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

    def counts(self) -> dict[str, int]:
        return {"images": len(self.images), "containers": len(self.containers), "volumes": len(self.volumes)}

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
        }
        tail = container.logs(tail=50)  # raises when the log file is unreadable
        if not running:
            inventory.logs[container.id] = hashlib.sha256(tail).hexdigest()
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
    service = detect_service(options.stop_cmd, options.start_cmd)
    bootstrap_dir = settings.state_dir / "bootstrap"
    journal = Journal(bootstrap_dir / "journal.json")
    with fileops.exclusive_lock(bootstrap_dir / "lock"):
        recovered = None if options.dry_run else _recover(journal, service, settings)
        client = engine.connect(settings.docker_host)
        try:
            result = _bootstrap(settings, options, service, journal, client, progress)
        finally:
            client.close()
    result.update(
        seconds=round(time.monotonic() - started, 3),
        daemon_seconds=round(service.daemon_seconds, 3),
        service=service.kind,
        recovered=recovered,
    )
    log.info("bootstrap.finished", **{k: v for k, v in result.items() if k != "plan"})
    return result


def _bootstrap(settings, options, service, journal, client, progress) -> dict:
    facts = engine.describe(client, settings.docker_host)
    current_root = os.path.realpath(facts.root_dir)
    target = Path(os.path.realpath(_choose_target(settings, options.target)))
    kind, marker = classify_target(target)
    inventory = take_inventory(client)
    edits = _config_edits(settings, str(target))
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
    }
    if options.dry_run:
        result.update(action="planned", plan=_plan_steps(action, situation, edits, service, settings.docker_host))
        return result
    local_config = _write_local_mode_config(settings)
    if local_config:
        result["config_written"].append(local_config)
    if action == "unchanged":
        result["backups"] = [str(b) for b in _apply_edits(edits, journal=None) if b]
        result["config_written"] += [str(e.path) for e in edits]
        return result
    journal.data = {}
    journal.record(phase="begin", action=action, old_root=current_root, target=str(target), backups=[])
    with _signals_unwind():
        try:
            if action == "migrated":
                result["bytes_copied"] = _migrate(current_root, target, inventory, service, journal, settings, progress)
            _apply_edits(edits, journal)
            journal.record(phase="starting")
            if action == "repointed":
                service.stop(settings.docker_host)
            service.start(settings.docker_host)
            _verify(settings.docker_host, target, facts, inventory if action == "migrated" else None)
        except BaseException as exc:
            _rollback(journal, service, settings, cause=exc)
    result["backups"] = [b for b in (e["backup"] for e in journal.data["backups"]) if b]
    result["config_written"] += [str(e.path) for e in edits]
    journal.record(phase="committed")
    if options.reclaim:
        result["reclaimed"] = reclaim(Path(current_root), target)
    journal.clear()
    return result


def _migrate(current_root, target: Path, inventory, service, journal, settings, progress) -> int:
    staging = target.with_name(f".{target.name}.smdiag-partial")
    journal.record(phase="stopping", staging=str(staging))
    service.stop(settings.docker_host)
    journal.record(phase="copying")
    copied = copy_tree(Path(current_root), staging, allocated_bytes(Path(current_root)), progress)
    marker = {"source": current_root, "fingerprint": inventory.fingerprint(), "bytes": copied, "time": time.time()}
    fileops.write_json(staging / MARKER, marker, mode=0o644)
    if target.exists():
        # classify_target found it empty; a dead daemon's bind mount of it may still make it busy.
        _release_daemon_mounts(target)
        target.rmdir()
    os.rename(staging, target)
    journal.record(phase="renamed", created_target=True)
    return copied


def _verify(host: str, target: Path, before, inventory: Inventory | None) -> None:
    client = engine.connect(host)
    try:
        after = engine.describe(client, host)
        if os.path.realpath(after.root_dir) != str(target):
            raise Failed(
                f"Docker came back on {after.root_dir}, not {target}",
                "check for a --data-root flag in the docker unit or sysconfig and remove it",
            )
        if after.storage_driver != before.storage_driver or (after.storage_driver == "overlay2" and not after.d_type):
            raise Failed(
                f"on {target} the storage driver is {after.storage_driver} (d_type {after.d_type}), "
                f"was {before.storage_driver}",
                "put the target on an xfs (ftype=1) or ext4 filesystem with d_type support",
            )
        if inventory is not None:
            lost = inventory.missing_from(take_inventory(client))
            if lost:
                raise Failed(f"after the copy the engine lacks: {', '.join(lost[:5])}", "report this as a bug")
    finally:
        client.close()


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
            _undo(journal, service, settings)
    except Exception as exc:  # noqa: BLE001 - reported together with the original cause
        raise Failed(
            f"bootstrap failed ({reason}) and the rollback failed too: {exc}",
            f"restore the *.smdiag-*.bak backups next to {settings.daemon_config} and start Docker",
        ) from cause
    raise Failed(
        f"bootstrap failed and was rolled back; Docker runs on {old_root} again: {reason}",
        cause.fix if isinstance(cause, SmdiagError) and cause.fix else "see the log for details",
    ) from cause


def _undo(journal: Journal, service: DockerService, settings: Settings) -> None:
    data = journal.data
    for entry in reversed(data.get("backups", [])):
        fileops.restore(Path(entry["path"]), Path(entry["backup"]) if entry["backup"] else None)
    from agent.service import answers

    running_root = None
    if answers(settings.docker_host):
        with contextlib.closing(engine.connect(settings.docker_host)) as client:
            running_root = os.path.realpath(engine.describe(client, settings.docker_host).root_dir)
    if running_root != data.get("old_root"):
        # Stop even when it does not answer: a killed run may have left a daemon half-way through
        # stopping or starting, and a second one would not start beside it.
        with contextlib.suppress(Failed):
            service.stop(settings.docker_host)
        service.start(settings.docker_host)
    # Only now that no daemon uses them: the staging directory, and the copy this run made (a duplicate
    # of the old root, which is kept) so that the next run never re-points to a copy that failed.
    if data.get("staging"):
        shutil.rmtree(data["staging"], ignore_errors=True)
    if data.get("created_target"):
        _remove_copy(Path(data["target"]))
    journal.clear()
    log.warning("bootstrap.rolled_back", old_root=data.get("old_root"))


def _recover(journal: Journal, service: DockerService, settings: Settings) -> str | None:
    """A journal left behind means a run was killed: finish it if it had committed, else roll it back."""
    data = journal.load()
    if data is None:
        return None
    journal.data = data
    phase = data.get("phase")
    log.warning("bootstrap.recovering", phase=phase, old_root=data.get("old_root"), target=data.get("target"))
    if phase == "committed":
        journal.clear()
    else:
        _undo(journal, service, settings)
    return phase


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


def _config_edits(settings: Settings, target: str) -> list[ConfigEdit]:
    edits = []
    daemon_text = _read(settings.daemon_config)
    if parse_daemon_config(daemon_text, settings.daemon_config).get("data-root") != target:
        edits.append(
            ConfigEdit(settings.daemon_config, merged_daemon_config(daemon_text, target, settings.daemon_config))
        )
    sysconfig_text = _read(settings.sysconfig)
    if sysconfig_text is not None and sysconfig_without_root_flags(sysconfig_text) != sysconfig_text:
        edits.append(ConfigEdit(settings.sysconfig, sysconfig_without_root_flags(sysconfig_text)))
    if settings.systemd_dir.is_dir():
        dropin = settings.systemd_dir / DROPIN_NAME
        text = tmpdir_dropin(f"{target}/tmp")
        if _read(dropin) != text:
            edits.append(ConfigEdit(dropin, text))
    return edits


def _write_local_mode_config(settings: Settings) -> str | None:
    """Point the SDK's local-mode container_root at the EBS volume, owned by the volume's owner."""
    if not settings.ebs_mount.is_dir():
        return None
    path = settings.sagemaker_config
    container_root = settings.ebs_mount / LOCAL_MODE_DIR
    try:
        new_text = local_mode_config(_read(path), str(container_root))
    except ValueError as exc:
        log.warning("bootstrap.sagemaker_config_left_alone", path=str(path), problem=str(exc))
        return None
    owner = settings.ebs_mount.stat()
    container_root.mkdir(exist_ok=True)
    if new_text is None:
        return None
    fileops.backup(path)
    fileops.atomic_write(path, new_text)
    for made in (container_root, path.parent, path):
        with contextlib.suppress(OSError):
            os.chown(made, owner.st_uid, owner.st_gid)
    return str(path)


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
    device = top.stat().st_dev
    seen: set[int] = set()
    total = 0
    stack = [top]
    while stack:
        directory = stack.pop()
        with contextlib.suppress(OSError), os.scandir(directory) as entries:
            for entry in entries:
                with contextlib.suppress(OSError):
                    st = entry.stat(follow_symlinks=False)
                    if st.st_dev != device:
                        continue
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(Path(entry.path))
                    elif st.st_nlink > 1:
                        if st.st_ino in seen:
                            continue
                        seen.add(st.st_ino)
                    total += st.st_blocks * 512
    return total


def copy_tree(source: Path, staging: Path, total: int, progress: Callable[[int, int], None] | None) -> int:
    """rsync everything a data-root holds (owners by number, modes, xattrs, ACLs, hard links, sparse files,
    symlinks, device nodes) into `staging`; progress is the staging filesystem's growth."""
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
        while proc.poll() is None:
            if progress is not None and base is not None:
                usage = disks.fs_usage(staging)
                progress(min(total, max(0, usage.used - base.used)) if usage else 0, total)
            time.sleep(0.25)
        reader.join(5)
    except BaseException:
        if proc is not None:  # interrupted: the copy must not go on writing into what the rollback removes
            proc.kill()
            proc.wait()
        raise
    if proc.returncode != 0:
        # The first complaint is the cause (the receiver's ENOSPC); later ones are its echoes (broken pipe).
        lines = b"".join(stderr_lines).decode(errors="replace").strip().splitlines()
        raise Failed(
            f"copying {source} to {staging} failed (rsync exit {proc.returncode})" + (f": {lines[0]}" if lines else ""),
            "free space on the target volume, then run again",
        )
    if progress is not None:
        progress(total, total)
    return allocated_bytes(staging)


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
    action: str, s: Situation, edits: list[ConfigEdit], service: DockerService, docker_host: str
) -> list[str]:
    steps = []
    if action == "migrated":
        caveat = ""
        if service.kind != "custom" and docker_host != DEFAULT_DOCKER_HOST:
            caveat = f"; the engine is at {docker_host}, which this may not stop: pass --stop-cmd and --start-cmd"
        steps += [
            f"stop Docker ({service.describe()}){caveat}",
            f"copy {s.current_root} ({disks.human_bytes(s.needed_bytes)}) to {s.target} "
            f"({disks.human_bytes(s.target_free)} free) through a staging directory",
        ]
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
    if result.get("recovered"):
        lines.append(f"  an interrupted earlier run (at {result['recovered']}) was rolled back first")
    return "\n".join(lines)
