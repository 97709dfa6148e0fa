"""`smdiag diskguard`: keep the filesystem under Docker's data-root below a threshold.

On a SageMaker Studio space the data-root is the host's and not visible: there the watched quantity is the
engine's own accounting (`system df`: images, containers, volumes, build cache) against a budget, the size
of the space's EBS volume (`~`), and pruning goes through the proxy by the same plan (`Target`).

`plan_pruning` is pure: given the engine's images, containers and build cache, the policy and the time,
it orders what may be removed (dangling images, old stopped containers, build cache, then images least
recently used first, children before parents) and says why everything else is kept. `enforce` walks that
order against the real engine and stops as soon as the disk is back under the low watermark. We never
force, so the engine refuses an image a registered container uses; a container still being created (its
image looked up and its layers taken, not yet registered) does not stop the engine, so before each image
removal we look for its writable layer in the layer store (and keep the image), and after it whether the
image's layers are still held (and put the image back from its config).

The guard that runs this on the engine's events lives in `guard`, what persists between runs in
`guard_state`, the reading of the engine's on-disk image store in `image_store`. What stays (≈600 lines)
is the policy, the plan and the pruning that walks it, kept in one file as the user's design names it:
the plan's order and the pruning's stopping rule are read together.
"""

from __future__ import annotations

import calendar
import contextlib
import errno
import json
import os
import re
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import docker.errors
import requests

from agent import disks, fileops
from agent.engine import Engine, docker_time
from agent.errors import BadInput, Failed
from agent.guard import image_store, registry
from agent.guard.state import GuardFiles, UseRecord, last_check, remember_check
from agent.imageref import split_image_ref
from agent.log import get_logger
from agent.statedir import StateDir

log = get_logger("diskguard")
SETTLE_RETRY_S = 120
"""How long pruning keeps asking a busy engine whether a removed image must be put back: giving up early
would leave a container being created without its image."""

DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


# ---------------------------------------------------------------------------------------------- input


def parse_duration(text: str, option: str) -> float:
    match = DURATION.match(text)
    if not match:
        raise BadInput(f"{option} {text!r} is not a duration", "write it like 90s, 10m, 24h or 2d")
    return float(match.group(1)) * UNITS[match.group(2)]


@dataclass(frozen=True)
class Policy:
    high: float
    low: float
    keep: tuple[re.Pattern, ...] = ()
    min_age_s: float = 600
    container_max_age_s: float = 86400

    @classmethod
    def build(cls, high: float, low: float, keep: Iterable[str], min_age: str, container_max_age: str) -> Policy:
        """Validate the user's options (BadInput, nothing removed) into a policy."""
        for label, pct in (("--high", high), ("--low", low)):
            if not 1 <= pct <= 99:
                raise BadInput(f"{label} {pct:g} is outside 1..99", "give a percent between 1 and 99")
        if low >= high:
            raise BadInput(f"--low {low:g} is not below --high {high:g}", "choose a low percent below the high one")
        patterns = []
        for pattern in keep:
            try:
                patterns.append(re.compile(pattern))
            except re.error as exc:
                raise BadInput(
                    f"--keep {pattern!r} is not a valid regular expression: {exc}", "fix the pattern"
                ) from None
        return cls(
            high=high,
            low=low,
            keep=tuple(patterns),
            min_age_s=parse_duration(min_age, "--min-age"),
            container_max_age_s=parse_duration(container_max_age, "--container-max-age"),
        )


# ---------------------------------------------------------------------------------------------- pure plan


@dataclass(frozen=True)
class Image:
    id: str
    tags: tuple[str, ...]
    unique_bytes: int
    """What removing it alone frees (its size minus layers it shares)."""
    parent: str
    arrived: float
    """When it was pulled, tagged or built here."""
    last_used: float | None
    """When a container was last created or started from it, as seen by `run`."""


@dataclass(frozen=True)
class Container:
    id: str
    name: str
    image_id: str
    running: bool
    finished: float | None
    failed: bool
    """Exited non-zero or was OOM-killed: the newest such one is kept for diagnostics."""
    bytes: int


@dataclass(frozen=True)
class Step:
    kind: str
    """image, container or build_cache."""
    id: str
    names: tuple[str, ...]
    bytes: int
    last_used: float | None
    reason: str


@dataclass(frozen=True)
class Kept:
    kind: str
    id: str
    names: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class Plan:
    steps: tuple[Step, ...]
    kept: tuple[Kept, ...]


def plan_pruning(
    images: list[Image], containers: list[Container], build_cache_bytes: int, policy: Policy, now: float
) -> Plan:
    """Everything removable, in the order to remove it; and what is kept, with why. Pure."""
    steps: list[Step] = []
    kept: list[Kept] = []
    by_id = {image.id: image for image in images}
    children: dict[str, list[str]] = {}
    for image in images:
        if image.parent in by_id:
            children.setdefault(image.parent, []).append(image.id)

    stopped = [c for c in containers if not c.running]
    newest_failed = max((c for c in stopped if c.failed), key=lambda c: c.finished or 0, default=None)
    removed_containers = set()
    for container in sorted(stopped, key=lambda c: c.finished or 0):
        if container is newest_failed:
            kept.append(Kept("container", container.id, (container.name,), "the newest failed container"))
        elif container.finished is not None and now - container.finished >= policy.container_max_age_s:
            removed_containers.add(container.id)
        else:
            kept.append(Kept("container", container.id, (container.name,), "stopped less than --container-max-age ago"))
    container_steps = [
        Step("container", c.id, (c.name,), c.bytes, c.finished, "stopped longer than --container-max-age")
        for c in sorted(stopped, key=lambda c: c.finished or 0)
        if c.id in removed_containers
    ]

    users: dict[str, list[Container]] = {}
    for container in containers:
        if container.id not in removed_containers:
            users.setdefault(container.image_id, []).append(container)

    def why_kept(image: Image) -> str | None:
        running = [c.name for c in users.get(image.id, []) if c.running]
        if running:
            return f"used by running container {running[0]}"
        if users.get(image.id):
            return f"used by stopped container {users[image.id][0].name}"
        for pattern in policy.keep:
            if any(pattern.search(tag) for tag in image.tags):
                return f"matches --keep {pattern.pattern}"
        age = now - image.arrived
        if age < policy.min_age_s:
            return f"younger than --min-age ({age:.0f}s old)"
        return None

    reasons = {image.id: why_kept(image) for image in images}
    # A parent goes only after all its children; a kept child keeps its parents.
    changed = True
    while changed:
        changed = False
        for image in images:
            if reasons[image.id] is None:
                held = [child for child in children.get(image.id, []) if reasons[child] is not None]
                if held:
                    reasons[image.id] = f"parent of kept image {_label(by_id[held[0]])}"
                    changed = True
    for image in images:
        if reasons[image.id] is not None:
            kept.append(Kept("image", image.id, image.tags, reasons[image.id]))

    removable = [image for image in images if reasons[image.id] is None]
    dangling = [image for image in removable if not image.tags and not children.get(image.id)]
    dangling_ids = {image.id for image in dangling}
    steps += [
        Step("image", i.id, i.tags, i.unique_bytes, i.last_used, "dangling")
        for i in sorted(dangling, key=lambda i: i.arrived)
    ]
    steps += container_steps
    if build_cache_bytes > 0:
        steps.append(Step("build_cache", "build-cache", (), build_cache_bytes, None, "build cache"))

    ordered: list[Step] = []
    emitted: set[str] = set(dangling_ids)

    def emit(image: Image) -> None:
        for child_id in sorted(children.get(image.id, []), key=lambda c: _recency(by_id[c])):
            if child_id not in emitted:
                emit(by_id[child_id])
        emitted.add(image.id)
        reason = "least recently used" if image.last_used is not None else "least recently pulled, never seen in use"
        ordered.append(Step("image", image.id, image.tags, image.unique_bytes, _recency(image), reason))

    for image in sorted(removable, key=_recency):
        if image.id not in emitted:
            emit(image)
    return Plan(tuple(steps + ordered), tuple(kept))


def _recency(image: Image) -> float:
    return max(image.last_used or 0, image.arrived)


def _label(image: Image) -> str:
    return image.tags[0] if image.tags else image.id[7:19]


@dataclass(frozen=True)
class Usage:
    used: int
    avail: int

    @property
    def percent(self) -> float:
        """As df shows it: blocks reserved for root count as neither used nor available."""
        return 100.0 * self.used / (self.used + self.avail) if self.used + self.avail else 0.0

    def bytes_over(self, pct: float) -> int:
        """How many bytes must go for usage to be at most `pct`. Pure."""
        return max(0, int(self.used - pct / 100.0 * (self.used + self.avail)) + 1)


def engine_usage(client, budget: int) -> Usage:
    """The engine's own accounting as a usage of `budget` bytes: used is what `system df` counts (images,
    containers' writable layers, volumes, build cache), available what is left of the budget."""
    from agent.host import studio

    used = studio.engine_bytes(studio.disk_usage(client.df()))
    return Usage(used=used, avail=max(0, budget - used))


def usage_of(path: Path) -> Usage:
    """The filesystem's usage as `disks.fs_usage` measures it; OSError naming why when `path` is not visible."""
    usage = disks.fs_usage(path)
    if usage is None:
        os.stat(path)  # raises why: missing, or a directory above it we may not enter
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(path))
    return Usage(used=usage.used, avail=usage.free)


def simulate(plan: Plan, bytes_needed: int) -> list[Step]:
    """The prefix of the plan that frees `bytes_needed` by its estimates (for --dry-run). Pure."""
    chosen, freed = [], 0
    for step in plan.steps:
        if freed >= bytes_needed:
            break
        chosen.append(step)
        freed += step.bytes
    return chosen


# ---------------------------------------------------------------------------------------------- engine edge


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
        kept_because = _remove(client, step, state, target.root_dir)
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


def _remove(client, step: Step, state: StateDir, root_dir: str | None) -> str | None:
    """Remove one thing, never forcing: None when it went, else why it stays (the engine refused because a
    container started meanwhile, or the image had to be put back)."""
    try:
        if step.kind == "container":
            container = client.containers.get(step.id)
            _save_logs(container, state.root)
            container.remove()
        elif step.kind == "build_cache":
            client.api.prune_builds()
        else:
            with _patient(client):
                return _remove_image(client, step, root_dir)
    except docker.errors.NotFound:
        return "the engine refused: in use"
    except docker.errors.APIError as exc:
        log.info("diskguard.refused", id=step.id, names=list(step.names), error=str(exc.explanation or exc))
        return "the engine refused: in use"
    return None


@contextlib.contextmanager
def _patient(client):
    """The engine finishes a delete (or a load) it has begun whatever the client does: a client that gives
    up after its usual few seconds no longer knows whether the image went, and so cannot put it back. While
    an image is removed and settled, the client waits as long as settling may take."""
    usual = client.api.timeout
    client.api.timeout = max(usual, SETTLE_RETRY_S)
    try:
        yield
    finally:
        client.api.timeout = usual


def _remove_image(client, step: Step, root_dir: str | None) -> str | None:
    """Untag every name, the last untag deletes; if the engine refuses midway, put the names back.

    The engine checks only registered containers: one being created from the image (looked up, layers
    taken, not yet registered) neither shows in its check nor stops the delete, and would then run from an
    image that no longer exists. So, just before the deleting call, the layer store is asked whether a
    container's writable layer already sits on the image (then it stays, names put back); a create that
    takes the layers after that look still holds them after the delete, and the image is put back from its
    config (same id, same names). Where the data-root is not visible (Studio) neither look can be made: the
    engine's own refusal is all there is."""
    if client.api.containers(all=True, filters={"ancestor": step.id}):
        raise docker.errors.APIError(f"a container uses {step.id}")
    saved = image_store.SavedImage.read(root_dir, step.id)
    names = list(step.names) or [step.id]  # by id when nameless: that call deletes too
    untagged = []
    try:
        for position, name in enumerate(names, start=1):
            if position == len(names) and saved is not None and saved.under_a_container():
                _retag(client, step.id, untagged)
                log.info("diskguard.kept_for_a_create", id=step.id, names=list(step.names))
                return "a container is being created from it"
            client.images.remove(name)
            if step.names:
                untagged.append(name)
    except docker.errors.APIError:
        _retag(client, step.id, untagged)
        raise
    deadline = time.monotonic() + SETTLE_RETRY_S
    while True:
        try:
            return _settle_removal(client, step, saved, untagged)
        except requests.RequestException as exc:  # a busy engine's timeout: not a DockerException
            if time.monotonic() > deadline:
                log.error("diskguard.put_back_unknown", id=step.id, names=list(step.names), error=str(exc))
                raise
            log.warning("diskguard.engine_slow_after_removal", id=step.id, error=str(exc))
            time.sleep(1)


def _settle_removal(client, step: Step, saved: image_store.SavedImage | None, untagged: list[str]) -> str | None:
    """After the delete: names back if the engine kept the image, the image back if a container being
    created still holds its layers. Every step is safe to repeat, so a timeout retries the whole."""
    if image_store.image_present(client, step.id):
        # The last untag left it: a container registered between the engine's two checks, or a new name.
        _retag(client, step.id, untagged)
        return "the engine kept it after the untag (in use, or named anew meanwhile): names put back"
    if saved is not None and saved.layers_held():
        try:
            saved.load(client)
            _retag(client, step.id, step.names)
        except docker.errors.DockerException as exc:
            log.warning("diskguard.put_back_failed", id=step.id, names=list(step.names), error=str(exc))
            return None
        log.warning("diskguard.put_back", id=step.id, names=list(step.names))
        return "put back: its layers were still held after removal (by a container being created, a pull or an image)"
    return None


def _retag(client, image_id: str, names: Iterable[str]) -> None:
    """Give the names back, except one that meanwhile names another image (a newer pull keeps it)."""
    for name in names:
        if image_store.image_present(client, name):
            continue
        repository, tag = split_image_ref(name)
        with contextlib.suppress(docker.errors.APIError):
            client.api.tag(image_id, repository, tag)


def _save_logs(container, state_dir: Path) -> None:
    """A stopped container's logs outlive it: written under the state dir before it is removed."""
    from agent import container_logs

    name = f"{container.name}-{container.id[:12]}.log"
    container_logs.save(container, state_dir / "diskguard" / "container-logs" / name, timestamps=True)


def _holders(client, target: Target, usage: Usage, removing: list[Step] | None = None) -> dict[str, int]:
    """What still holds the space when pruning could not get under the watermark (`removing`: what a
    dry run counts as gone already). Measuring the engine's accounting, nothing is outside it."""

    def gone(kind: str) -> int:
        return sum(step.bytes for step in removing or [] if step.kind == kind)

    from agent.host import studio

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
    from agent import platform

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
    return "\n".join(lines)
