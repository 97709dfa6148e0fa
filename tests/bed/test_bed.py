"""The bed itself does what the other tests rely on, with the engine's real behaviour."""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import docker.errors
import psutil
import pytest

from testbed import bed

pytestmark = pytest.mark.bed
REPO = Path(__file__).resolve().parents[2]


def pull_error(client, reference: str) -> str | None:
    """The engine's own error for a pull (the streaming API carries it; `images.pull` hides it)."""
    repository, _, tag = reference.rpartition(":")
    try:
        for event in client.api.pull(repository, tag=tag, stream=True, decode=True):
            if "error" in event:
                return event["error"]
    except docker.errors.APIError as exc:
        return exc.explanation
    return None


def test_a_container_runs_and_its_logs_are_read_back(make_engine, images):
    daemon, _ = make_engine()
    with daemon.client() as client:
        images.build(client, "bed/echo:1", scripts={"train": "echo to-stdout\necho to-stderr >&2\nexit 3"},
                     cmd=["train"])  # fmt: skip
        container = client.containers.run("bed/echo:1", detach=True)
        assert container.wait(timeout=60)["StatusCode"] == 3
        assert container.logs(stdout=True, stderr=False) == b"to-stdout\n"
        assert container.logs(stdout=False, stderr=True) == b"to-stderr\n"
        assert client.info()["DockerRootDir"] == str(daemon.data_root)


def test_images_have_the_size_asked_for(make_engine, images):
    daemon, _ = make_engine()
    with daemon.client() as client:
        image = images.build(client, "bed/pad:1", size_mb=20)
        assert 20 * 1024**2 <= image.attrs["Size"] < 24 * 1024**2


def test_registry_round_trip_between_two_engines(make_engine, images, registry):
    source, _ = make_engine()
    target, _ = make_engine()
    reference = f"{registry.address}/bed/shared:1"
    with source.client() as client:
        images.build(client, reference, size_mb=5)
        client.images.push(reference)
    layer_sizes = [layer["size"] for layer in registry.manifest("bed/shared", "1")["layers"]]
    assert sum(layer_sizes) > 5 * 1024**2  # random padding does not compress
    with target.client() as client:
        assert pull_error(client, reference) is None
        assert client.images.get(reference).attrs["Size"] > 5 * 1024**2


def test_a_pull_into_a_too_small_data_root_fails_with_enospc(make_engine, images, registry):
    source, _ = make_engine()
    reference = f"{registry.address}/bed/big:1"
    with source.client() as client:
        images.build(client, reference, size_mb=60)
        client.images.push(reference)
    small, disk = make_engine(size_mb=100)
    with small.client() as client:
        error = pull_error(client, reference)
    assert error is not None and "no space left on device" in error


def test_real_registry_errors_refused_and_not_found(make_engine, registry):
    daemon, _ = make_engine()
    with daemon.client() as client:
        refused = pull_error(client, f"127.0.0.1:{bed.free_port()}/bed/none:1")
        missing = pull_error(client, f"{registry.address}/bed/never-pushed:1")
    assert "connection refused" in refused
    assert "not found" in missing or "manifest unknown" in missing


def test_cleanup_stops_by_pid_and_unmounts_even_after_a_crash(tmp_path, bed_ready, images):
    with bed.engine_on_disk(tmp_path, 300) as (daemon, disk):
        pid = daemon.pid()
        with daemon.client() as client:
            images.build(client, "bed/sleeper:1", cmd=["sleep", "600"])
            client.containers.run("bed/sleeper:1", detach=True)
        daemon.kill()  # leaves containerd and the container's shim running, holding the disk
        assert ended(pid)
    assert not os.path.ismount(disk.path)
    leftovers = [
        p for p in psutil.process_iter(["cmdline"]) if str(daemon.exec_root) in " ".join(p.info["cmdline"] or [])
    ]
    assert leftovers == []


ENGINE_OWNER = """
import sys, time
from pathlib import Path
from testbed import bed
work, port = Path(sys.argv[1]), int(sys.argv[2])
daemon = bed.Dockerd(work / "root").start()
with daemon.client() as client:
    bed.ImageFactory(work).build(client, "bed/idle:1", cmd=["sleep", "3600"])
    network = client.networks.create("published", driver="bridge")
    client.containers.run("bed/idle:1", detach=True, network="published", ports={"8080/tcp": port})
print(daemon.pid(), daemon.exec_root, f"br-{network.id[:12]}", flush=True)
time.sleep(3600)
"""


def ended(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@contextlib.contextmanager
def engine_of_another_run(program: str, work: Path, *args: str):
    """`program` run as another test run would be: it starts a bed engine and prints its pid, its exec-root and
    one fact more. Yields (that run, the engine's pid, the fact); afterwards stops what is left of that run and
    its engine, by pid and exec-root, and unmounts what it mounted under `work`."""
    owner = subprocess.Popen(
        [sys.executable, "-c", program, str(work), *args],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    engine_pid, exec_root, fact = owner.stdout.readline().split()
    try:
        yield owner, int(engine_pid), fact
    finally:
        owner.kill()
        owner.wait()
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(engine_pid), signal.SIGKILL)
        bed.kill_processes_using(exec_root)
        for point in bed.mounts_under(work):
            subprocess.run(["umount", "-l", point], capture_output=True)
        shutil.rmtree(exec_root, ignore_errors=True)


def test_a_killed_test_process_takes_its_engine_down_and_leaves_nothing_in_the_next_engines_way(
    tmp_path, make_engine, images
):
    """A test run SIGKILLed mid-way (a timeout, a stopped session) must not leave an engine serving on a host port,
    nor a bridge whose route takes the next engine's traffic, for the next run on this machine: a killed run's
    bridge on the next run's subnet once made every local endpoint answer /ping with resets."""
    port = bed.free_port()
    with engine_of_another_run(ENGINE_OWNER, tmp_path, str(port)) as (owner, engine_pid, bridge):
        try:
            assert bed.listens(port)  # the engine's proxy holds the published port
            owner.kill()
            owner.wait()
            bed.wait_for(lambda: ended(engine_pid), timeout=120)
            assert not bed.listens(port)

            following, _disk = make_engine()
            with following.client() as client:
                serve = "mkdir -p /www && echo ok > /www/ping && exec httpd -f -p 8080 -h /www"
                images.build(client, "bed/serve:1", scripts={"serve": serve}, cmd=["serve"])
                client.networks.create("endpoint", driver="bridge")
                client.containers.run("bed/serve:1", detach=True, network="endpoint", ports={"8080/tcp": port})
            bed.wait_for(lambda: pings(port), timeout=60)
        finally:
            subprocess.run(["ip", "link", "delete", bridge], capture_output=True)


def pings(port: int) -> bool:
    with contextlib.suppress(OSError), urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as answer:
        return answer.read() == b"ok\n"
    return False


SERVICE_OWNER = """
import subprocess, sys, time
from pathlib import Path
from testbed import bed
daemon = bed.Dockerd(Path(sys.argv[1]) / "root")
subprocess.run(["bash", "-c", daemon.start_command()], check=True)  # detached, as a service manager starts it
bed.wait_for(lambda: bed.bed_answers(daemon), timeout=120)
print(daemon.pid(), daemon.exec_root, daemon.pool.network, flush=True)
time.sleep(3600)
"""


def test_an_engine_started_as_a_service_by_a_killed_run_is_stopped_by_the_next_owner_of_its_pool(tmp_path, bed_ready):
    """A daemon started the way smdiag's service commands start one (detached) is no child of the test run and
    outlives it; its address pool is the record that it was ours: the next engine given that pool stops it."""
    with engine_of_another_run(SERVICE_OWNER, tmp_path) as (owner, engine_pid, network):
        pool = bed.AddressPool(second_octets=[int(network.split(".")[1])])
        try:
            owner.kill()
            owner.wait()
            assert not ended(engine_pid)  # the run is gone, its engine is not
            assert pool.reserve() == f"base={network},size=24"
            assert ended(engine_pid)
        finally:
            pool.release()


TAKE_TURN = """
import sys
from pathlib import Path
from testbed import bed
try:
    with bed.host_port_turn(int(sys.argv[1]), Path(sys.argv[2]), wait_s=float(sys.argv[3]), free_wait_s=0):
        print("got the port")
except bed.BedUnavailable as exc:
    print(exc)
"""


def test_two_runs_take_turns_on_a_host_port_and_a_foreign_holder_is_named(tmp_path):
    port = bed.free_port()

    def other_run(wait_s: float) -> str:
        done = subprocess.run(
            [sys.executable, "-c", TAKE_TURN, str(port), str(tmp_path), str(wait_s)],
            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120,
        )  # fmt: skip
        return done.stdout.strip()

    with bed.host_port_turn(port, tmp_path):
        assert other_run(wait_s=0) == (
            f"another test run on this machine (pid {os.getpid()}) has held the host's port {port} for 0 s"
        )
    assert other_run(wait_s=60) == "got the port"
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        said = other_run(wait_s=60)
    assert said.startswith(f"the host's port {port} is held by pid {os.getpid()} (")
