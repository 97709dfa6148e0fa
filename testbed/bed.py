"""The real test bed as the tests and the benches use it: one namespace (`from testbed import bed`, then
`bed.Dockerd`, `bed.wait_for`) over its parts:

- testbed.machine: what the bed needs of this machine (root, the tools) and the helpers every part uses;
- testbed.engine: private dockerd engines on loop-mounted ext4 disks, a memory-limited cgroup;
- testbed.images: a local registry, busybox images, a model tarball;
- testbed.python_envs: the SDKs' and the users' Python environments, built once per machine;
- testbed.aws: moto over HTTP, and the environment of a user with no AWS setup;
- testbed.notebook: a notebook-like host for bootstrap.

Everything here starts real processes and mounts real filesystems (see ../shared/TESTBED.md), and
everything it starts it stops by pid and unmounts, even after a failed test.
"""

from testbed.aws import MotoProxy, hermetic_environment, moto_server
from testbed.engine import (
    AddressPool,
    Dockerd,
    LoopDisk,
    MemoryLimitedCgroup,
    bed_answers,
    engine_on_disk,
    kill_processes_using,
    mounts_under,
)
from testbed.images import BROKEN_TRAIN_SCRIPT, ImageFactory, Registry, model_tarball
from testbed.machine import (
    BedUnavailable,
    check_prerequisites,
    die_with_parent,
    free_port,
    host_port_turn,
    listens,
    run,
    short_tempdir,
    wait_for,
)
from testbed.notebook import NotebookHost
from testbed.python_envs import (
    SDK_BUILD_TIMEOUT_S,
    SDK_V3_REQUIREMENT,
    cached_packages_dir,
    cached_sdk_venv,
    host_packages_venv,
    packages_venv,
    site_packages_of,
)

__all__ = [
    "AddressPool",
    "BROKEN_TRAIN_SCRIPT",
    "SDK_BUILD_TIMEOUT_S",
    "SDK_V3_REQUIREMENT",
    "BedUnavailable",
    "Dockerd",
    "ImageFactory",
    "LoopDisk",
    "MemoryLimitedCgroup",
    "MotoProxy",
    "NotebookHost",
    "Registry",
    "bed_answers",
    "cached_packages_dir",
    "cached_sdk_venv",
    "check_prerequisites",
    "die_with_parent",
    "engine_on_disk",
    "free_port",
    "hermetic_environment",
    "host_port_turn",
    "host_packages_venv",
    "kill_processes_using",
    "listens",
    "model_tarball",
    "moto_server",
    "mounts_under",
    "packages_venv",
    "run",
    "short_tempdir",
    "site_packages_of",
    "wait_for",
]
