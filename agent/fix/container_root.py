"""container_root: the disk where SDK v2 stages local mode's files (its `local.container_root`, /tmp by
default, on the small root volume) filled up; point it at the EBS volume in the SDK's config file, backed up
first (`smdiag fix --undo` puts the old file back). Chosen for container_root_full."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from agent import config_edits, fileops
from agent.errors import Failed
from agent.fix.remedy import Action, Context, Plan, Remedy, Step


@dataclass(frozen=True)
class ConfigFacts:
    config: Path
    """The SDK's config file (~/.sagemaker/config.yaml of the notebook user)."""
    text: str | None
    """What it holds now; None when there is no such file."""
    ebs_mount: Path
    ebs_mounted: bool


class ContainerRoot(Remedy[ConfigFacts]):
    name = "container_root"

    def gather(self, ctx: Context) -> ConfigFacts:
        settings = ctx.settings
        path = settings.sagemaker_config
        text = None
        with contextlib.suppress(FileNotFoundError):
            text = path.read_text()
        return ConfigFacts(path, text, settings.ebs_mount, settings.ebs_mount.is_dir())

    def plan(self, facts: ConfigFacts) -> Plan:
        plan = Plan(self.name)
        path, target = facts.config, facts.ebs_mount / config_edits.LOCAL_MODE_DIR
        if not facts.ebs_mounted:
            plan.blocked = f"there is no EBS volume at {facts.ebs_mount} to put local mode's files on"
            return plan
        try:
            wanted = config_edits.local_mode_config(facts.text, str(target))
        except ValueError as exc:
            plan.blocked = f"{path} is not a SageMaker config smdiag can edit ({exc}): set local.container_root by hand"
            return plan
        if wanted is not None:
            plan.actions.append(
                Action("set_container_root", str(path), f"set local.container_root to {target} in {path}")
            )
        return plan

    def act(self, ctx: Context, action: Action, step: Step) -> str:
        path = Path(action.target)
        saved = fileops.backup(path)
        step.will("restore", path=str(path), backup=str(saved) if saved else None)
        written, skipped = config_edits.write_local_mode_config(ctx.settings)
        if not written:
            raise Failed(f"{path} was not written: {skipped[0]['why'] if skipped else 'unknown'}", "set it by hand")
        return f"wrote {written}"

    def verify(self, ctx: Context) -> tuple[bool, str]:
        plan = self.plan(self.gather(ctx))
        if plan.blocked or plan.actions:
            return False, plan.blocked or "local.container_root is still not on the EBS volume"
        return True, f"local mode keeps its files under {ctx.settings.ebs_mount}"
