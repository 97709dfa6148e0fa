"""`smdiag diskguard`: keep the filesystem under Docker's data-root below a threshold.

On a SageMaker Studio space the data-root is the host's and not visible: there the watched quantity is the
engine's own accounting (`system df`: images, containers, volumes, build cache) against a budget, the size
of the space's EBS volume (`~`), and pruning goes through the proxy by the same plan (`Target`).

Gather → pure plan → act: `gather` reads the engine's images, containers and build cache; the policy and
the plan (agent.guard.plan) order what may go; `enforce` walks that order, one step at a time through
agent.guard.prune, and stops as soon as the disk is back under the low watermark. The guard that runs this
on the engine's events is agent.guard.daemon, what persists between runs agent.guard.state, the reading of
the engine's on-disk image store agent.guard.image_store.
"""

from __future__ import annotations

import calendar
import contextlib
import errno
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import docker.errors

from agent import disks, fileops, platform
from agent.engine import Engine, docker_time
from agent.errors import BadInput, Failed
from agent.guard import image_store, prune, registry
from agent.guard.plan import Container, Image, Kept, Policy, Step, Usage, plan_pruning, simulate
from agent.guard.plan import parse_duration as parse_duration  # re-exported: the CLI and fix import it from here
from agent.guard.state import GuardFiles, UseRecord, last_check, remember_check
from agent.host import studio
from agent.log import get_logger
from agent.statedir import StateDir

log = get_logger("diskguard")


# ---------------------------------------------------------------------------------------------- engine edge


def engine_usage(client, budget: int) -> Usage:
    """The engine's own accounting as a usage of `budget` bytes: used is what `system df` counts (images,
    containers' writable layers, volumes, build cache), available what is left of the budget."""
    used = studio.engine_bytes(studio.disk_usage(client.df()))
    return Usage(used=used, avail=max(0, budget - used))


def usage_of(path: Path) -> Usage:
    """The filesystem's usage as `disks.fs_usage` measures it; OSError naming why when `path` is not visible."""
    usage = disks.fs_usage(path)
    if usage is None:
        os.stat(path)  # raises why: missing, or a directory above it we may not enter
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(path))
    return Usage(used=usage.used, avail=usage.free)


def gather(client, root_dir: str | None, record: UseRecord) -> tuple[list[Image], list[Container], int]:
    """Images, containers and reclaimable build cache bytes, as the engine reports them (`root_dir`: the
    engine's data-root where it is readable here, else None)."""
    df = client.df()
    images = []
    for summary in df.get("Images") or []:
        image_id = summary["Id"]
        tags = tuple(t for t in summary.get("RepoTags") or [] if t != "<none>:<none>")
        arrived = record.arrived.get(image_id) or _arrival_on_disk(client, image_id, root_dir, summary)
        images.append(
            Image(
                id=image_id,
                tags=tags,
                unique_bytes=max(0, summary.get("Size", 0) - max(0, summary.get("SharedSize", 0))),
                parent=summary.get("ParentId") or "",
                arrived=arrived,
                last_used=record.last_used.get(image_id),
            )
        )
    containers = []
    for summary in df.get("Containers") or []:
        running = summary.get("State") in ("running", "restarting", "paused")
        finished, failed = None, False
        if not running:
            with contextlib.suppress(Exception):
                state = client.api.inspect_container(summary["Id"])["State"]
                finished = docker_time(state.get("FinishedAt")) or docker_time(state.get("StartedAt"))
                failed = state.get("ExitCode", 0) != 0 or bool(state.get("OOMKilled"))
            if finished is None:
                finished = float(summary.get("Created") or 0)
        containers.append(
            Container(
                id=summary["Id"],
                name=(summary.get("Names") or ["/?"])[0].lstrip("/"),
                image_id=summary.get("ImageID", ""),
                running=running,
                finished=finished,
                failed=failed,
                bytes=summary.get("SizeRw") or 0,
            )
        )
    build_cache = sum(
        entry.get("Size", 0)
        for entry in df.get("BuildCache") or []
        if not entry.get("InUse") and not entry.get("Shared")
    )
    return images, containers, build_cache


def _arrival_on_disk(client, image_id: str, root_dir: str | None, summary: dict) -> float:
    """When an image never seen by `run` arrived: its last tag time, else when the engine stored its
    config (the imagedb file's mtime), else its build time."""
    with contextlib.suppress(Exception):
        tagged = docker_time(client.api.inspect_image(image_id).get("Metadata", {}).get("LastTagTime"))
        if tagged:
            return tagged
    return image_store.config_stored_at(root_dir, image_id) or float(summary.get("Created") or 0)


@dataclass
class Outcome:
    path: str
    """The filesystem watched, or ENGINE_ACCOUNTING."""
    before_pct: float
    after_pct: float
    high: float
    low: float
    removed: list[dict] = field(default_factory=list)
    kept: list[dict] = field(default_factory=list)
    dry_run: bool = False
    held_by: dict[str, int] = field(default_factory=dict)
    """When still over the high watermark: what holds the space, in bytes."""
    measured: str = ""
    """What the percentages are of (`Target.basis`)."""

    def to_dict(self) -> dict:
        return asdict(self)


def enforce(
    client,
    target: Target,
    policy: Policy,
    record: UseRecord,
    state: StateDir,
    dry_run: bool = False,
    room_bytes: int | None = None,
) -> Outcome:
    """Apply the policy once: when over high (or when `room_bytes` more must be free), remove in plan
    order until at most low (or until the room is there). Never more than needed."""
    usage = target.usage(client)
    outcome = Outcome(
        target.label,
        round(usage.percent, 2),
        round(usage.percent, 2),
        policy.high,
        policy.low,
        dry_run=dry_run,
        measured=target.basis,
    )
    if room_bytes is None and usage.percent <= policy.high:
        return outcome

    def enough(current: Usage) -> bool:
        if room_bytes is not None:
            return current.avail >= room_bytes
        return current.percent <= policy.low

    def needed(current: Usage) -> int:
        return max(0, room_bytes - current.avail) if room_bytes is not None else current.bytes_over(policy.low)

    images, containers, build_cache = gather(client, target.root_dir, record)
    plan = plan_pruning(images, containers, build_cache, policy, time.time())
    outcome.kept = [asdict(k) for k in plan.kept]
    if dry_run:
        chosen = simulate(plan, needed(usage))
        freed = sum(step.bytes for step in chosen)
        forecast = Usage(used=max(0, usage.used - freed), avail=usage.avail + freed)
        outcome.removed = [_removed(step, step.bytes) for step in chosen]
        outcome.after_pct = round(forecast.percent, 2)
        if not enough(forecast):
            outcome.held_by = _holders(client, target, forecast, chosen)
        return outcome
    for step in plan.steps:
        if enough(usage):
            break
        kept_because = prune.remove(client, step, state, target.root_dir)
        if kept_because is None:
            after = target.usage(client)
            outcome.removed.append(_removed(step, max(0, usage.used - after.used)))
            usage = after
            log.info("diskguard.removed", kind=step.kind, id=step.id, names=list(step.names), reason=step.reason)
        else:
            outcome.kept.append(asdict(Kept(step.kind, step.id, step.names, kept_because)))
    record.forget(r["id"] for r in outcome.removed if r["kind"] == "image")
    record.save()
    outcome.after_pct = round(usage.percent, 2)
    if not enough(usage):
        outcome.held_by = _holders(client, target, usage)
    return outcome


def _removed(step: Step, freed: int) -> dict:
    return {**asdict(step), "bytes": freed}


def _holders(client, target: Target, usage: Usage, removing: list[Step] | None = None) -> dict[str, int]:
    """What still holds the space when pruning could not get under the watermark (`removing`: what a
    dry run counts as gone already). Measuring the engine's accounting, nothing is outside it."""

    def gone(kind: str) -> int:
        return sum(step.bytes for step in removing or [] if step.kind == kind)

    df = client.df()
    totals = studio.disk_usage(df)
    images = sum(i.get("Size", 0) - max(0, i.get("SharedSize", 0)) for i in df.get("Images") or []) - gone("image")
    shared = max((max(0, i.get("SharedSize", 0)) for i in df.get("Images") or []), default=0)
    containers = totals["containers_bytes"] - gone("container")
    volumes = totals["volumes_bytes"]
    build_cache = totals["build_cache_bytes"] - gone("build_cache")
    docker_total = images + shared + containers + volumes + build_cache
    held = {"images_kept": images + shared, "containers": containers, "volumes": volumes, "build_cache": build_cache}
    if target.path is not None:
        held["outside_docker"] = max(0, usage.used - docker_total)
    return held


def format_outcome(outcome: Outcome) -> str:
    verb = "would remove" if outcome.dry_run else "removed"
    lines = [
        f"diskguard: {outcome.path} {outcome.before_pct:.1f}% -> {outcome.after_pct:.1f}%"
        f"{' (forecast of a real run)' if outcome.dry_run else ''} (high {outcome.high:g}%, low {outcome.low:g}%)",
        f"  measured: {outcome.measured}",
    ]
    if outcome.before_pct <= outcome.high and not outcome.removed:
        lines[0] += ": under the high watermark, nothing to do"
    for item in outcome.removed:
        name = ", ".join(item["names"]) or item["id"][:19]
        lines.append(f"  {verb} {item['kind']} {name}: {disks.human_bytes(item['bytes'])} ({item['reason']})")
    for item in outcome.kept:
        name = ", ".join(item["names"]) or item["id"][:19]
        lines.append(f"  kept {item['kind']} {name}: {item['reason']}")
    if outcome.held_by:
        held = ", ".join(f"{k.replace('_', ' ')} {disks.human_bytes(v)}" for k, v in outcome.held_by.items() if v)
        lines.append(f"  still over the watermark; the space is held by: {held}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- commands


ENGINE_ACCOUNTING = "the engine's accounting"


@dataclass(frozen=True)
class Target:
    """What diskguard measures and prunes for: the filesystem at `path` (the data-root's, or `--path`), or
    where the data-root is the host's and not visible (a Studio space), the engine's own accounting against
    `budget` bytes: the size of the space's EBS volume (its home), the one size the user chose for the space."""

    path: Path | None
    root_dir: str | None
    """The engine's data-root where it is readable here (image_store reads it); None on Studio."""
    budget: int | None = None
    budget_of: Path | None = None
    engine_host: str | None = None
    engine_full: dict | None = None
    """The failure report in which the engine said "no space left on device" since the last check: then
    the budget is what the engine holds now (the host's disk is full, whatever the budget said)."""

    @property
    def label(self) -> str:
        return str(self.path) if self.path is not None else ENGINE_ACCOUNTING

    @property
    def basis(self) -> str:
        """What the percentages are of, in words a user checks them by."""
        if self.path is not None:
            return f"used space of the filesystem holding {self.path}, as df counts it"
        accounting = (
            f"the engine's own accounting (docker system df through {self.engine_host}: images, containers, "
            f"volumes, build cache; its data-root is the host's, not visible here)"
        )
        if self.engine_full:
            return (
                f"{accounting} against what it held when it reported no space left on device (failure report "
                f"{self.engine_full['id']}: {self.engine_full['summary']})"
            )
        return (
            f"{accounting} against a budget of {disks.human_bytes(self.budget or 0)}, the size of the space's "
            f"EBS volume {self.budget_of}"
        )

    def usage(self, client) -> Usage:
        return usage_of(self.path) if self.path is not None else engine_usage(client, self.budget or 0)


def resolve_target(settings, engine: Engine, path: Path | None) -> Target:
    """`--path`, else on Studio the engine's accounting against the home volume's size, else the
    filesystem holding the engine's DockerRootDir."""
    check_path(path)
    if platform.detect(settings).kind == platform.STUDIO:
        if path is not None:
            return Target(path, None)
        home = Path.home()
        usage = disks.fs_usage(home)
        if usage is None:
            raise Failed(f"the space's home {home} is not there to size the engine's budget by", "set HOME")
        budget = usage.used + usage.free
        full = engine_reported_full(settings.state, (last_check(settings.state) or {}).get("time", 0))
        if full:
            budget = engine_usage(engine.client, 0).used
        return Target(None, None, budget, home, engine.host, full)
    root_dir = engine.describe().root_dir
    return Target(Path(root_dir) if path is None else path, root_dir)


def engine_reported_full(state: StateDir, since: float) -> dict | None:
    """The newest failure report written after `since` that names the engine's disk full (category
    disk_full: the engine's own ENOSPC, in a pull or a container it could not create), as {id, time,
    summary}; None when there is none. Report directories are named by time, so older ones are not read."""
    directory = state.failures
    for entry in sorted(directory.iterdir(), reverse=True) if directory.is_dir() else []:
        try:
            written = calendar.timegm(time.strptime(entry.name[:16], "%Y%m%dT%H%M%SZ"))
        except ValueError:
            continue
        if written < int(since):
            return None
        with contextlib.suppress(OSError, ValueError):
            report = json.loads((entry / "report.json").read_text())
            if report.get("category") == "disk_full" and float(report.get("time_epoch") or written) > since:
                return {"id": entry.name, "time": report.get("time"), "summary": report.get("summary")}
    return None


def check_path(path: Path | None) -> None:
    """A `--path` that does not exist is bad input, found before the engine is asked anything."""
    if path is not None and not path.exists():
        raise BadInput(f"--path {path} does not exist", "give a directory on the filesystem to watch")


def run_once(settings, engine: Engine, policy: Policy, path: Path | None, dry_run: bool) -> Outcome:
    check_path(path)
    target = resolve_target(settings, engine, path)
    record = UseRecord(settings.state).load()
    with fileops.exclusive_lock(GuardFiles(settings.state).prune_lock):
        outcome = enforce(engine.client, target, policy, record, settings.state, dry_run)
    if not dry_run:
        remember_check(settings.state, outcome.to_dict())
    return outcome


def make_room(settings, engine: Engine, policy: Policy, image: str, path: Path | None) -> dict:
    """Before a pull: free the room the image needs by the same policy, or say up front that it cannot be
    made (nothing is removed then)."""
    registry.parse_reference(image)  # a bad name is bad input before anything is asked of the engine
    check_path(path)
    client = engine.client
    target = resolve_target(settings, engine, path)
    with contextlib.suppress(docker.errors.ImageNotFound):
        client.images.get(image)
        return {"image": image, "present": True, "room_needed": 0, "ok": True, "removed": [], "kept": []}
    insecure = client.info().get("RegistryConfig", {}).get("InsecureRegistryCIDRs") or []
    size = registry.image_size(image, insecure)
    result = {
        "image": image,
        "present": False,
        "compressed_bytes": size.compressed_bytes,
        "room_needed": size.room_needed,
        "free_before": target.usage(client).avail,
    }
    record = UseRecord(settings.state).load()
    with fileops.exclusive_lock(GuardFiles(settings.state).prune_lock):
        images, containers, build_cache = gather(client, target.root_dir, record)
        plan = plan_pruning(images, containers, build_cache, policy, time.time())
        reachable = result["free_before"] + sum(step.bytes for step in plan.steps)
        if reachable < size.room_needed:
            result.update(ok=False, removed=[], kept=[asdict(k) for k in plan.kept], free_after=result["free_before"])
            result["problem"] = (
                f"{image} needs about {disks.human_bytes(size.room_needed)} free; at most "
                f"{disks.human_bytes(reachable)} can be made without removing what the policy keeps"
            )
            return result
        outcome = enforce(client, target, policy, record, settings.state, room_bytes=size.room_needed)
    free_after = target.usage(client).avail
    result.update(ok=free_after >= size.room_needed, removed=outcome.removed, kept=outcome.kept, free_after=free_after)
    return result


def format_make_room(result: dict) -> str:
    if result["present"]:
        return f"make-room: {result['image']} is already here; no room needed"
    lines = [
        f"make-room: {result['image']}: {disks.human_bytes(result['compressed_bytes'])} to download, needs about "
        f"{disks.human_bytes(result['room_needed'])} free; free {disks.human_bytes(result['free_before'])} -> "
        f"{disks.human_bytes(result['free_after'])}"
    ]
    lines += [
        f"  removed {r['kind']} {', '.join(r['names']) or r['id'][:19]}: {r['reason']}" for r in result["removed"]
    ]
    if not result["ok"]:
        lines.append(f"  not enough: {result.get('problem', 'the policy keeps the rest')}")
