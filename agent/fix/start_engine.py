"""start_engine: the Docker engine does not answer; start it (systemd, `service docker`, or the user's
--start-cmd) and wait until it does. Chosen for daemon_down (not when the socket refused us with permission
denied: starting Docker does not help there) and for doctor's engine check."""

from __future__ import annotations

from dataclasses import dataclass

from agent.fix.remedy import Action, Context, Plan, Remedy, Step
from agent.service import DockerService, detect_service
from agent.settings import DEFAULT_DOCKER_HOST


@dataclass(frozen=True)
class EngineFacts:
    answers: bool
    how: str
    """How Docker would be started, in words."""
    elsewhere: str | None = None
    """The engine's address when it is not the system's socket and no --start-cmd says how to start it
    (starting the system's Docker would not make that engine answer)."""


class StartEngine(Remedy[EngineFacts]):
    name = "start_engine"

    def gather(self, ctx: Context) -> EngineFacts:
        start_cmd = ctx.options.start_cmd
        how = f"`{start_cmd}`" if start_cmd else _detected(ctx).describe()
        elsewhere = None if start_cmd or ctx.settings.docker_host == DEFAULT_DOCKER_HOST else ctx.settings.docker_host
        return EngineFacts(ctx.engine.answers(), how, elsewhere)

    def plan(self, facts: EngineFacts) -> Plan:
        plan = Plan(self.name)
        if not facts.answers and facts.elsewhere:
            plan.blocked = (
                f"the engine is at {facts.elsewhere} (DOCKER_HOST), not the system's Docker: "
                "start it there, or pass --start-cmd with the command that does"
            )
        elif not facts.answers:
            plan.actions.append(
                Action("start_engine", facts.how, f"start Docker ({facts.how}) and wait until it answers")
            )
        return plan

    def act(self, ctx: Context, action: Action, step: Step) -> str:
        options = ctx.options
        if options.start_cmd:
            start = ("sh", "-c", options.start_cmd)
            docker_service = DockerService("custom", ("sh", "-c", options.stop_cmd or "true"), start, ctx.engine)
        else:
            docker_service = _detected(ctx)
        docker_service.start()
        return f"Docker answers after {docker_service.daemon_seconds:.1f}s"

    def verify(self, ctx: Context) -> tuple[bool, str]:
        if ctx.engine.answers():
            return True, f"the engine answers at {ctx.engine.host}"
        return False, f"the engine does not answer at {ctx.engine.host}"


def _detected(ctx: Context) -> DockerService:
    return detect_service(None, None, ctx.settings.systemd_run_dir, ctx.engine)
