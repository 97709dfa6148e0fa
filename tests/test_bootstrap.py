"""`smdiag bootstrap` on the bed: a real daemon whose data-root sits on one loop disk (the root volume)
moves to another (the EBS volume), restarted through stop/start commands like a service manager would."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import docker
import pytest
import yaml

import bed

pytestmark = pytest.mark.bed


def populate(host: bed.NotebookHost, images, pad_mb: float = 20) -> dict:
    """Images, a stopped container with logs, a named volume with files, a container kept running."""
    with host.daemon.client() as client:
        images.build(client, "smdiag-test/a:1", size_mb=pad_mb, cmd=["sh", "-c", "echo hello-from-a"])
        client.images.get("smdiag-test/a:1").tag("smdiag-test/a", "also")
        images.build(client, "smdiag-test/b:1", size_mb=pad_mb / 2)
        stopped = client.containers.run("smdiag-test/a:1", name="finished", network_mode="none", detach=True)
        stopped.wait()
        client.volumes.create("data")
        client.containers.run(
            "smdiag-test/b:1", ["sh", "-c", "mkdir -p /v/sub && echo precious > /v/sub/file.txt"],
            volumes={"data": {"bind": "/v"}}, network_mode="none", remove=True,
        )  # fmt: skip
        client.containers.run(
            "smdiag-test/b:1", ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"], name="server",
            network_mode="none", detach=True, restart_policy={"Name": "always"},
        )  # fmt: skip
        return inventory(client)


def inventory(client: docker.DockerClient) -> dict:
    return {
        "images": sorted(tag for image in client.images.list() for tag in image.tags),
        "containers": sorted(c.name for c in client.containers.list(all=True)),
        "finished_logs": client.containers.get("finished").logs().decode(),
        "volume_file": client.containers.run(
            "smdiag-test/b:1",
            ["cat", "/v/sub/file.txt"],
            volumes={"data": {"bind": "/v"}},
            network_mode="none",
            remove=True,
        ).decode(),  # fmt: skip
    }


def current(host: bed.NotebookHost) -> dict:
    with host.daemon.client() as client:
        return inventory(client)


def run_json(smdiag, host: bed.NotebookHost, *extra: str):
    done = smdiag(*host.argv(*extra), env=host.env(), timeout=300)
    return done, (json.loads(done.stdout) if done.stdout.strip() else None)


def test_migrate_then_unchanged_then_repoint_after_a_reboot(host, images, smdiag):
    h = host()
    before = populate(h, images)
    assert before["finished_logs"] == "hello-from-a\n" and before["volume_file"] == "precious\n"

    plan, planned = run_json(smdiag, h, "--dry-run")
    assert plan.returncode == 0 and planned["action"] == "planned"
    assert any("copy" in step for step in planned["plan"]) and h.root_dir() == str(h.old_root)
    assert not h.target.exists() and json.loads(h.daemon_json.read_text()) == h.original_config

    done, result = run_json(smdiag, h)
    assert done.returncode == 0, done.stderr
    assert result["action"] == "migrated" and result["old_root"] == str(h.old_root)
    assert result["new_root"] == str(h.target) and result["bytes_copied"] > 30 * 1024 * 1024
    assert (result["images"], result["containers"], result["volumes"]) == (2, 2, 1)
    assert h.root_dir() == str(h.target)
    assert current(h) == before
    with h.daemon.client() as client:
        bed.wait_for(lambda: client.containers.get("server").status == "running")

    config = json.loads(h.daemon_json.read_text())
    assert config == {**h.original_config, "data-root": str(h.target)}  # the nvidia runtime survived
    backups = list(h.daemon_json.parent.glob("daemon.json.smdiag-*.bak"))
    assert [json.loads(b.read_text()) for b in backups] == [h.original_config]
    dropin = h.systemd_dir / "docker.service.d" / "smdiag-tmpdir.conf"
    assert f"Environment=DOCKER_TMPDIR={h.target}/tmp" in dropin.read_text()
    local_root = h.ebs_disk.path / ".sagemaker-local"
    assert yaml.safe_load(h.sagemaker_config.read_text()) == {"local": {"container_root": str(local_root)}}
    assert local_root.is_dir() and h.old_root.is_dir()  # the source is kept without --reclaim

    again, result = run_json(smdiag, h)
    assert again.returncode == 0 and result["action"] == "unchanged" and result["config_written"] == []

    h.reboot()
    assert h.root_dir() == str(h.old_root) and current_images(h) == []
    repoint, result = run_json(smdiag, h, "--reclaim")
    assert repoint.returncode == 0, repoint.stderr
    assert result["action"] == "repointed" and result["bytes_copied"] == 0 and result["reclaimed"] is True
    assert h.root_dir() == str(h.target) and current(h) == before
    assert list(h.old_root.iterdir()) == []


def current_images(h: bed.NotebookHost) -> list[str]:
    with h.daemon.client() as client:
        return [tag for image in client.images.list() for tag in image.tags]


def test_the_seed_manual_layout_is_adopted_and_its_g_flag_removed(host, images, smdiag):
    h = host()
    populate(h, images, pad_mb=2)
    subprocess.run(["sh", "-c", h.daemon.stop_command()], check=True, timeout=60)
    manual = h.ebs_disk.path / "docker-stuff"
    subprocess.run(["cp", "-a", f"{h.old_root}/.", str(manual)], check=True)  # the seed's copy, done right
    shutil.rmtree(h.old_root)
    h.sysconfig.write_text(f'OPTIONS="--default-ulimit nofile=1024:4096 -g {manual}"\n')
    subprocess.run(["sh", "-c", h.daemon.start_command()], check=True, timeout=60)
    bed.wait_for(lambda: bed.bed_answers(h.daemon))

    done, result = run_json(smdiag, h)
    assert done.returncode == 0, done.stderr
    assert result["action"] == "repointed" and result["new_root"] == str(manual)
    assert h.root_dir() == str(manual) and "smdiag-test/a:1" in current_images(h)
    assert h.sysconfig.read_text() == 'OPTIONS="--default-ulimit nofile=1024:4096"\n'
    assert len(list(h.sysconfig.parent.glob("sysconfig-docker.smdiag-*.bak"))) == 1


def test_concurrent_runs_wait_for_each_other(host, images, smdiag, hermetic_env):
    h = host()
    populate(h, images, pad_mb=2)
    env = {**hermetic_env, **h.env()}
    argv = [sys.executable, "-m", "agent", *h.argv()]
    runs = [subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in "ab"]
    outcomes = [(p.wait(300), json.loads(p.stdout.read())["action"]) for p in runs]
    assert sorted(outcomes) == [(0, "migrated"), (0, "unchanged")]
    assert h.root_dir() == str(h.target)


def test_a_target_too_small_is_refused_before_docker_stops(host, images, smdiag):
    h = host(ebs_mb=100)
    populate(h, images, pad_mb=60)
    pid = h.daemon.pid()
    config_bytes = h.daemon_json.read_bytes()
    done, result = run_json(smdiag, h)
    assert done.returncode == 2 and result["ok"] is False
    assert "free; copying" in result["problem"] and "EBS volume" in result["fix"]
    assert h.daemon.pid() == pid and h.root_dir() == str(h.old_root)  # never stopped
    assert h.daemon_json.read_bytes() == config_bytes and not h.target.exists()
    assert [p.name for p in h.ebs_disk.path.iterdir() if p.name != "lost+found"] == []


def test_invalid_daemon_json_is_bad_input_and_left_byte_identical(host, images, smdiag):
    h = host()
    pid = h.daemon.pid()
    broken = b'{"data-root": "/x",\n  "runtimes": \n'
    h.daemon_json.write_bytes(broken)
    done, result = run_json(smdiag, h)
    assert done.returncode == 2 and "is not valid JSON" in result["problem"]
    assert h.daemon_json.read_bytes() == broken and h.daemon.pid() == pid
    assert not h.target.exists()


def test_a_daemon_that_fails_on_the_new_root_is_rolled_back(host, images, smdiag):
    h = host(ebs_mkfs=("-O", "^filetype"))  # ext4 without d_type: overlay2 refuses it
    before = populate(h, images, pad_mb=2)
    config_bytes = h.daemon_json.read_bytes()
    done, result = run_json(smdiag, h)
    assert done.returncode == 1, done.stderr
    assert "rolled back" in result["problem"] and str(h.old_root) in result["problem"]
    assert h.root_dir() == str(h.old_root) and current(h) == before
    assert h.daemon_json.read_bytes() == config_bytes
    assert not (h.target / ".smdiag-data-root.json").exists()  # the failed copy is never re-pointed to
    assert not (h.ebs_disk.path / ".docker.smdiag-partial").exists()


@pytest.mark.parametrize("phase", ["stopping", "copying", "starting"])
def test_sigkill_during_a_migration_then_a_rerun_converges(host, images, smdiag, hermetic_env, phase):
    h = host(root_mb=600, ebs_mb=800)
    before = populate(h, images, pad_mb=150)  # a copy that takes long enough to be caught in the act
    proc, journal = start_bootstrap(h, hermetic_env)
    try:
        bed.wait_for(lambda: _phase(journal) == phase or proc.poll() is not None, timeout=120, every=0.01)
        assert proc.poll() is None, f"the run finished before reaching {phase}"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    done, result = run_json(smdiag, h)
    assert done.returncode == 0, done.stderr
    assert result["recovered"] == phase and result["action"] in ("migrated", "repointed")
    assert h.root_dir() == str(h.target) and current(h) == before
    assert not journal.exists() and not (h.ebs_disk.path / ".docker.smdiag-partial").exists()


def start_bootstrap(h: bed.NotebookHost, hermetic_env: dict) -> tuple[subprocess.Popen, Path]:
    """A bootstrap run in the background, and the journal to watch its phase in."""
    journal = Path(hermetic_env["SMDIAG_STATE_DIR"]) / "bootstrap" / "journal.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent", *h.argv()], env={**hermetic_env, **h.env()},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    return proc, journal


def assert_rolled_back(h: bed.NotebookHost, before: dict, config_bytes: bytes, journal: Path) -> None:
    """Docker back on the old root with everything, the config byte-identical, no copy left behind."""
    assert h.root_dir() == str(h.old_root) and current(h) == before
    assert h.daemon_json.read_bytes() == config_bytes and not journal.exists()
    assert not (h.ebs_disk.path / ".docker.smdiag-partial").exists() and not h.target.exists()


def test_sigterm_during_a_migration_rolls_back_at_once(host, images, hermetic_env):
    h = host(root_mb=600, ebs_mb=800)
    before = populate(h, images, pad_mb=150)
    config_bytes = h.daemon_json.read_bytes()
    proc, journal = start_bootstrap(h, hermetic_env)
    # Docker stopped, or copying: a window of seconds, wide enough for a test runner starved of CPU.
    bed.wait_for(lambda: _phase(journal) in ("stopping", "copying") or proc.poll() is not None, timeout=120, every=0.01)
    assert proc.poll() is None, "the migration finished before it could be interrupted"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1 and "rolled back" in err and "SIGTERM" in err, err
    assert json.loads(out)["ok"] is False
    assert_rolled_back(h, before, config_bytes, journal)


def test_a_copy_that_runs_out_of_space_is_rolled_back(host, images, hermetic_env):
    h = host(root_mb=600, ebs_mb=800)
    before = populate(h, images, pad_mb=150)
    config_bytes = h.daemon_json.read_bytes()
    proc, journal = start_bootstrap(h, hermetic_env)
    bed.wait_for(lambda: _phase(journal) == "stopping" or proc.poll() is not None, timeout=120, every=0.01)
    h.ebs_disk.fill(leave_mb=5)  # after the room check passed: the copy itself meets ENOSPC
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1 and "rolled back" in err and "No space left on device" in err
    assert_rolled_back(h, before, config_bytes, journal)


def _phase(journal: Path) -> str | None:
    with contextlib.suppress(OSError, ValueError):
        return json.loads(journal.read_text()).get("phase")
    return None


def test_dry_run_and_bad_target_change_nothing(host, smdiag):
    h = host()
    guessed = smdiag("bootstrap", "--dry-run", "--json", env=h.env())  # no --stop-cmd: the host's service
    [stop] = [step for step in json.loads(guessed.stdout)["plan"] if step.startswith("stop Docker")]
    assert f"the engine is at {h.daemon.host}, which this may not stop: pass --stop-cmd" in stop, stop
    done, result = run_json(smdiag, h, "--target", "relative/dir")
    assert done.returncode == 2 and "absolute" in result["problem"]
    foreign = h.ebs_disk.path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    done, result = run_json(smdiag, h, "--target", str(foreign))
    assert done.returncode == 2 and "not a Docker data-root" in result["problem"]
    assert (foreign / "notes.txt").read_text() == "keep me" and h.root_dir() == str(h.old_root)
    assert os.listdir(h.systemd_dir) == []
