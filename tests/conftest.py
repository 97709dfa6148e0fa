"""Fixtures over the real test bed (testbed/bed.py) and a runner for the real `smdiag` CLI.

Under CI=true a bed that cannot start fails the test: a test that skips in CI does not exist.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from testbed import TESTBED, bed

pytest.register_assert_rewrite("testbed.guest_runs")  # its same-output asserts show a diff, as a test module's do

IN_CI = os.environ.get("CI") == "true"
TEST_CACHE = Path(os.environ.get("SMDIAG_TEST_CACHE", "/var/cache/smdiag-test"))
"""Kept on the machine between runs (CI runs here too): the contract engine's images, the SDK environments."""


def pytest_configure(config: pytest.Config) -> None:
    """An xdist worker dies with the run that started it (PR_SET_PDEATHSIG), so its engines die with it too
    (testbed.machine.dies_with_this_process): a worker otherwise lives on until its test ends, holding its
    engines, their address pools and the host's 8080 for up to the test's timeout after the run was killed."""
    if hasattr(config, "workerinput"):
        bed.die_with_parent(os.getppid())


def bed_unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"the test bed cannot start under CI=true: {reason}", pytrace=False)
    pytest.skip(f"test bed unavailable: {reason}")


@pytest.fixture(autouse=True)
def host_port_8080_turn(request):
    """Tests grouped on the host's port 8080 (local endpoints listen there) also take turns with any other test run
    on this machine, and start only once the port is free."""
    group = request.node.get_closest_marker("xdist_group")
    if group is None or group.args[:1] != ("host-port-8080",):
        yield
        return
    try:
        with bed.host_port_turn(8080, TEST_CACHE):
            yield  # the test's own failures are not raised here: only taking the turn can raise
    except bed.BedUnavailable as exc:
        bed_unavailable(str(exc))


@pytest.fixture(scope="session")
def bed_ready() -> None:
    try:
        bed.check_prerequisites()
    except bed.BedUnavailable as exc:
        bed_unavailable(str(exc))


@pytest.fixture(scope="session")
def sdk_v3_site() -> str:
    """The site-packages of a virtual environment with SageMaker SDK v3, built the first time a run on this
    machine needs it (a few minutes) and reused by every later run."""
    return bed.site_packages_of(bed.cached_sdk_venv(TEST_CACHE, bed.SDK_V3_REQUIREMENT))


@pytest.fixture
def make_engine(tmp_path: Path, bed_ready):
    """make_engine(size_mb=..., config=...) -> (Dockerd, LoopDisk): a private engine on its own disk."""
    stack = contextlib.ExitStack()
    count = 0

    def make(size_mb: int = 1024, config: dict | None = None):
        nonlocal count
        count += 1
        workdir = tmp_path / f"engine{count}"
        workdir.mkdir()
        try:
            return stack.enter_context(bed.engine_on_disk(workdir, size_mb, config))
        except bed.BedUnavailable as exc:
            bed_unavailable(str(exc))

    with stack:
        yield make


@pytest.fixture
def make_disk(tmp_path: Path, bed_ready):
    """make_disk(name, size_mb, mkfs_args=()) -> a mounted LoopDisk, unmounted after the test."""
    disks: list[bed.LoopDisk] = []

    def make(name: str, size_mb: int = 200, mkfs_args: tuple[str, ...] = ()) -> bed.LoopDisk:
        disk = bed.LoopDisk(tmp_path, name, size_mb, mkfs_args)
        disks.append(disk)
        try:
            return disk.mount()
        except bed.BedUnavailable as exc:
            bed_unavailable(str(exc))

    yield make
    for disk in reversed(disks):
        disk.unmount()


@pytest.fixture(scope="session")
def registry(tmp_path_factory, bed_ready):
    reg = bed.Registry(tmp_path_factory.mktemp("registry"))
    try:
        reg.start()
    except bed.BedUnavailable as exc:
        bed_unavailable(str(exc))
    yield reg
    reg.stop()


@pytest.fixture(scope="session")
def images(tmp_path_factory, bed_ready) -> bed.ImageFactory:
    try:
        return bed.ImageFactory(tmp_path_factory.mktemp("images"))
    except bed.BedUnavailable as exc:
        bed_unavailable(str(exc))


@pytest.fixture(scope="session")
def race_free_compose_path(tmp_path_factory) -> str:
    """A PATH whose first `docker-compose` is the bed's Compose v1 with its exit-status race closed
    (testbed/compose_v1.py): for tests whose outcome rests on compose reporting a container's exit every time."""
    real = shutil.which("docker-compose")
    if real is None:
        bed_unavailable("docker-compose is missing: run tests/install-bed.sh")
    interpreter = Path(real).read_text().splitlines()[0].removeprefix("#!")  # compose's own Python
    bin_dir = tmp_path_factory.mktemp("compose-bin")
    shim = bin_dir / "docker-compose"
    shim.write_text(f'#!/bin/sh\nexec {interpreter} {TESTBED / "compose_v1.py"} "$@"\n')
    shim.chmod(0o755)
    return f"{bin_dir}{os.pathsep}{os.environ['PATH']}"


@pytest.fixture
def hermetic_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a user with no AWS setup, no instance metadata, and a private state dir."""
    return bed.hermetic_environment(tmp_path)


@pytest.fixture(scope="module")
def moto_endpoint():
    """AWS for the SDK's own calls (S3 staging, ModelBuilder's bucket and records): moto in server mode."""
    with bed.moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def smdiag(hermetic_env: dict[str, str]):
    """smdiag(*args, env={...}, prefix=(...)) -> CompletedProcess of the real CLI in a fresh interpreter,
    run under `prefix` (e.g. setpriv) when given."""

    def invoke(
        *args: str, env: dict[str, str] | None = None, prefix: tuple[str, ...] = (), timeout: float = 120
    ) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*prefix, sys.executable, "-m", "agent", *args],
            env={**hermetic_env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return invoke


@pytest.fixture
def host(tmp_path, make_disk):
    """host(root_mb=..., ebs_mb=..., ebs_mkfs=...) -> a running bed.NotebookHost, cleaned up after the test."""

    def make(root_mb: int = 400, ebs_mb: int = 600, ebs_mkfs: tuple[str, ...] = ()) -> bed.NotebookHost:
        made = bed.NotebookHost(tmp_path, make_disk("rootvol", root_mb), make_disk("ebs", ebs_mb, ebs_mkfs))
        made.daemon.start()
        created.append(made)
        return made

    created: list[bed.NotebookHost] = []
    yield make
    for made in created:
        made.daemon.cleanup()
