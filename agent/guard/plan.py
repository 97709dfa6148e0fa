"""diskguard's policy and its plan, pure: what the user's options allow, and in which order to remove what.

`plan_pruning` is given the engine's images, containers and build cache, the policy and the time; it orders
what may be removed (dangling images, old stopped containers, build cache, then images least recently used
first, children before parents) and says why everything else is kept. Nothing here asks the engine or the
disk: agent.diskguard gathers the facts and walks the plan, agent.guard.prune removes one step of it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from agent.errors import BadInput

DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


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


def simulate(plan: Plan, bytes_needed: int) -> list[Step]:
    """The prefix of the plan that frees `bytes_needed` by its estimates (for --dry-run). Pure."""
    chosen, freed = [], 0
    for step in plan.steps:
        if freed >= bytes_needed:
            break
        chosen.append(step)
        freed += step.bytes
    return chosen
