"""bootstrap: Docker's data-root is on the small root volume; move it onto the EBS volume (`smdiag
bootstrap`, journaled by bootstrap itself). Only `doctor --fix` applies it, and only with --yes: it restarts
Docker. No failure category chooses it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from agent import bootstrap
from agent.fix.remedy import Action, Context, Plan, Remedy, Step
from agent.host.doctor import run_doctor


@dataclass(frozen=True)
class VolumeFacts:
    ebs_mount: Path


class Bootstrap(Remedy[VolumeFacts]):
    name = "bootstrap"
    needs_yes = (
        "Docker's data-root is on the root volume: `smdiag doctor --fix --yes` or "
        "`sudo smdiag bootstrap` moves it onto the EBS volume (Docker restarts)"
    )

    def gather(self, ctx: Context) -> VolumeFacts:
        return VolumeFacts(ctx.settings.ebs_mount)

    def plan(self, facts: VolumeFacts) -> Plan:
        where = facts.ebs_mount
        return Plan(
            self.name, [Action("run_bootstrap", str(where), f"move Docker's data-root onto {where} (smdiag bootstrap)")]
        )

    def act(self, ctx: Context, action: Action, step: Step) -> str:
        options = bootstrap.Options(stop_cmd=ctx.options.stop_cmd, start_cmd=ctx.options.start_cmd)
        result = bootstrap.run_bootstrap(ctx.settings, ctx.engine, options)
        return bootstrap.format_result(result).splitlines()[0]

    def verify(self, ctx: Context) -> tuple[bool, str]:
        root = run_doctor(ctx.settings, ctx.engine)["docker_root"]
        return bool(root["on_ebs_volume"]), f"Docker's data-root is {root['path']}"
