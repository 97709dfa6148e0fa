"""The one registry of remedies, by the name a diagnosis (`report["remedy"]["name"]`) or doctor's problem
record gives. A new remedy is one module beside these and one line here."""

from __future__ import annotations

from agent.fix.bootstrap import Bootstrap
from agent.fix.compose_shim import ComposeShim
from agent.fix.container_root import ContainerRoot
from agent.fix.free_disk import FreeDisk
from agent.fix.leftover_containers import LeftoverContainers
from agent.fix.remedy import Remedy
from agent.fix.stale_network import StaleNetwork
from agent.fix.start_engine import StartEngine

REMEDIES: dict[str, Remedy] = {
    remedy.name: remedy
    for remedy in (
        ComposeShim(),
        StaleNetwork(),
        LeftoverContainers(),
        StartEngine(),
        FreeDisk(),
        ContainerRoot(),
        Bootstrap(),
    )
}
