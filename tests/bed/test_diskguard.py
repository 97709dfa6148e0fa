"""`smdiag diskguard` on the bed: a small loop-mounted data-root filled by real pulls from a real registry."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import docker.errors
import pytest

from agent import diskguard, fileops, waiting
from agent.guard import prune
from agent.guard.image_store import image_present
from agent.guard.plan import Step
from agent.guard.state import GuardFiles, UseRecord, events_state
from agent.statedir import StateDir
from testbed import bed

pytestmark = pytest.mark.bed

SERVE = "trap 'exit 0' TERM; sleep 600 & wait"
"""A long-running container that stops at once when the engine stops."""
MET_A_CREATE = ("a container is being created from it", "put back")
"""What a pass says of an image it kept for a create in flight: seen in the layer store before the delete,
or found holding the layers after it."""


def publish(daemon: bed.Dockerd, images: bed.ImageFactory, registry: bed.Registry, name: str, size_mb: float) -> str:
    """Build an image, push it to the registry and forget it locally: what remains is a real pull."""
    ref = f"{registry.address}/{name}:1"
    with daemon.client() as client:
        images.build(client, ref, size_mb=size_mb, cmd=["sh", "-c", "echo ran"])
        for line in client.api.push(ref.rsplit(":", 1)[0], tag="1", stream=True, decode=True):
            assert "error" not in line, line
        client.images.remove(ref)
    return ref


def pull(daemon: bed.Dockerd, ref: str) -> str | None:
    """Pull through the engine; the engine's error text, or None on success."""
    repository, tag = ref.rsplit(":", 1)
    with daemon.client() as client:
        for line in client.api.pull(repository, tag=tag, stream=True, decode=True):
            if "error" in line:
                return line["error"]
    return None


def tags(daemon: bed.Dockerd) -> set[str]:
    with daemon.client() as client:
        return {tag for image in client.images.list() for tag in image.tags}


def used_pct(path: Path) -> float:
    done = subprocess.run(["df", "--output=pcent", str(path)], capture_output=True, text=True, check=True)
    return float(done.stdout.splitlines()[1].strip().rstrip("%"))


def fill_to(disk: bed.LoopDisk, pct: float, name: str = "filler.bin") -> None:
    """Write a file so that the disk is at about `pct` used, as df counts it."""
    st = os.statvfs(disk.path)
    used = (st.f_blocks - st.f_bfree) * st.f_frsize
    avail = st.f_bavail * st.f_frsize
    leave = (used + avail) * (1 - pct / 100)
    assert avail > leave, f"{disk.path} is already over {pct}%"
    disk.fill(leave / (1024 * 1024), name)


def arrived_ago(daemon: bed.Dockerd, ref: str, seconds: float) -> None:
    """Make a pulled image look `seconds` old to diskguard: the engine's record of when it stored the image's
    config (a pull sets no tag time, so that file's mtime is when the image arrived). --min-age is measured
    from the clock at planning time, which a loaded machine delays without bound: images hours old beside
    one pulled now keep a test's ages apart whatever the load, where a sleep before the pull cannot."""
    with daemon.client() as client:
        image_id = client.images.get(ref).id
    [config] = daemon.data_root.glob(f"image/*/imagedb/content/sha256/{image_id.split(':', 1)[1]}")
    when = time.time() - seconds
    os.utime(config, (when, when))


def once(smdiag, daemon, *args: str):
    done = smdiag("diskguard", "once", "--json", *args, env={"DOCKER_HOST": daemon.host}, timeout=300)
    return done, json.loads(done.stdout) if done.stdout.strip() else None


def test_once_removes_least_recently_used_first_and_keeps_what_it_must(make_engine, images, registry, smdiag):
    daemon, disk = make_engine(size_mb=500)
    refs = {
        n: publish(daemon, images, registry, f"once/{n}", 30) for n in ["running", "pinned", "c", "d", "e", "young"]
    }
    for hours, name in enumerate(["e", "d", "c", "pinned", "running"], start=2):  # c older than d, older than e
        assert pull(daemon, refs[name]) is None
        arrived_ago(daemon, refs[name], hours * 3600)
    assert pull(daemon, refs["young"]) is None  # an hour from --min-age: young through both runs, whatever the load
    with daemon.client() as client:
        client.containers.run(refs["running"], ["sh", "-c", SERVE], network_mode="none", detach=True)
    fill_to(disk, 88)
    before_tags = tags(daemon)
    policy = ("--high", "85", "--low", "75", "--min-age", "1h", "--keep", "once/pinned")

    plan, planned = once(smdiag, daemon, *policy, "--dry-run")
    assert plan.returncode == 0 and planned["dry_run"] is True and tags(daemon) == before_tags
    assert [r["names"] for r in planned["removed"]][:1] == [[refs["c"]]] and all(
        r["bytes"] > 0 for r in planned["removed"]
    )
    assert planned["before_pct"] > 85 and planned["after_pct"] <= 75  # the forecast: where the real run ends

    done, result = once(smdiag, daemon, *policy)
    assert done.returncode == 0, done.stderr
    removed = [r["names"][0] for r in result["removed"]]
    assert removed == [refs["c"], refs["d"], refs["e"]][: len(removed)] and removed
    assert removed == [r["names"][0] for r in planned["removed"]]
    assert abs(result["after_pct"] - planned["after_pct"]) < 3
    assert result["before_pct"] > 85 and result["after_pct"] <= 75 and used_pct(disk.path) <= 76
    last_pct = 100 * result["removed"][-1]["bytes"] / (disk.size_mb * 1024 * 1024)
    assert result["after_pct"] + last_pct * 0.9 > 75  # no more than needed: the last removal was required
    kept = {k["names"][0]: k["reason"] for k in result["kept"] if k["kind"] == "image"}
    assert kept[refs["running"]].startswith("used by running container")
    assert kept[refs["pinned"]] == "matches --keep once/pinned"
    assert kept[refs["young"]].startswith("younger than --min-age")
    assert tags(daemon) == before_tags - set(removed)

    again, result = once(smdiag, daemon, *policy)
    assert again.returncode == 0 and result["removed"] == [] and result["before_pct"] <= 85


def test_once_saves_old_containers_logs_keeps_the_newest_failure_and_says_what_holds_the_space(
    make_engine, images, smdiag, hermetic_env
):
    daemon, disk = make_engine(size_mb=300)
    with daemon.client() as client:
        images.build(client, "work/job:1", size_mb=5)
        for name, script in [("ok-old", "echo fine"), ("failed-old", "echo boom >&2; exit 3")]:
            client.containers.run(
                "work/job:1", ["sh", "-c", script], name=name, network_mode="none", detach=True
            ).wait()
        client.containers.run(  # finished after the old ones: their runs were waited for
            "work/job:1",
            ["sh", "-c", "echo oom-ish >&2; exit 137"],
            name="failed-new",
            network_mode="none",
            detach=True,
        ).wait()
    fill_to(disk, 92)
    policy = ("--keep", ".*", "--container-max-age", "0s", "--min-age", "0s")
    forecast, planned = once(smdiag, daemon, *policy, "--dry-run")
    assert forecast.returncode == 1 and planned["after_pct"] > 85, planned  # exits as the real run will
    assert planned["held_by"]["outside_docker"] > 150 * 1024 * 1024
    assert "forecast" in smdiag("diskguard", "once", *policy, "--dry-run", env={"DOCKER_HOST": daemon.host}).stdout
    done, result = once(smdiag, daemon, *policy)
    assert done.returncode == 1
    assert [r["names"] for r in result["removed"]] == [["ok-old"], ["failed-old"]]
    kept = {k["names"][0]: k["reason"] for k in result["kept"]}
    assert (
        kept["failed-new"] == "the newest failed container"
        and kept["work/job:1"] == "used by stopped container failed-new"
    )
    logs = Path(hermetic_env["SMDIAG_STATE_DIR"]) / "diskguard" / "container-logs"
    saved = {p.name.split("-")[0] + "-" + p.name.split("-")[1]: p.read_text() for p in logs.iterdir()}
    assert "boom" in saved["failed-old"] and "fine" in saved["ok-old"]
    assert result["held_by"]["outside_docker"] > 150 * 1024 * 1024  # the filler file
    assert "still over the watermark; the space is held by" in subprocess.run(
        [sys.executable, "-m", "agent", "diskguard", "once", "--keep", ".*"],
        env={**hermetic_env, "DOCKER_HOST": daemon.host}, capture_output=True, text=True,
    ).stdout  # fmt: skip


def test_bad_input_removes_nothing(make_engine, images, smdiag, tmp_path):
    daemon, disk = make_engine(size_mb=300)
    with daemon.client() as client:
        images.build(client, "keep/me:1", size_mb=1)
    fill_to(disk, 95)
    for args, problem in [
        (("--low", "90"), "--low 90 is not below --high 85"),
        (("--keep", "(("), "is not a valid regular expression"),
        (("--path", str(tmp_path / "nowhere")), "does not exist"),
        (("--min-age", "soon"), "is not a duration"),
    ]:
        done, result = once(smdiag, daemon, "--min-age", "0s", *args)
        assert done.returncode == 2 and problem in result["problem"], (args, result)
    assert tags(daemon) == {"keep/me:1"}


def test_status_measures_the_engines_data_root_now_beside_the_last_check(make_engine, make_disk, smdiag):
    daemon, disk = make_engine(size_mb=300)
    elsewhere = make_disk("elsewhere", 100)
    checked = smdiag("diskguard", "once", "--path", str(elsewhere.path), env={"DOCKER_HOST": daemon.host})
    assert checked.returncode == 0, checked.stderr  # the last check names another disk
    fill_to(disk, 90)
    status = smdiag("diskguard", "status", "--json", env={"DOCKER_HOST": daemon.host})
    report = json.loads(status.stdout)
    assert report["data_root"] == str(daemon.data_root) and report["last_check"]["path"] == str(elsewhere.path)
    assert abs(report["used_pct"] - used_pct(disk.path)) < 1.5 and status.returncode == 1  # over 85%, now
    text = smdiag("diskguard", "status", env={"DOCKER_HOST": daemon.host}).stdout
    assert f"now: data-root {daemon.data_root}" in text and f"on {elsewhere.path}" in text
    disk.path.joinpath("filler.bin").unlink()
    assert smdiag("diskguard", "status", env={"DOCKER_HOST": daemon.host}).returncode == 0
    gone = smdiag("diskguard", "status", "--json")  # the hermetic DOCKER_HOST: nothing answers there
    assert gone.returncode == 1 and "Traceback" not in gone.stderr
    assert json.loads(gone.stdout)["error"] and json.loads(gone.stdout)["data_root"] is None


def start_guard(hermetic_env, daemon, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "agent", "diskguard", "run", "--interval", "3600", *args],
        env={**hermetic_env, "DOCKER_HOST": daemon.host},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def wait_until(condition, timeout: float, what: str) -> None:
    """Fails the test when `condition` did not hold within `timeout`."""
    assert waiting.wait_until(condition, timeout), f"timed out waiting for {what}"


def following(state: StateDir) -> bool | None:
    """Whether the running guard follows the engine's events, as `status` shows it (None: not yet known);
    only a guard following them answers a pull."""
    events = events_state(state)
    return None if events is None else events["following"]


def test_stop_ends_the_detached_guard_says_so_and_a_second_stop_stops_nothing(make_engine, smdiag, tmp_path):
    daemon, _disk = make_engine(size_mb=300)
    env = {"DOCKER_HOST": daemon.host, "SMDIAG_SYSTEMD_DIR": str(tmp_path / "no-units")}
    started = smdiag("diskguard", "start", "--no-systemd", "--json", env=env)
    assert started.returncode == 0, started.stderr
    pid = json.loads(started.stdout)["pid"]
    assert json.loads(smdiag("diskguard", "status", "--json", env=env).stdout)["guard_pid"] == pid
    stopped = smdiag("diskguard", "stop", env=env)
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout.splitlines() == [
        f"diskguard stopped (pid {pid}, detached)",
        "images are no longer pruned; `smdiag diskguard start` starts it again",
    ]
    assert smdiag("diskguard", "status", env=env).stdout.startswith("diskguard run: not running")
    again = smdiag("diskguard", "stop", "--json", env=env)
    assert again.returncode == 0 and json.loads(again.stdout)["stopped"] is False
    assert smdiag("diskguard", "stop", env=env).stdout == "diskguard was not running: nothing stopped\n"


def test_run_answers_a_pull_at_once_remembers_use_and_survives_an_engine_restart(
    make_engine, images, registry, smdiag, hermetic_env
):
    daemon, disk = make_engine(size_mb=500)
    refs = {n: publish(daemon, images, registry, f"run/{n}", 30) for n in ["used", "a", "b", "c", "d", "big", "big2"]}
    for name in ["used", "a", "b", "c", "d"]:  # pulled one after another: their arrival order
        assert pull(daemon, refs[name]) is None
    policy = ("--high", "80", "--low", "70", "--min-age", "0s")
    state_dir = StateDir(Path(hermetic_env["SMDIAG_STATE_DIR"]))
    state = state_dir.diskguard
    guard = start_guard(hermetic_env, daemon, *policy)
    try:
        wait_until(lambda: following(state_dir), 120, "the guard to follow the engine's events")
        with daemon.client() as client:  # "used" was pulled first, but used last: it goes last
            client.containers.run(refs["used"], ["true"], network_mode="none", remove=True)
            used_id = client.images.get(refs["used"]).id
        fill_to(disk, 78)
        assert pull(daemon, refs["big"]) is None
        wait_until(  # last.json is written once the pruning pass is over; the interval is an hour: an event woke it
            lambda: used_pct(disk.path) <= 71 and (state / "last.json").exists(), 120, "the guard to prune after a pull"
        )
        removed = [r["names"][0] for r in json.loads((state / "last.json").read_text())["removed"]]
        assert removed == [refs[n] for n in "abcd"][: len(removed)] and removed
        assert refs["used"] in tags(daemon) and refs["big"] in tags(daemon)
    finally:
        guard.send_signal(signal.SIGTERM)
        guard.wait(30)
    assert guard.returncode == 0, guard.stderr.read()
    assert used_id in json.loads((state / "images.json").read_text())["last_used"]

    assert events_state(state_dir) is None  # a stopped guard follows nothing
    guard = start_guard(hermetic_env, daemon, *policy)
    try:
        wait_until(lambda: following(state_dir), 120, "the new guard to follow the engine's events")
        report = json.loads(smdiag("diskguard", "status", "--json").stdout)
        assert report["guard_running"] and report["images_seen_in_use"] >= 1 and report["last_check"]["removed"]
        assert report["guard_events"]["following"]
        second = start_guard(hermetic_env, daemon, *policy)
        assert second.wait(120) == 1 and "another diskguard run is active" in second.stderr.read()

        daemon.stop()
        wait_until(lambda: following(state_dir) is False, 120, "the guard to see the engine's events end")
        down = smdiag("diskguard", "status").stdout
        assert f"diskguard run: running (pid {guard.pid}), lost the engine's events at" in down, down
        assert events_state(state_dir)["engine_answered"] is False  # so doctor takes it for waiting, not stuck
        daemon.start()
        wait_until(lambda: following(state_dir), 120, "the guard to follow the restarted engine's events")
        assert guard.poll() is None, guard.stderr.read()
        fill_to(disk, 79, name="filler2.bin")
        assert pull(daemon, refs["big2"]) is None
        wait_until(lambda: used_pct(disk.path) <= 71, 120, "the guard to prune after the engine restarted")
    finally:
        guard.send_signal(signal.SIGTERM)
        guard.wait(30)
    assert guard.returncode == 0, guard.stderr.read()


def test_fifty_concurrent_pulls_and_runs_while_the_guard_prunes(make_engine, images, registry, hermetic_env):
    daemon, disk = make_engine(size_mb=400)
    refs = [publish(daemon, images, registry, f"busy/img{i}", 12) for i in range(6)]
    for ref in refs:
        assert pull(daemon, ref) is None
    fill_to(disk, 84)
    with daemon.client() as client:  # pulled again by the workers: the disk goes over high while they run
        for ref in refs[:3]:
            client.images.remove(ref)
    image_events = ImageEvents(daemon)
    guard = start_guard(hermetic_env, daemon, "--high", "80", "--low", "72", "--min-age", "0s")
    guard_log = Path(hermetic_env["SMDIAG_STATE_DIR"]) / "logs" / "agent.log"
    # on a busy machine a guard can take long to start: the workers must find it following events
    state_dir = StateDir(Path(hermetic_env["SMDIAG_STATE_DIR"]))
    wait_until(lambda: following(state_dir), 120, "the guard to watch events")
    prune_lock = GuardFiles(state_dir).prune_lock
    absent: dict[str, str] = {}  # image id -> a container that ran while the engine did not have it
    lost: list[str] = []
    outputs: list[str] = []
    errors: list[str] = []

    def work(index: int) -> None:
        ref = refs[index % len(refs)]
        with daemon.client() as client:
            for _attempt in range(5):
                if pull(daemon, ref) is not None:
                    continue
                try:
                    container = client.containers.run(ref, ["sh", "-c", "sleep 1; cat /pad.bin | wc -c"],
                                                       network_mode="none", detach=True)  # fmt: skip
                except docker.errors.APIError:  # pruned between pull and create: pull again
                    continue
                image_id = container.attrs["Image"]
                while container.reload() or container.status == "running":
                    if not image_present(client, image_id):  # removed while the container was being created:
                        absent[image_id] = container.name  # the guard puts it back, however late under load
                    time.sleep(0.2)
                with fileops.exclusive_lock(prune_lock):  # no pass is halfway through removing or putting back
                    if not image_present(client, image_id):
                        lost.append(f"{ref} ({image_id[:19]}) once {container.name} had run")
                outputs.append(container.logs().decode().strip())
                container.remove()
                return

    def worker(index: int) -> None:
        try:
            work(index)
        except Exception as exc:  # noqa: BLE001 - a worker's own failure is reported, never taken for a lost image
            errors.append(f"worker {index}: {type(exc).__name__}: {exc}")

    try:
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(50)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(300)
        # Under load every image may be in use at each pass; once the containers are removed, the guard prunes.
        wait_until(lambda: used_pct(disk.path) <= 80, 120, "the guard to bring the disk under high")
    finally:
        guard.send_signal(signal.SIGTERM)
        guard.wait(30)
        image_events.stop()
    assert errors == []
    assert lost == []
    put_back = {
        e["id"] for e in map(json.loads, guard_log.read_text().splitlines()) if e["event"] == "diskguard.put_back"
    }
    assert set(absent) <= put_back, f"missing while a container ran, and not by the guard's put-back: {absent}"
    assert image_events.count("delete") > image_events.count("load"), (
        f"the guard never pruned: the test proved nothing (image events: {image_events.summary()})"
    )
    assert len(outputs) == 50 and set(outputs) == {str(12 * 1024 * 1024)}
    assert guard.returncode == 0, guard.stderr.read()
    assert used_pct(disk.path) <= 85


def test_an_image_a_container_is_being_created_from_is_kept_or_put_back(make_engine, images, registry, hermetic_env):
    """The engine checks only registered containers before it deletes an image: one being created from it
    (image looked up, layers taken, not yet registered) does not stop the delete. Each pass: the image is
    pulled while containers wait to be created from it, and the guard prunes while they are being created,
    until the guard has met such a create (kept the image for it, or put it back); every container created
    while a pass ran must have its image once that pass is over (checked before the next pull could bring
    it back)."""
    daemon, disk = make_engine(size_mb=500)
    base = publish(daemon, images, registry, "race/base", 32)
    ref = f"{registry.address}/race/x:1"
    with daemon.client() as client:  # a VOLUME with data: each create copies it, between taking the image's
        assert pull(daemon, base) is None  # layers and registering the container: a wide window for the race
        dockerfile = f"FROM {base}\nRUN mkdir /data && mv /pad.bin /data/\nVOLUME /data\n"
        client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=ref, rm=True)
        for line in client.api.push(ref.rsplit(":", 1)[0], tag="1", stream=True, decode=True):
            assert "error" not in line, line
        client.images.remove(ref)
        client.images.remove(base)
    policy = diskguard.Policy.build(2, 1, (), "0s", "24h")  # every pass removes the image if it can
    state = StateDir(Path(hermetic_env["SMDIAG_STATE_DIR"]))
    record = UseRecord(state).load()
    passes = {"done": 0, "met_a_create": 0}
    creating: dict[int, int] = {}
    """creator -> the number of passes done when its current create began; its check is still to come."""
    changed = threading.Condition()
    gate = threading.Event()
    """Open from just before each pull until the pass ends: creators wait for the image meanwhile."""
    stop = threading.Event()
    orphans: list[str] = []
    errors: list[str] = []

    def create_and_check(me: int) -> None:
        with daemon.client() as client:
            while gate.wait() and not stop.is_set():
                with changed:
                    if not gate.is_set():  # closed meanwhile: the pass is ending
                        continue
                    creating[me] = began = passes["done"]
                try:
                    container = client.containers.create(ref, ["true"], network_mode="none")
                except docker.errors.APIError:  # the image is gone (or going): try again at once
                    container = None
                if container is not None:
                    with changed:
                        changed.wait_for(lambda began=began: passes["done"] > began or stop.is_set(), timeout=300)
                    image_id = container.attrs["Image"]
                    if not image_present(client, image_id):
                        orphans.append(f"{container.name} from {image_id[:19]}")
                    container.remove(v=True)
                with changed:
                    del creating[me]
                    changed.notify_all()

    def creator(me: int) -> None:
        try:
            create_and_check(me)
        except Exception as exc:  # noqa: BLE001
            errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=creator, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    try:
        with daemon.client() as client:
            root_dir = client.info()["DockerRootDir"]
            while passes["met_a_create"] == 0:
                assert passes["done"] < 100 and not errors and not orphans, (passes, errors, orphans)
                with contextlib.suppress(docker.errors.APIError):  # left by the last pass (or in use: no matter)
                    client.images.remove(ref)
                gate.set()
                assert pull(daemon, ref) is None
                outcome = diskguard.enforce(client, diskguard.Target(disk.path, root_dir), policy, record, state)
                gate.clear()
                with changed:
                    passes["done"] += 1
                    passes["met_a_create"] += sum(k["reason"].startswith(MET_A_CREATE) for k in outcome.kept)
                    changed.notify_all()
                    changed.wait_for(lambda: min(creating.values(), default=passes["done"]) >= passes["done"], 300)
    finally:
        stop.set()
        gate.set()
        with changed:
            changed.notify_all()
        for thread in threads:
            thread.join(300)
    assert errors == []
    assert orphans == []


class ImageEvents:
    """The engine's image events, followed live from now on (the engine keeps only its last 256)."""

    def __init__(self, daemon: bed.Dockerd) -> None:
        self.actions: list[str] = []
        self._client = docker.DockerClient(base_url=daemon.host, timeout=None)
        self._stream = self._client.events(decode=True, filters={"type": "image"})
        self._thread = threading.Thread(target=self._follow, daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        with contextlib.suppress(Exception):  # the stream ends with an error when stop() closes it
            for event in self._stream:
                self.actions.append(event.get("Action", ""))

    def stop(self) -> None:
        self._stream.close()
        self._client.close()
        self._thread.join(30)

    def count(self, action: str) -> int:
        return self.actions.count(action)

    def summary(self) -> dict[str, int]:
        return {action: self.actions.count(action) for action in sorted(set(self.actions))}


def test_an_engine_that_stalls_past_the_clients_timeout_still_has_its_removal_settled(
    make_engine, images, hermetic_env
):
    """The engine finishes a delete it has begun whatever the client does: a guard that gave up on the
    answer would not know whether the image went, and so could not put it back for a container being
    created from it. Here the engine stalls (SIGSTOP) longer than the client's usual timeout while the
    guard removes an image: the removal waits for the engine and ends settled."""
    daemon, _disk = make_engine()
    ref = "smdiag-test/stalled:1"
    with daemon.client() as client:
        images.build(client, ref, size_mb=1)
        image_id = client.images.get(ref).id
        root_dir = client.info()["DockerRootDir"]
    step = Step("image", image_id, (ref,), 2**20, None, "least recently used")
    state = StateDir(Path(hermetic_env["SMDIAG_STATE_DIR"]))
    outcome: dict = {}
    usual_timeout = 1

    def remove(client) -> None:
        try:
            outcome["kept_because"] = prune.remove(client, step, state, root_dir)
        except Exception as exc:  # noqa: BLE001 - what the guard would have logged as a failed check
            outcome["raised"] = f"{type(exc).__name__}: {exc}"

    with daemon.client(timeout=usual_timeout) as client:  # made (the engine's version asked) before the stall
        remover = threading.Thread(target=remove, args=(client,))
        os.kill(daemon.pid(), signal.SIGSTOP)
        try:
            remover.start()
            remover.join(usual_timeout * 5)  # the client's own timeout would have ended the removal by now
            stalled_through = remover.is_alive()
        finally:
            os.kill(daemon.pid(), signal.SIGCONT)
        remover.join(prune.SETTLE_RETRY_S)
    assert "raised" not in outcome and stalled_through, outcome
    assert outcome == {"kept_because": None}
    with daemon.client() as client:
        assert not image_present(client, image_id)


def test_make_room_frees_enough_for_a_pull_that_would_fail_with_enospc(make_engine, images, registry, smdiag):
    daemon, disk = make_engine(size_mb=700)
    old = [publish(daemon, images, registry, f"room/old{i}", 50) for i in range(4)]
    big = publish(daemon, images, registry, "room/big", 60)
    for ref in old:
        assert pull(daemon, ref) is None
    fill_to(disk, 100 - 100 * 90 / 700)  # about 90 MiB free: less than the pull needs
    error = pull(daemon, big)
    assert error and "no space left on device" in error

    done = smdiag("diskguard", "make-room", "--for", big, "--min-age", "0s", "--json", env={"DOCKER_HOST": daemon.host})
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert 60 * 1024 * 1024 < result["compressed_bytes"] < 70 * 1024 * 1024
    assert result["free_after"] >= result["room_needed"] > result["free_before"]
    removed = [r["names"][0] for r in result["removed"]]
    assert removed and removed == old[: len(removed)] and len(removed) < len(old)  # only as much as needed
    assert pull(daemon, big) is None


def test_make_room_says_up_front_when_the_room_cannot_be_made(make_engine, images, registry, smdiag):
    daemon, disk = make_engine(size_mb=300)
    big = publish(daemon, images, registry, "room/huge", 60)
    with daemon.client() as client:
        images.build(client, "local/kept:1", size_mb=20)
    fill_to(disk, 90)
    before = tags(daemon)
    done = smdiag("diskguard", "make-room", "--for", big, "--min-age", "0s", "--json", env={"DOCKER_HOST": daemon.host})
    result = json.loads(done.stdout)
    assert done.returncode == 1 and result["removed"] == [] and "can be made" in result["problem"]
    assert tags(daemon) == before
    refused = smdiag("diskguard", "make-room", "--for", f"{registry.address}/room/absent:1", "--json",
                     env={"DOCKER_HOST": daemon.host})  # fmt: skip
    assert refused.returncode == 1 and "answered 404" in json.loads(refused.stdout)["problem"]
