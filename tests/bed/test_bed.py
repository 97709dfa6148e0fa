"""The bed itself does what the other tests rely on, with the engine's real behaviour."""

import os

import docker.errors
import psutil
import pytest

from testbed import bed

pytestmark = pytest.mark.bed


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
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not os.path.ismount(disk.path)
    leftovers = [
        p for p in psutil.process_iter(["cmdline"]) if str(daemon.exec_root) in " ".join(p.info["cmdline"] or [])
    ]
    assert leftovers == []
