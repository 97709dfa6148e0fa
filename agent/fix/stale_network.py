"""stale_network: a `sagemaker-local` network that Compose did not make (or made with other options) stops
every local-mode call; unused, it is removed, and Compose creates its own. Chosen for network_conflict, and
tried by `doctor --fix` whenever the engine answers (doctor has no check of its own for the network)."""

from __future__ import annotations

from dataclasses import dataclass

import docker.errors

from agent.fix.local_mode import NETWORK, is_local_mode_container
from agent.fix.remedy import Action, Context, Plan, Remedy, Step

ENGINE_DEFAULT_OPTIONS = {"com.docker.network.enable_ipv4", "com.docker.network.enable_ipv6"}
"""Options newer engines list on every network they create."""


@dataclass(frozen=True)
class NetworkFacts:
    network: dict | None
    """The engine's inspection of `sagemaker-local`; None when there is none."""
    refused: bool
    """A failure's diagnosis chose this remedy: Compose itself refused the network (the evidence wins)."""
    users: list[str]
    """Containers that would lose the network: its endpoints, and stopped ones that are not local mode's."""


def network_problem(attrs: dict) -> str | None:
    """Why a `sagemaker-local` network is not one Compose made for local mode (Compose v2+ refuses such a
    network, and v1 refuses one whose driver or options differ); None when it is."""
    labels = attrs.get("Labels") or {}
    if labels.get("com.docker.compose.network") != NETWORK:
        return "it carries no label com.docker.compose.network=sagemaker-local (Compose did not make it)"
    if attrs.get("Driver") != "bridge":
        return f"its driver is {attrs.get('Driver')!r}, not bridge"
    options = sorted(set(attrs.get("Options") or {}) - ENGINE_DEFAULT_OPTIONS)
    if options:
        return f"it has driver options Compose did not set ({', '.join(options)})"
    if attrs.get("Internal") or attrs.get("EnableIPv6"):
        return "it is internal or IPv6-enabled, which Compose did not set"
    return None


class StaleNetwork(Remedy[NetworkFacts]):
    name = "stale_network"

    def gather(self, ctx: Context) -> NetworkFacts:
        refused = ctx.report is not None
        client = ctx.engine.client
        try:
            network = client.api.inspect_network(NETWORK)
        except docker.errors.NotFound:
            return NetworkFacts(None, refused, [])
        users = [c["Name"] for c in (network.get("Containers") or {}).values()]
        # A stopped container is no endpoint, yet would lose its network: it counts, unless it is one that local
        # mode left behind (SDK v2 never removes its containers, nor starts them again).
        stopped = client.containers.list(all=True, filters={"network": NETWORK})
        users += [c.name for c in stopped if c.name not in users and not is_local_mode_container(c.name, c.labels)]
        return NetworkFacts(network, refused, users)

    def plan(self, facts: NetworkFacts) -> Plan:
        plan = Plan(self.name)
        if facts.network is None:
            return plan
        why = network_problem(facts.network) or ("Compose refused it" if facts.refused else None)
        if why is None:
            return plan
        if facts.users:
            plan.actions += [
                Action("leave", name, f"container {name} uses network {NETWORK}: not touched") for name in facts.users
            ]
            plan.blocked = f"network {NETWORK} ({why}) is in use by {', '.join(facts.users)}: stop them, then run again"
            return plan
        plan.actions.append(Action("remove_network", NETWORK, f"remove network {NETWORK}: {why}"))
        return plan

    def act(self, ctx: Context, action: Action, step: Step) -> str:
        network = ctx.engine.client.networks.get(action.target)
        step.note(
            removed={"id": network.id, "labels": network.attrs.get("Labels"), "options": network.attrs.get("Options")}
        )
        network.remove()
        return f"removed network {action.target}"

    def verify(self, ctx: Context) -> tuple[bool, str]:
        try:
            network = ctx.engine.client.api.inspect_network(NETWORK)
        except docker.errors.NotFound:
            return True, f"no network {NETWORK}: local mode's Compose creates its own"
        why = network_problem(network)
        return (why is None), (why or f"network {NETWORK} is Compose's own")
