"""free_disk: Docker's data-root ran out of room (a pull, a container's layer); free the room the call's
images need and prune least recently used images down to diskguard's low mark, by diskguard's policy (an
image used more recently than --min-age is kept). Chosen for disk_full on the data-root."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import docker.errors

from agent import diskguard, disks
from agent.fix.remedy import Action, Context, Plan, Remedy, Step
from agent.guard import registry


@dataclass(frozen=True)
class DiskFacts:
    images: list[str]
    """The images the failed call needed."""
    low_pct: float
    """How full diskguard's policy leaves the data-root."""


class FreeDisk(Remedy[DiskFacts]):
    name = "free_disk"

    def gather(self, ctx: Context) -> DiskFacts:
        return DiskFacts(_call_images(ctx.report), ctx.settings.low_pct)

    def plan(self, facts: DiskFacts) -> Plan:
        plan = Plan(self.name)
        for image in facts.images:
            plan.actions.append(Action("free_disk", image, f"free the room {image} needs (diskguard make-room)"))
        plan.actions.append(
            Action("free_disk", "", f"prune least recently used images down to {facts.low_pct:g}% (diskguard policy)")
        )
        return plan

    def act(self, ctx: Context, action: Action, step: Step) -> str:
        settings, engine, policy = ctx.settings, ctx.engine, _policy(ctx)
        if action.target:
            result = diskguard.make_room(settings, engine, policy, action.target, None)
            freed = max(0, result.get("free_after", 0) - result.get("free_before", 0))
            step.note(removed=[r["id"] for r in result["removed"]])
            if result["present"]:
                return f"{action.target} is already here"
            return f"freed {disks.human_bytes(freed)} for {action.target}" + (
                "" if result["ok"] else f": {result['problem']}"
            )
        outcome = diskguard.run_once(settings, engine, policy, None, False)
        step.note(removed=[r["id"] for r in outcome.removed])
        freed = sum(r["bytes"] for r in outcome.removed)
        return f"freed {disks.human_bytes(freed)}: {outcome.before_pct:.0f}% -> {outcome.after_pct:.0f}% used"

    def verify(self, ctx: Context) -> tuple[bool, str]:
        client, high_pct = ctx.engine.client, ctx.settings.high_pct
        root = ctx.engine.describe().root_dir
        usage = diskguard.usage_of(Path(root))
        missing = []
        for image in _call_images(ctx.report):
            with contextlib.suppress(docker.errors.ImageNotFound):
                client.images.get(image)
                continue
            insecure = client.info().get("RegistryConfig", {}).get("InsecureRegistryCIDRs") or []
            try:
                needed = registry.image_size(image, insecure).room_needed
            except Exception:  # noqa: BLE001 - an image we cannot size is not our verdict's business
                continue
            if usage.avail < needed:
                missing.append(image)
        if missing:
            return False, f"still not enough room for {', '.join(missing)}"
        if usage.percent > high_pct:
            return False, f"{root} is still {usage.percent:.0f}% full (above {high_pct:g}%)"
        return True, f"{root} is {usage.percent:.0f}% full, with room for the call's images"


def _call_images(report: dict | None) -> list[str]:
    return [i for i in ((report or {}).get("call") or {}).get("images") or [] if i]


def _policy(ctx: Context) -> diskguard.Policy:
    settings = ctx.settings
    return diskguard.Policy.build(settings.high_pct, settings.low_pct, [], ctx.options.min_age, "24h")
