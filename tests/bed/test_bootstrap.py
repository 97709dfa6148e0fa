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

from testbed import bed

pytestmark = pytest.mark.bed


def populate(host: bed.NotebookHost, images, pad_mb: float = 20) -> dict:
    """Images, a stopped container with logs, a named volume with files, two running containers (one with a
    restart policy)."""
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
        for name, policy in (("server", "always"), ("worker", "no")):  # Docker restarts the first only
            client.containers.run(
                "smdiag-test/b:1", ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"], name=name,
                network_mode="none", detach=True, restart_policy={"Name": policy},
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
    assert (result["images"], result["containers"], result["volumes"]) == (2, 3, 1)
    assert result["stopped_containers"] == ["worker"]  # said, with how to start it again
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


@pytest.mark.parametrize(
    "phase, extra, direction",
    [
        ("precopying", (), "rolled_back"),  # the live first pass, Docker running
        ("stopping", (), "rolled_back"),
        ("copying", ("--no-live-copy",), "rolled_back"),  # the whole copy with Docker stopped: a wide window
        ("starting", (), "rolled_forward"),
    ],
)
def test_sigkill_during_a_migration_then_a_rerun_converges(host, images, smdiag, hermetic_env, phase, extra, direction):
    h = host(root_mb=600, ebs_mb=800)
    before = populate(h, images, pad_mb=150)  # a copy that takes long enough to be caught in the act
    proc, journal = start_bootstrap(h, hermetic_env, *extra)
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
    assert (result["recovered"], result["interrupted_phase"]) == (direction, phase)
    assert result["action"] in ("migrated", "repointed", "unchanged")
    assert h.root_dir() == str(h.target) and current(h) == before
    assert not journal.exists() and not (h.ebs_disk.path / ".docker.smdiag-partial").exists()


def test_a_kill_while_docker_starts_on_the_new_root_then_work_there_loses_nothing(host, images, smdiag, hermetic_env):
    """The engine comes up on the new root although bootstrap was killed (its start command goes on, or
    systemd starts Docker at the next boot with the new config); the user works there; the next bootstrap
    must finish the move, not roll it back over the user's work."""
    h = host()
    before = populate(h, images, pad_mb=2)
    journal = kill_once_docker_answers_on_the_new_root(h, hermetic_env)
    assert h.root_dir() == str(h.target)
    with h.daemon.client() as client:  # the user's work, on the new root
        images.build(client, "smdiag-test/after-kill:1", size_mb=1)
        client.volumes.create("made-after")
        client.containers.run(
            "smdiag-test/b:1", ["sh", "-c", "echo new > /v/new.txt"], volumes={"made-after": {"bind": "/v"}},
            network_mode="none", name="made-after",
        )  # fmt: skip

    done, result = run_json(smdiag, h)
    assert done.returncode == 0, done.stderr
    assert result["recovered"] == "rolled_forward" and result["interrupted_phase"] == "starting"
    assert h.root_dir() == str(h.target) and json.loads(h.daemon_json.read_text())["data-root"] == str(h.target)
    now = current(h)
    assert set(before["images"]) | {"smdiag-test/after-kill:1"} <= set(now["images"])
    assert set(before["containers"]) | {"made-after"} <= set(now["containers"])
    assert now["volume_file"] == before["volume_file"] and now["finished_logs"] == before["finished_logs"]
    with h.daemon.client() as client:
        made = client.containers.run(
            "smdiag-test/b:1", ["cat", "/v/new.txt"], volumes={"made-after": {"bind": "/v"}}, network_mode="none",
            remove=True,
        )  # fmt: skip
    assert made == b"new\n" and not journal.exists()
    assert h.old_root.is_dir() and any(h.old_root.iterdir())  # the source is kept, as after any move


def test_when_both_roots_hold_new_work_nothing_is_removed_until_the_user_chooses(host, images, smdiag, hermetic_env):
    h = host()
    populate(h, images, pad_mb=2)
    config_bytes = h.daemon_json.read_bytes()
    journal = kill_once_docker_answers_on_the_new_root(h, hermetic_env)
    with h.daemon.client() as client:
        images.build(client, "smdiag-test/on-new:1", size_mb=1)
    # Someone puts the old config back by hand and restarts Docker on the old root, then works there too.
    subprocess.run(["sh", "-c", h.daemon.stop_command()], check=True, timeout=60)
    h.daemon_json.write_bytes(config_bytes)
    subprocess.run(["sh", "-c", h.daemon.start_command()], check=True, timeout=60)
    bed.wait_for(lambda: bed.bed_answers(h.daemon))
    with h.daemon.client() as client:
        images.build(client, "smdiag-test/on-old:1", size_mb=1)

    done, result = run_json(smdiag, h)
    assert done.returncode == 1 and str(h.old_root) in result["problem"] and str(h.target) in result["problem"]
    assert "--finish forward" in result["fix"] and "--finish back" in result["fix"]
    assert h.root_dir() == str(h.old_root) and "smdiag-test/on-old:1" in current_images(h)
    assert (h.target / ".smdiag-data-root.json").exists() and journal.exists()  # both kept, nothing decided

    done, result = run_json(smdiag, h, "--finish", "back")
    assert done.returncode == 0, done.stderr
    assert result["recovered"] == "rolled_back" and "smdiag-test/on-old:1" in current_images(h)
    kept = list(h.ebs_disk.path.glob("docker.smdiag-kept-*"))
    assert len(kept) == 1 and (kept[0] / "image").is_dir()  # the new root's work is set aside, not deleted
    assert result["kept_aside"] == str(kept[0])


def test_a_daemon_that_dies_at_start_is_named_at_once_and_rolled_back(host, images, hermetic_env):
    """dockerd refuses a daemon.json key that is also a flag (the AL2 `-g` in sysconfig): it exits at once.
    The tool must say so with the daemon's own words, not wait out its start timeout."""
    h = host()
    before = populate(h, images, pad_mb=2)
    config_bytes = h.daemon_json.read_bytes()
    clashing = h.daemon.start_command().replace("dockerd ", f"dockerd --data-root {h.target} ", 1)
    start = f"if grep -q {h.target} {h.daemon_json}; then {clashing} else {h.daemon.start_command()} fi"
    proc, journal = start_bootstrap(h, hermetic_env, start_cmd=start)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err
    assert "exited right after" in err and "both as a flag and in the configuration file" in err, err
    assert "did not answer within" not in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1  # one line, the reason
    assert_rolled_back(h, before, config_bytes, journal)


def kill_once_docker_answers_on_the_new_root(h: bed.NotebookHost, hermetic_env: dict) -> Path:
    """SIGKILL a bootstrap whose start command is still running while Docker already answers on the new
    root (as a slow service manager leaves it); returns the journal the killed run left."""
    pidfile = h.ebs_disk.path.parent / "start-cmd.pid"
    slow_start = f"echo $$ > {pidfile}; {h.daemon.start_command()} exec sleep 600"
    proc, journal = start_bootstrap(h, hermetic_env, start_cmd=slow_start)
    try:
        bed.wait_for(lambda: _phase(journal) == "starting" and bed.bed_answers(h.daemon), timeout=240)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        proc.kill()
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(pidfile.read_text()), signal.SIGKILL)  # the start command we made, still sleeping
    return journal


def start_bootstrap(
    h: bed.NotebookHost, hermetic_env: dict, *extra: str, start_cmd: str | None = None
) -> tuple[subprocess.Popen, Path]:
    """A bootstrap run in the background, and the journal to watch its phase in."""
    journal = Path(hermetic_env["SMDIAG_STATE_DIR"]) / "bootstrap" / "journal.json"
    argv = h.argv(*extra, start_cmd=start_cmd)
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent", *argv], env={**hermetic_env, **h.env()},
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
    # Copying or stopping: a window of seconds, wide enough for a test runner starved of CPU.
    phases = ("precopying", "stopping", "copying")
    bed.wait_for(lambda: _phase(journal) in phases or proc.poll() is not None, timeout=120, every=0.01)
    assert proc.poll() is None, "the migration finished before it could be interrupted"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1 and "rolled back" in err and "SIGTERM" in err, err
    assert json.loads(out)["ok"] is False
    assert_rolled_back(h, before, config_bytes, journal)


@pytest.mark.parametrize("phase, extra", [("precopying", ()), ("stopping", ("--no-live-copy",))])
def test_a_copy_that_runs_out_of_space_is_rolled_back(host, images, hermetic_env, phase, extra):
    h = host(root_mb=600, ebs_mb=800)
    before = populate(h, images, pad_mb=150)
    config_bytes = h.daemon_json.read_bytes()
    pid = h.daemon.pid()
    proc, journal = start_bootstrap(h, hermetic_env, *extra)
    bed.wait_for(lambda: _phase(journal) == phase or proc.poll() is not None, timeout=120, every=0.01)
    h.ebs_disk.fill(leave_mb=5)  # after the room check passed: the copy itself meets ENOSPC
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1 and "rolled back" in err and "No space left on device" in err
    assert_rolled_back(h, before, config_bytes, journal)
    if phase == "precopying":
        assert h.daemon.pid() == pid  # a live first pass that fails never stops Docker at all


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


def test_without_systemd_or_a_notebook_user_nothing_is_written_for_them(host, smdiag):
    """Off a notebook there is no systemd to read a drop-in and no ec2-user whose SDK config to write: with
    the defaults (this machine's own /etc/systemd and /home), bootstrap leaves both alone and says why."""
    dropin_dir = Path("/etc/systemd/system/docker.service.d")
    home = Path("/home/ec2-user")
    assert not Path("/run/systemd/system").exists() and not home.exists(), "this test needs a host without them"
    had_dropin_dir = dropin_dir.exists()
    h = host()
    defaults = ("SMDIAG_SYSTEMD_DIR", "SMDIAG_SYSTEMD_RUN_DIR", "SMDIAG_SAGEMAKER_CONFIG")
    env = {k: v for k, v in h.env().items() if k not in defaults}
    try:
        done = smdiag(*h.argv(), env=env, timeout=300)
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)
        assert result["action"] == "migrated" and h.root_dir() == str(h.target)
        assert not (dropin_dir / "smdiag-tmpdir.conf").exists() and not home.exists()
        assert {s["what"]: s["why"] for s in result["skipped"]} == {
            str(dropin_dir / "smdiag-tmpdir.conf"): "systemd does not run here, so it does not start Docker",
            str(home / ".sagemaker" / "config.yaml"): f"the notebook user's home {home} does not exist",
        }
    finally:  # what a wrong run would have left on this machine: ours to remove, and only that
        (dropin_dir / "smdiag-tmpdir.conf").unlink(missing_ok=True)
        if not had_dropin_dir and dropin_dir.exists():
            shutil.rmtree(dropin_dir)
        if home.exists():
            shutil.rmtree(home)


def test_what_docker_writes_during_the_live_copy_is_in_the_final_copy(host, images, hermetic_env):
    """A container rewrites a fixed-size file in a volume as fast as it can while the first pass copies:
    same size, same second (the case rsync's quick check misses). After the move the file on the new root
    holds exactly what Docker left on the old one when it stopped."""
    h = host(root_mb=600, ebs_mb=800)
    populate(h, images, pad_mb=150)
    with h.daemon.client() as client:
        client.volumes.create("counter")
        client.containers.run(
            "smdiag-test/b:1", ["sh", "-c", "i=0; while true; do printf '%012d' $i | dd of=/v/n conv=notrunc; "
                                "i=$((i+1)); done 2>/dev/null"],  # rewritten in place, never truncated
            volumes={"counter": {"bind": "/v"}}, network_mode="none", detach=True, name="writer",
        )  # fmt: skip
        bed.wait_for(lambda: client.containers.get("writer").status == "running")
    proc, journal = start_bootstrap(h, hermetic_env)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    result = json.loads(out)
    assert result["action"] == "migrated" and result["stopped_containers"] == ["worker", "writer"]
    relative = Path("volumes") / "counter" / "_data" / "n"
    left_on_old = (h.old_root / relative).read_bytes()
    assert len(left_on_old) == 12 and int(left_on_old) > 0
    assert (h.target / relative).read_bytes() == left_on_old
    assert result["downtime_seconds"] > 0 and result["stopped_copy_seconds"] > 0


def test_a_same_size_rewrite_that_keeps_its_mtime_after_the_live_pass_is_copied_again(host, images, hermetic_env):
    """The case rsync's quick check (size, mtime to the second) cannot see: a database page rewritten in
    place within the second the live pass read it. The stop command plays the daemon's last write."""
    h = host()
    populate(h, images, pad_mb=2)
    with h.daemon.client() as client:
        client.volumes.create("db")
        client.containers.run(
            "smdiag-test/b:1", ["sh", "-c", "printf AAAAAAAAAAAA > /v/page"], volumes={"db": {"bind": "/v"}},
            network_mode="none", remove=True,
        )  # fmt: skip
    page = h.old_root / "volumes" / "db" / "_data" / "page"
    reference = h.ebs_disk.path.parent / "page.mtime"
    last_write = (
        f"cp -p {page} {reference} && printf BBBBBBBBBBBB | dd of={page} conv=notrunc 2>/dev/null && "
        f"touch -r {reference} {page} && "
    )
    argv = h.argv(start_cmd=h.daemon.start_command())
    argv[argv.index("--stop-cmd") + 1] = last_write + h.daemon.stop_command()
    done = subprocess.run(
        [sys.executable, "-m", "agent", *argv], env={**hermetic_env, **h.env()}, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert page.read_bytes() == b"BBBBBBBBBBBB" and page.stat().st_mtime == reference.stat().st_mtime
    assert (h.target / "volumes" / "db" / "_data" / "page").read_bytes() == b"BBBBBBBBBBBB"
