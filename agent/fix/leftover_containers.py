"""leftover_containers: SDK v2 never removes a deployed endpoint's container, so the next deploy finds the
serving port taken. A container local mode left on the port is stopped and removed (its log kept); any
other holder is named and left alone. Chosen for port_in_use, with the port the engine could not bind."""

from __future__ import annotations

import socket
from dataclasses import dataclass

from agent import container_logs
from agent.fix.local_mode import is_local_mode_container
from agent.fix.remedy import Action, Context, Plan, Remedy, Step


@dataclass(frozen=True)
class PortFacts:
    port: int
    holders: list[dict]
    """[{name, labels}] of the running containers that publish `port`."""
    own: set[str]
    """The failing call's own containers: the report's evidence, never removed."""
    port_free: bool


def port_free(port: int) -> bool:
    """Whether the serving port can be bound as the engine binds it (all interfaces), measured now."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


class LeftoverContainers(Remedy[PortFacts]):
    name = "leftover_containers"

    def gather(self, ctx: Context) -> PortFacts:
        port = ctx.arguments["port"]
        own = {c["name"] for c in (ctx.report or {}).get("containers") or []}
        running = ctx.engine.client.containers.list()
        holders = [{"name": c.name, "labels": c.labels} for c in running if _publishes(c.attrs, port)]
        return PortFacts(port, holders, own, port_free(port))

    def plan(self, facts: PortFacts) -> Plan:
        plan = Plan(self.name)
        port = facts.port
        for holder in facts.holders:
            name = holder["name"]
            if name in facts.own:
                plan.actions.append(Action("leave", name, f"container {name} is the failing call's own: not touched"))
            elif is_local_mode_container(name, holder["labels"]):
                said = f"stop and remove {name}: a local-mode container left on port {port}"
                plan.actions.append(Action("remove_container", name, said))
            else:
                said = f"container {name} holds port {port} but was not made by local mode: not touched"
                plan.actions.append(Action("leave", name, said))
        if not any(a.changes for a in plan.actions) and not facts.port_free:
            holders_text = ", ".join(h["name"] for h in facts.holders) or "a process outside Docker"
            plan.blocked = f"port {port} is held by {holders_text}, which smdiag cannot prove is local mode's"
        return plan

    def act(self, ctx: Context, action: Action, step: Step) -> str:
        container = ctx.engine.client.containers.get(action.target)
        step.note(removed={"id": container.id, "image": container.attrs.get("Config", {}).get("Image")})
        logs = container_logs.save(container, ctx.settings.state.fix / "logs" / f"{container.name}.log")
        container.stop(timeout=10)
        container.remove()
        return f"removed container {action.target} (its log kept in {logs})"

    def verify(self, ctx: Context) -> tuple[bool, str]:
        port = ctx.arguments["port"]
        return (True, f"port {port} is free") if port_free(port) else (False, f"port {port} is still taken")


def _publishes(attrs: dict, port: int) -> bool:
    bindings = (attrs.get("HostConfig") or {}).get("PortBindings") or {}
    return any(str(b.get("HostPort")) == str(port) for spec in bindings.values() for b in spec or [])
