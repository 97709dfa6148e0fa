"""The failure catalog (agent/failures) chooses remedies by name; fix's registry runs them. Every remedy any
category can choose is registered, with the arguments its remedy reads, and every registered remedy but
doctor's own is some diagnosis's."""

from agent.failures.catalog import CATALOG
from agent.failures.types import Evidence
from agent.fix.registry import REMEDIES

DOCTOR_ONLY = {"bootstrap"}
PROBES = [
    {},
    {"disks": [{"role": "container_root", "percent": 100}]},
    {"disks": [{"role": "docker_root", "percent": 100}]},
    {"pull_errors": [{"error": "no space left on device"}]},
    {"docker": {"error": "cannot reach the Docker engine at unix:///var/run/docker.sock: Connection refused"}},
    {"compose_output": ["Bind for 0.0.0.0:18080 failed: port is already allocated"]},
]
"""Evidence, as a report holds it, under which each category's remedy (if it has one) is chosen."""


def test_every_remedy_a_category_chooses_is_registered_with_the_arguments_it_reads():
    chosen = []
    for category in CATALOG.values():
        for probe in PROBES:
            remedy = category.remedy(Evidence.from_dict({"call": {"kind": "fit"}, **probe}))
            if remedy is not None:
                chosen.append(remedy.to_dict())
    assert {c["name"] for c in chosen} | DOCTOR_ONLY == set(REMEDIES)
    assert all(isinstance(c["port"], int) for c in chosen if c["name"] == "leftover_containers")
