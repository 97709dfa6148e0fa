"""Fault suite of `smdiag bootstrap` and `smdiag diskguard` on the real bed (root; see tests/install-bed.sh).

Judges the CLI by what a user would notice, never by its internals:
- SIGKILL of `bootstrap` at random points of a migration (copying while Docker runs and once it stopped,
  renamed, config written, starting, verifying); then engine activity on whatever root the engine runs on
  (or starts on from the current config, as a service manager would at boot), a rerun, and a further one
  when the first keeps both roots.
  A run is intact when every object made before the kill and after it is on the root the engine finally
  runs on (or on one of the two roots the tool said it kept).
- the target filling up mid-copy, the target out of inodes, a truncated daemon.json;
- the engine killed right after its start, and right after it first answers: the tool's wait is timed;
- `diskguard run` racing 50 container starts from random images: images removed while in use;
- planted secrets (env, credentials file, a proxy URL; a failing command that prints them in every form):
  occurrences in every output and every file under the state and config directories.

Prints a table of figures (and `--json` the same as JSON on stdout); exits 1 when any object was lost, any
secret leaked, or any check failed or could not be made (a fault that was not produced proves nothing).

    python3 -m bench.faults [--runs N] [--short] [--json] [--seed S] [--only sigkill,enospc,...]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import random
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import docker
import docker.errors
import psutil

from testbed import bed

REPO = Path(__file__).resolve().parent.parent

SCENARIOS = ("sigkill", "enospc", "inodes", "truncated", "engine_killed", "diskguard", "secrets")
KILL_POINTS = ("starting", "copying", "config_written", "verifying", "renamed", "precopying")
"""Cycled through in this order, so that even three runs reach the phases after the config names the target.
precopying is a copy made while Docker still runs (a tool without one is caught copying instead)."""
TOOL_START_TIMEOUT_S = 120
"""How long the tool may wait for an engine that never answers; a dead engine must end the wait long before."""
PROMPT_WAIT_S = 30
"""A wait on a dead engine longer than this is not "at once", even on a loaded machine."""
RUN_TIMEOUT_S = 600
ROOT_MB, EBS_MB = 500, 700
PAD_A_MB, PAD_B_MB = 80, 40

OLD_IMAGES = ("smdiag-test/a:1", "smdiag-test/a:also", "smdiag-test/b:1")
SERVER_CMD = ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------- the bed's parts


class TemplateDisk(bed.LoopDisk):
    """A loop disk that starts as a copy of a prepared disk image (a populated data-root) instead of mkfs."""

    def __init__(self, workdir: Path, name: str, size_mb: int, template: Path) -> None:
        super().__init__(workdir, name, size_mb)
        self.template = template

    def mount(self) -> TemplateDisk:
        self.path.mkdir(parents=True, exist_ok=True)
        bed.run("cp", "--sparse=always", str(self.template), str(self.image))
        bed.run("mount", "-o", "loop", str(self.image), str(self.path))
        self.mounted = True
        return self


def populate(client: docker.DockerClient, images: bed.ImageFactory) -> None:
    """What a user has before the move: images, a finished container with logs, a volume with a file, a
    container kept running."""
    images.build(client, OLD_IMAGES[0], size_mb=PAD_A_MB, cmd=["sh", "-c", "echo hello-from-a"])
    client.images.get(OLD_IMAGES[0]).tag("smdiag-test/a", "also")
    images.build(client, OLD_IMAGES[2], size_mb=PAD_B_MB)
    client.containers.run(OLD_IMAGES[0], name="finished", network_mode="none", detach=True).wait()
    client.volumes.create("data")
    client.containers.run(
        OLD_IMAGES[2], ["sh", "-c", "mkdir -p /v/sub && echo precious > /v/sub/file.txt"],
        volumes={"data": {"bind": "/v"}}, network_mode="none", remove=True,
    )  # fmt: skip
    client.containers.run(
        OLD_IMAGES[2], SERVER_CMD, name="server", network_mode="none", detach=True, restart_policy={"Name": "always"}
    )


def engine_objects(client: docker.DockerClient) -> set[str]:
    """Every object a user would look for, as the engine shows it: tags, containers and their logs, every
    file of every volume (read at the volume's mount point)."""
    found = {f"image:{tag}" for image in client.images.list() for tag in image.tags}
    for container in client.containers.list(all=True):
        found.add(f"container:{container.name}")
        found.add(f"logs:{container.name}={container.logs().decode(errors='replace')}")
    for volume in client.volumes.list():
        found |= _volume_files(volume.name, Path(volume.attrs["Mountpoint"]))
    return found


def disk_objects(root: Path) -> set[str]:
    """The same objects read from a data-root on disk that no engine runs on (a root the tool kept)."""
    found: set[str] = set()
    with contextlib.suppress(OSError, ValueError):
        repositories = json.loads((root / "image" / "overlay2" / "repositories.json").read_text())["Repositories"]
        found |= {f"image:{ref}" for refs in repositories.values() for ref in refs if "@" not in ref}
    with contextlib.suppress(OSError):
        for directory in (root / "containers").iterdir():
            with contextlib.suppress(OSError, ValueError, KeyError):
                name = json.loads((directory / "config.v2.json").read_text())["Name"].lstrip("/")
                found.add(f"container:{name}")
                log_file = directory / f"{directory.name}-json.log"
                lines = log_file.read_text().splitlines() if log_file.exists() else []
                found.add(f"logs:{name}=" + "".join(json.loads(line)["log"] for line in lines))
    with contextlib.suppress(OSError):
        for volume in (root / "volumes").iterdir():
            if (volume / "_data").is_dir():
                found |= _volume_files(volume.name, volume / "_data")
    return found


def _volume_files(name: str, top: Path) -> set[str]:
    found = set()
    for path in sorted(top.rglob("*")):
        if path.is_file():
            found.add(f"volume:{name}/{path.relative_to(top)}={path.read_text(errors='replace')}")
    return found


def ping(daemon: bed.Dockerd, timeout: float = 1.0) -> bool:
    """Does the engine answer /_ping? A raw request: cheap enough to poll every few milliseconds."""
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(timeout)
        sock.connect(str(daemon.socket))
        sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
        reply = sock.recv(4096)
        return reply.startswith(b"HTTP/1.") and b" 200 " in reply.split(b"\r\n", 1)[0]
    return False


def engine_root(daemon: bed.Dockerd) -> str | None:
    with contextlib.suppress(Exception), daemon.client(timeout=10) as client:
        return os.path.realpath(client.info()["DockerRootDir"])
    return None


def daemon_alive(daemon: bed.Dockerd) -> bool:
    """Is a dockerd of this engine running? Found by its exec-root (it may not have written its pidfile yet,
    and a stale pidfile's pid may be another engine's by now)."""
    for process in psutil.process_iter(["name", "cmdline", "status"]):
        if process.info["name"] == "dockerd" and process.info["status"] != psutil.STATUS_ZOMBIE:
            if str(daemon.exec_root) in (process.info["cmdline"] or []):
                return True
    return False


def wait(condition, timeout: float, every: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(every)
    return True


def settle_engine(host: bed.NotebookHost, timeout: float = 180) -> str:
    """Let a starting or stopping engine finish; when none runs, start one from the current config as a
    service manager would at boot. Returns how the engine came to answer, or "down"."""
    daemon = host.daemon
    deadline = time.monotonic() + timeout
    while daemon_alive(daemon) and not ping(daemon, timeout=3) and time.monotonic() < deadline:
        time.sleep(0.2)
    if ping(daemon, timeout=3):
        return "was running"
    subprocess.run(["sh", "-c", daemon.start_command()], timeout=60)
    if wait(lambda: ping(daemon, timeout=3), max(10.0, deadline - time.monotonic()), every=0.2):
        return "started at boot"
    return "down"


def hermetic_env(directory: Path, extra: dict[str, str]) -> dict[str, str]:
    """The environment of a user with no AWS setup, every path smdiag writes inside `directory`, and the
    agent of this checkout (not whatever an editable install points at)."""
    return {
        **bed.hermetic_environment(directory),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "SMDIAG_CACHE_DIR": str(directory / "cache"),
        **extra,
    }


class Host:
    """A notebook of the bed for one run: its own config directory, a root volume copied from the template
    (so every run starts from the same data-root), an empty EBS volume."""

    def __init__(self, suite: Suite, name: str, ebs_mkfs: tuple[str, ...] = ()) -> None:
        self.dir = suite.workdir / name
        self.dir.mkdir()
        self.root_disk = TemplateDisk(suite.workdir, "rootvol", ROOT_MB, suite.template)
        self.ebs_disk = bed.LoopDisk(suite.workdir, "ebs", EBS_MB, ebs_mkfs)
        self.state = self.dir / "state"
        self.journal = self.state / "bootstrap" / "journal.json"
        self.nb: bed.NotebookHost | None = None
        try:
            self.root_disk.mount()
            self.ebs_disk.mount()
            self.nb = bed.NotebookHost(self.dir, self.root_disk, self.ebs_disk)
            self.nb.daemon.start()
            with self.nb.daemon.client() as client:
                self.before = engine_objects(client)
            if self.before != suite.expected_old:
                raise RuntimeError(f"the template came up different: {sorted(self.before ^ suite.expected_old)}")
        except BaseException:
            self.close()
            raise

    def env(self, **extra: str) -> dict[str, str]:
        return hermetic_env(self.dir, {**self.nb.env(), **extra})

    def argv(self, *extra: str, stop_cmd: str | None = None, start_cmd: str | None = None) -> list[str]:
        return [
            sys.executable, "-m", "agent", "bootstrap",
            "--stop-cmd", stop_cmd or self.nb.daemon.stop_command(),
            "--start-cmd", start_cmd or self.nb.daemon.start_command(),
            "--json", *extra,
        ]  # fmt: skip

    def start_bootstrap(self) -> subprocess.Popen:
        return subprocess.Popen(self.argv(), env=self.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def bootstrap(self, *extra: str, env: dict | None = None, **cmds) -> Outcome:
        started = time.monotonic()
        done = subprocess.run(
            self.argv(*extra, **cmds), env=env or self.env(), capture_output=True, text=True, timeout=RUN_TIMEOUT_S
        )
        return Outcome.of(done.returncode, done.stdout, done.stderr, time.monotonic() - started)

    def staging(self) -> Path:
        """The staging directory the journal registered for removal, else where bootstrap would put it."""
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError, StopIteration):
            steps = json.loads(self.journal.read_text())["undo"]
            return Path(next(s["path"] for s in steps if s["kind"] == "created" and not s.get("action")))
        return self.nb.target.with_name(f".{self.nb.target.name}.smdiag-partial")

    def config_names_target(self) -> bool:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            return json.loads(self.nb.daemon_json.read_text()).get("data-root") == str(self.nb.target)
        return False

    def phase(self) -> str | None:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            return json.loads(self.journal.read_text()).get("phase")
        return None

    def close(self) -> None:
        if self.nb is not None:
            self.nb.daemon.cleanup()
            bed.kill_processes_using(self.nb.daemon.exec_root, self.root_disk.path, self.ebs_disk.path)
        self.ebs_disk.unmount()
        self.root_disk.unmount()


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str
    seconds: float
    result: dict | None

    @classmethod
    def of(cls, code: int, stdout: str, stderr: str, seconds: float) -> Outcome:
        result = None
        with contextlib.suppress(ValueError):
            result = json.loads(stdout) if stdout.strip() else None
        return cls(code, stdout, stderr, seconds, result if isinstance(result, dict) else None)

    @property
    def text(self) -> str:
        return self.stdout + "\n" + self.stderr

    def brief(self) -> str:
        r = self.result or {}
        if self.code == 0:
            return f"exit 0 {r.get('action')} recovered={r.get('recovered')}"
        return f"exit {self.code}: {(r.get('problem') or self.stderr.strip()[-200:])[:200]}"

    def keeps_both(self, old_root: Path, target: Path) -> bool:
        """A failure that names both data-roots: the tool kept both and left the choice to the user."""
        return self.code == 1 and str(old_root) in self.text and str(target) in self.text


# -------------------------------------------------------------------------------------------- the suite


@dataclass
class Suite:
    workdir: Path
    rng: random.Random
    images: bed.ImageFactory
    template: Path = field(init=False)
    expected_old: set[str] = field(init=False)
    figures: dict = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    lost: int = 0
    leaked: int = 0

    def prepare(self) -> None:
        """Populate a root volume once and keep its disk image: every run copies it."""
        disk = bed.LoopDisk(self.workdir, "rootvol", ROOT_MB).mount()
        daemon = bed.Dockerd(disk.path / "docker")
        try:
            daemon.start()
            with daemon.client(timeout=600) as client:
                populate(client, self.images)
                self.expected_old = engine_objects(client)
        finally:
            daemon.cleanup()
            bed.kill_processes_using(daemon.exec_root)
            on_disk = disk_objects(disk.path / "docker")
            for point in bed.mounts_under(disk.path):
                subprocess.run(["umount", "-l", point], capture_output=True)
            bed.run("umount", str(disk.path))
        if on_disk != self.expected_old:  # the reading of a kept root must see what the engine saw
            raise RuntimeError(
                f"reading a data-root on disk differs from the engine: {sorted(on_disk ^ self.expected_old)}"
            )
        self.template = self.workdir / "template.img"
        os.rename(disk.image, self.template)
        disk.mounted = False
        needed = {
            "image:smdiag-test/a:1",
            "container:server",
            "logs:finished=hello-from-a\n",
            "volume:data/sub/file.txt=precious\n",
        }
        assert needed <= self.expected_old, sorted(self.expected_old)

    def fail(self, message: str) -> None:
        log(f"FAILED: {message}")
        self.failures.append(message)

    # ------------------------------------------------------------------------------- SIGKILL mid-run

    def calibrate(self) -> dict[str, float]:
        """One migration left alone, its phases timed from the outside: the random delays of the kills are
        drawn within each phase's real length on this machine, now."""
        host = Host(self, "calibration")
        try:
            proc = host.start_bootstrap()
            seen: dict[str, float] = {}
            started = time.monotonic()
            while proc.poll() is None:
                now = time.monotonic() - started
                if host.staging().exists():
                    seen.setdefault("precopying", now)
                    if not daemon_alive(host.nb.daemon):
                        seen.setdefault("copying", now)
                if host.nb.target.exists():
                    seen.setdefault("renamed", now)
                if host.config_names_target():
                    seen.setdefault("config_written", now)
                    if daemon_alive(host.nb.daemon):
                        seen.setdefault("starting", now)
                    if "starting" in seen and ping(host.nb.daemon, timeout=0.5):
                        seen.setdefault("verifying", now)
                time.sleep(0.01)
            seen["exit"] = time.monotonic() - started
            out, err = proc.communicate()
            done = Outcome.of(proc.returncode, out, err, seen["exit"])
            with host.nb.daemon.client() as client:
                after = engine_objects(client)
            if done.code != 0 or engine_root(host.nb.daemon) != str(host.nb.target) or not host.before <= after:
                self.fail(f"an uninterrupted migration did not keep everything: {done.brief()}")
            missing = [p for p in ("copying", "starting", "verifying") if p not in seen]
            if missing:
                self.fail(f"calibration never saw {missing}: the kill points cannot be reached")
            log(f"calibration: {done.brief()}; phases seen at {json.dumps({k: round(v, 2) for k, v in seen.items()})}")

            def length(phase: str, until: str) -> float:
                return max(0.0, seen.get(until, seen["exit"]) - seen.get(phase, seen["exit"]))

            return {
                "precopying": length("precopying", "copying"),
                "copying": length("copying", "renamed"),
                "starting": length("starting", "verifying"),
                "verifying": length("verifying", "exit"),
                "seconds": seen["exit"],
            }
        finally:
            host.close()

    def sigkill(self, runs: int) -> None:
        lengths = self.calibrate()
        rows = []
        for index in range(runs):
            point = KILL_POINTS[index % len(KILL_POINTS)]
            # A kill that landed after its phase (the delay outran a phase shorter than at calibration) is
            # a real test and is kept; the point is then tried again with no delay, up to twice.
            for attempt in range(3):
                row = self._sigkill_run(index, attempt, point, lengths)
                if row["hit"] != "finished":
                    rows.append(row)
                if row["hit"] == point:
                    break
                log(f"run {index}: aimed at {point}, landed {row['hit']}; again with no delay")
            else:
                if row["hit"] == "finished":
                    rows.append(row)
        hits: dict[str, int] = {}
        for row in rows:
            hits[row["hit"]] = hits.get(row["hit"], 0) + 1
        figures = {
            "runs": len(rows),
            "kill_points_aimed": runs,
            "phases_hit": hits,
            "hit_intended": sum(r["hit"] == r["point"] for r in rows),
            "missed_kills": sum(r["hit"] == "finished" for r in rows),
            "intact": sum(r["intact"] for r in rows),
            "lost_objects": sum(r["lost"] for r in rows),
            "reruns_completed": sum(r["rerun_completed"] for r in rows),
            "kept_both": sum(r["kept_both"] for r in rows),
            "server_running_after": sum(r["server_running"] for r in rows),
            "phase_lengths_s": {k: round(v, 2) for k, v in lengths.items()},
            "detail": rows,
        }
        self.figures["sigkill"] = figures
        self.lost += figures["lost_objects"]
        if figures["missed_kills"]:
            self.fail(f"sigkill: {figures['missed_kills']} kills landed after the run had finished")
        if not any(r["hit"] in ("config_written", "starting", "verifying") for r in rows):
            self.fail("sigkill: no kill landed after the config named the new root (the case that lost data)")
        for row in rows:
            if row["problems"]:
                self.fail(f"sigkill run {row['run']} ({row['hit']}): {'; '.join(row['problems'])}")

    def _sigkill_run(self, index: int, attempt: int, point: str, lengths: dict) -> dict:
        """One kill; a retry (attempt > 0, after the run finished before the kill) kills with no delay."""
        host = Host(self, f"kill{index}.{attempt}")
        row = {"run": index, "point": point, "hit": "?", "delay_s": 0.0, "journal_at_kill": None,
               "engine_after_kill": "", "root_after_kill": "",
               "rerun": "", "further_rerun": "", "kept_both": False, "rerun_completed": False, "intact": False,
               "lost": 0, "missing": [], "server_running": False, "problems": []}  # fmt: skip
        try:
            delay = 0.0 if attempt else self.rng.uniform(0, 0.8 * lengths.get(point, 0.0))
            row["delay_s"] = round(delay, 3)
            proc = host.start_bootstrap()
            try:
                row["hit"], answered = self._kill_at(host, proc, point, delay)
            finally:
                if proc.poll() is None:
                    proc.kill()
                proc.communicate()
            log(f"run {index}: aimed at {point} (+{delay:.2f}s), killed in {row['hit']}")
            if row["hit"] == "finished":
                return row
            row["journal_at_kill"] = host.phase()
            row["engine_after_kill"] = settle_engine(host.nb)
            row["root_after_kill"] = engine_root(host.nb.daemon) or "none"
            if row["engine_after_kill"] == "down":
                row["problems"].append("the engine would not start from the config the kill left")
            new = self._activity(host, index, row)

            first = host.bootstrap()
            row["rerun"] = first.brief()
            final = first
            if first.code != 0:
                row["kept_both"] = first.keeps_both(host.nb.old_root, host.nb.target)
                final = host.bootstrap()
                row["further_rerun"] = final.brief()
                log(f"run {index}: rerun {first.brief()}; further rerun {final.brief()}")
            else:
                log(f"run {index}: rerun {first.brief()}")
            if settle_engine(host.nb) != "was running":
                row["problems"].append("the engine was not running after the rerun")
            root = engine_root(host.nb.daemon)
            row["rerun_completed"] = final.code == 0 and root == str(host.nb.target) and host.phase() is None
            with host.nb.daemon.client() as client:
                now = engine_objects(client)
                with contextlib.suppress(docker.errors.NotFound):
                    row["server_running"] = client.containers.get("server").status == "running"
            missing = (host.before | new) - now
            if missing and row["kept_both"]:
                for kept in {str(host.nb.old_root), str(host.nb.target)} - {root}:
                    missing -= disk_objects(Path(kept))
            row["missing"] = sorted(missing)
            row["lost"] = len(missing)
            row["intact"] = not missing and bool(new)
            if missing:
                log(f"run {index}: LOST {len(missing)}: {row['missing']}")
        except Exception as exc:  # noqa: BLE001 - one broken run is reported, the others still run
            row["problems"].append(f"{type(exc).__name__}: {exc}")
        finally:
            host.close()
        return row

    def _kill_at(self, host: Host, proc: subprocess.Popen, point: str, delay: float) -> tuple[str, bool]:
        """SIGKILL the run once it has reached `point` and `delay` more seconds passed; name the phase the
        kill really landed in, from what the kill left behind (and whether the engine answered just before)."""

        def reached() -> bool:
            if point == "precopying":
                return host.staging().exists()
            if point == "copying":
                return host.staging().exists() and not daemon_alive(host.nb.daemon)
            if point == "renamed":
                return host.nb.target.exists()
            if point == "config_written":
                return host.config_names_target()
            if point == "starting":
                return host.config_names_target() and daemon_alive(host.nb.daemon)
            return host.config_names_target() and ping(host.nb.daemon, timeout=0.5)

        fine = point in ("renamed", "config_written")
        if fine:  # narrow windows: poll every millisecond, but only once the copy is under way
            wait(lambda: host.staging().exists() or host.nb.target.exists() or proc.poll() is not None, RUN_TIMEOUT_S)
        if not wait(lambda: reached() or proc.poll() is not None, RUN_TIMEOUT_S, every=0.001 if fine else 0.01):
            raise RuntimeError(f"the run never reached {point}")
        if delay:
            time.sleep(delay)
        answered = False if fine else ping(host.nb.daemon, timeout=0.5)
        running = daemon_alive(host.nb.daemon)
        helpers = []
        with contextlib.suppress(psutil.Error):
            helpers = [p for p in psutil.Process(proc.pid).children(recursive=True) if "containerd" not in p.name()
                       and "dockerd" not in p.name()]  # fmt: skip
        if proc.poll() is not None:
            return "finished", answered
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        # What the run started and left behind (its stop command's wait loop) finishes on its own.
        psutil.wait_procs(helpers, timeout=60)
        if host.phase() is None:
            return "finished", answered
        if host.config_names_target():
            if answered:
                return "verifying", answered
            return ("starting" if daemon_alive(host.nb.daemon) else "config_written"), answered
        if host.nb.target.exists():
            return "renamed", answered
        if host.staging().exists():
            if host.phase() == "stopping":
                return "stopping", answered
            return ("precopying" if running else "copying"), answered
        return host.phase() or "?", answered

    def _activity(self, host: Host, index: int, row: dict) -> set[str]:
        """What a user does next on whatever root the engine runs on: a new image, a volume with a file, a
        container with output. Returns the objects made."""
        token = f"made-after-kill-{index}-{self.rng.randrange(10**9)}"
        tag = f"faults/new:run{index}"
        try:
            with host.nb.daemon.client(timeout=300) as client:
                self.images.build(client, tag, cmd=["sh", "-c", f"echo {token}"])
                client.volumes.create(f"new{index}")
                client.containers.run(
                    tag, ["sh", "-c", f"echo {token} > /v/file.txt"], volumes={f"new{index}": {"bind": "/v"}},
                    network_mode="none", remove=True,
                )  # fmt: skip
                client.containers.run(tag, name=f"new{index}", network_mode="none", detach=True).wait()
                made = {f"image:{tag}", f"volume:new{index}/file.txt={token}\n", f"container:new{index}",
                        f"logs:new{index}={token}\n"}  # fmt: skip
                missing = made - engine_objects(client)
                if missing:
                    row["problems"].append(f"the engine lost what was just made: {sorted(missing)}")
                return made
        except Exception as exc:  # noqa: BLE001
            row["problems"].append(f"engine activity after the kill failed: {type(exc).__name__}: {exc}")
            return set()

    # ------------------------------------------------------------------ faults that must roll back

    def rolled_back(
        self, host: Host, done: Outcome, config: bytes, pid: int | None, refused_ok: bool, copy_may_stay: bool = False
    ) -> list[str]:
        """Problems with what a failed run left: the engine on the old root with everything, the config
        byte-identical, no copy left on the target (unless `copy_may_stay`: an engine has run on it)."""
        problems = []
        if done.code == 0 or (done.code == 2 and not refused_ok):
            problems.append(f"expected a failure, got {done.brief()}")
        if settle_engine(host.nb) != "was running":
            problems.append("the engine was not running after the failure")
        root = engine_root(host.nb.daemon)
        if root != str(host.nb.old_root):
            problems.append(f"the engine runs on {root}, not the old root")
        with host.nb.daemon.client() as client:
            missing = host.before - engine_objects(client)
        if missing:
            self.lost += len(missing)
            problems.append(f"LOST {sorted(missing)}")
        if host.nb.daemon_json.read_bytes() != config:
            problems.append("daemon.json is not byte-identical")
        # The SDK's local-mode directory is set up before any migration, and is the tool's to keep.
        ours = ("lost+found", "filler.bin", ".sagemaker-local")
        leftovers = [p.name for p in host.ebs_disk.path.iterdir() if p.name not in ours]
        if copy_may_stay:
            leftovers = [name for name in leftovers if name != host.nb.target.name]
        if leftovers:
            problems.append(f"left on the target volume: {leftovers}")
        if host.phase() is not None:
            problems.append("a journal was left behind")
        if pid is not None and host.nb.daemon.pid() != pid:
            problems.append("the engine was restarted")
        return problems

    def enospc(self, runs: int) -> None:
        rows = []
        for index in range(runs):
            host = Host(self, f"enospc{index}")
            try:
                rows.append({"run": index, **self._enospc_run(host)})
            finally:
                host.close()
        self._rollback_figures("enospc", "target filling mid-copy", rows)

    def _enospc_run(self, host: Host) -> dict:
        config = host.nb.daemon_json.read_bytes()
        proc = host.start_bootstrap()
        # Docker stopping or the copy begun: after the room check passed, so the copy itself meets ENOSPC.
        wait(
            lambda: host.phase() in ("stopping", "copying") or host.staging().exists() or proc.poll() is not None,
            RUN_TIMEOUT_S,
            every=0.005,
        )
        filled = proc.poll() is None
        filled_in = host.phase()
        if filled:
            host.ebs_disk.fill(leave_mb=5)
        out, err = proc.communicate(timeout=RUN_TIMEOUT_S)
        done = Outcome.of(proc.returncode, out, err, 0)
        hit = filled and "no space left" in (done.text + self._log_text(host)).lower()
        problems = self.rolled_back(host, done, config, None, refused_ok=False)
        return {"fault_hit": hit, "filled_in": filled_in, "outcome": done.brief(), "problems": problems}

    def inodes(self, runs: int) -> None:
        rows = []
        for index in range(runs):
            host = Host(self, f"inodes{index}", ebs_mkfs=("-N", "64"))
            try:
                config, pid = host.nb.daemon_json.read_bytes(), host.nb.daemon.pid()
                # The fault is real only if the copy cannot fit in the inodes, while the bytes would fit.
                files = sum(1 + len(dirs) + len(names) for _, dirs, names in os.walk(host.nb.old_root))
                short_of_inodes = os.statvfs(host.ebs_disk.path).f_favail < files
                done = host.bootstrap()
                text = (done.text + self._log_text(host)).lower()
                refused = done.code == 2 and "inode" in text
                hit = short_of_inodes and (refused or "no space left" in text or "inode" in text)
                problems = self.rolled_back(host, done, config, pid if refused else None, refused_ok=True)
                rows.append({"run": index, "fault_hit": hit, "outcome": done.brief(), "refused_up_front": refused,
                             "problems": problems})  # fmt: skip
            finally:
                host.close()
        self._rollback_figures("inodes", "target out of inodes", rows)

    def truncated(self, runs: int) -> None:
        rows = []
        host = Host(self, "truncated")
        try:
            original = host.nb.daemon_json.read_bytes()
            pid = host.nb.daemon.pid()
            for index in range(runs):
                broken = original[: self.rng.randrange(1, len(original) - 1)]
                host.nb.daemon_json.write_bytes(broken)
                done = host.bootstrap()
                problems = []
                if done.code != 2:
                    problems.append(f"expected exit 2, got {done.brief()}")
                if host.nb.daemon_json.read_bytes() != broken:
                    problems.append("the truncated daemon.json was changed")
                if host.nb.daemon.pid() != pid or not ping(host.nb.daemon):
                    problems.append("the engine was stopped or restarted")
                if host.nb.target.exists() or host.staging().exists():
                    problems.append("a copy was started")
                if "Traceback" in done.stderr:
                    problems.append(f"a traceback on stderr: {done.stderr.strip()[-300:]!r}")
                rows.append({"run": index, "fault_hit": True, "cut_at": len(broken), "outcome": done.brief(),
                             "stderr_lines": len(done.stderr.strip().splitlines()), "problems": problems})  # fmt: skip
                host.nb.daemon_json.write_bytes(original)
            with host.nb.daemon.client() as client:
                missing = host.before - engine_objects(client)
            if missing:
                self.lost += len(missing)
                rows[-1]["problems"].append(f"LOST {sorted(missing)}")
        finally:
            host.close()
        self._rollback_figures("truncated", "truncated daemon.json", rows)

    def engine_killed(self, runs: int) -> None:
        rows = []
        for mode in ("after start", "after it answers"):
            for index in range(runs):
                host = Host(self, f"enginekill-{mode.split()[-1]}{index}")
                try:
                    rows.append({"mode": mode, "run": index, **self._engine_killed_run(host, mode)})
                finally:
                    host.close()
        self._rollback_figures("engine_killed", "engine killed on the new root", rows)
        waits = [r["wait_s"] for r in rows if r["wait_s"] is not None]
        self.figures["engine_killed"]["max_wait_s"] = max(waits) if waits else None

    def _engine_killed_run(self, host: Host, mode: str) -> dict:
        """The start command starts dockerd and SIGKILLs it (at once, or once it first answers), the first
        time only: the rollback's own start then works. The tool's wait is from the kill to the rollback's
        first step that touches the service (its stop command; else its start, else its exit)."""
        daemon = host.nb.daemon
        marks = {name: host.dir / f"{name}-marks" for name in ("start", "stop", "killed")}
        wait_answer = (
            f"while ! curl -sf --max-time 1 --unix-socket {shlex.quote(str(daemon.socket))} http://d/_ping >/dev/null;"
            " do sleep 0.02; done; "
            if mode == "after it answers"
            else ""
        )
        start_script, stop_script = host.dir / "start-then-kill.sh", host.dir / "stop.sh"
        start_script.write_text(
            "#!/bin/sh\n"
            f"date +%s.%N >> {shlex.quote(str(marks['start']))}\n"
            f"if [ -e {shlex.quote(str(marks['killed']))} ]; then {daemon.start_command()} exit 0; fi\n"
            f"setsid {shlex.join(daemon.argv())} >>{shlex.quote(str(daemon.log_path))} 2>&1 </dev/null &\n"
            # The daemon and what it started (its containerd) die together, as a service manager kills a
            # unit's whole cgroup, and it is reaped at once: no zombie keeps its pid alive.
            f"pid=$!\n{wait_answer}kill -9 $(pgrep -P $pid) $pid 2>/dev/null; wait $pid\n"
            f"date +%s.%N > {shlex.quote(str(marks['killed']))}\n"
        )
        stop_script.write_text(
            f"#!/bin/sh\ndate +%s.%N >> {shlex.quote(str(marks['stop']))}\n{daemon.stop_command()}\n"
        )
        config = host.nb.daemon_json.read_bytes()
        done = host.bootstrap(
            start_cmd=f"sh {shlex.quote(str(start_script))}", stop_cmd=f"sh {shlex.quote(str(stop_script))}"
        )
        seen = {
            name: [float(t) for t in path.read_text().split()] if path.exists() else [] for name, path in marks.items()
        }
        kill_time = seen["killed"][0] if seen["killed"] else None
        waited = None
        if kill_time is not None:
            after = sorted(t for t in seen["stop"] + seen["start"] if t > kill_time) or [time.time()]
            waited = round(after[0] - kill_time, 2)
        problems = self.rolled_back(host, done, config, None, refused_ok=False, copy_may_stay=True)
        if kill_time is None:
            problems.append("the start command never killed the engine")
        elif waited is not None and waited > PROMPT_WAIT_S:
            problems.append(f"the tool waited {waited}s on a dead engine (its timeout is {TOOL_START_TIMEOUT_S}s)")
        log(f"engine killed {mode}: {done.brief()}; waited {waited}s, run {done.seconds:.1f}s in all")
        return {"fault_hit": kill_time is not None, "outcome": done.brief(), "wait_s": waited,
                "tool_seconds": round(done.seconds, 2), "target_kept": host.nb.target.exists(),
                "agent_log_tail": self._log_text(host).splitlines()[-12:] if problems else [],
                "problems": problems}  # fmt: skip

    def _log_text(self, host: Host) -> str:
        return "\n".join(p.read_text(errors="replace") for p in host.state.rglob("*.log") if p.is_file())

    def _rollback_figures(self, name: str, label: str, rows: list[dict]) -> None:
        figures = {
            "label": label,
            "runs": len(rows),
            "fault_hit": sum(bool(r["fault_hit"]) for r in rows),
            "clean": sum(not r["problems"] for r in rows),
            "detail": rows,
        }
        self.figures[name] = figures
        for row in rows:
            if not row["fault_hit"]:
                self.fail(f"{name} run {row['run']}: the fault was not produced ({row['outcome']})")
            for problem in row["problems"]:
                self.fail(f"{name} {row.get('mode', '')} run {row['run']}: {problem}")

    # ---------------------------------------------------------------------------- diskguard race

    def diskguard(self, races: int, starts: int = 50) -> None:
        registry = bed.Registry(self.workdir / "registry")
        (self.workdir / "registry").mkdir()
        registry.start()
        rows = []
        try:
            for index in range(races):
                rows.append(self._diskguard_race(registry, index, starts))
        finally:
            registry.stop()
        figures = {
            "races": len(rows),
            "container_starts": sum(r["started"] for r in rows),
            "in_use_images_lost": sum(r["lost_while_in_use"] for r in rows),
            "in_use_images_absent_until_put_back": sum(r["absent_while_in_use"] - r["lost_while_in_use"] for r in rows),
            "images_removed_by_guard": sum(r["guard_removed"] for r in rows),
            "creates_in_flight_met": {
                "kept_before_the_delete": sum(r["kept_for_a_create"] for r in rows),
                "put_back_after_it": sum(r["put_back"] for r in rows),
            },
            "containers_that_could_not_read_their_image": sum(r["bad_reads"] for r in rows),
            "inconclusive_checks": sum(r["check_errors"] for r in rows),
            "detail": rows,
        }
        self.figures["diskguard"] = figures
        self.lost += figures["in_use_images_lost"]
        for row in rows:
            if row["guard_removed"] == 0:
                self.fail(f"diskguard race {row['race']}: the guard removed nothing: the race proved nothing")
            if row["started"] < starts:
                self.fail(f"diskguard race {row['race']}: only {row['started']} of {starts} containers started")
            if row["guard_exit"] != 0:
                self.fail(f"diskguard race {row['race']}: the guard exited {row['guard_exit']}: {row['guard_err']}")
            if row["bad_reads"]:
                self.fail(f"diskguard race {row['race']}: {row['bad_reads']} containers could not read their image")

    def _diskguard_race(self, registry: bed.Registry, index: int, starts: int) -> dict:
        workdir = self.workdir / f"guard{index}"
        workdir.mkdir()
        pad_mb = 12
        with bed.engine_on_disk(workdir, 400) as (daemon, disk):
            refs = []
            with daemon.client(timeout=300) as client:
                for n in range(6):
                    ref = f"{registry.address}/race{index}/img{n}:1"
                    self.images.build(client, ref, size_mb=pad_mb, cmd=["sh", "-c", "echo ran"])
                    for line in client.api.push(ref.rsplit(":", 1)[0], tag="1", stream=True, decode=True):
                        if "error" in line:
                            raise RuntimeError(line["error"])
                    refs.append(ref)
                st = os.statvfs(disk.path)  # fill to about 84% used, then make room for three pulls back
                used, avail = (st.f_blocks - st.f_bfree) * st.f_frsize, st.f_bavail * st.f_frsize
                disk.fill((used + avail) * 0.16 / 2**20)
                for ref in refs[:3]:
                    client.images.remove(ref)
            env = hermetic_env(workdir, {"DOCKER_HOST": daemon.host})
            since = int(time.time())
            guard = subprocess.Popen(
                [sys.executable, "-m", "agent", "diskguard", "run", "--interval", "3600",
                 "--high", "80", "--low", "72", "--min-age", "0s"],
                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            lock = threading.Lock()
            tally = {"started": 0, "absent_while_in_use": set(), "bad_reads": 0, "check_errors": 0}
            rng = random.Random(self.rng.randrange(2**32))
            choices = [rng.choice(refs) for _ in range(starts)]

            def work(ref: str) -> None:
                with daemon.client(timeout=300) as client:
                    for _attempt in range(8):
                        with contextlib.suppress(Exception):
                            client.images.pull(ref)
                        try:
                            container = client.containers.run(
                                ref, ["sh", "-c", "sleep 1; cat /pad.bin | wc -c"], network_mode="none", detach=True
                            )
                        except docker.errors.DockerException:
                            continue  # pruned between the pull and the create: pull again, as a user would
                        with lock:
                            tally["started"] += 1
                        image_id = container.attrs["Image"]
                        finished = False
                        while not finished:
                            try:
                                container.reload()
                                finished = container.status not in ("created", "running")
                                client.images.get(image_id)
                            except docker.errors.ImageNotFound:
                                with lock:
                                    tally["absent_while_in_use"].add((container.id, image_id, container.status))
                            except Exception:  # noqa: BLE001 - a slow engine: neither proof of loss nor of keeping
                                with lock:
                                    tally["check_errors"] += 1
                            time.sleep(0.2)
                        output = container.logs().decode().strip()
                        if output != str(pad_mb * 1024 * 1024):
                            with lock:
                                tally["bad_reads"] += 1
                        container.remove()
                        return

            threads = [threading.Thread(target=work, args=(ref,)) for ref in choices]
            try:
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join(RUN_TIMEOUT_S)
            finally:
                guard.send_signal(signal.SIGTERM)
                _, guard_err = guard.communicate(timeout=60)
            with daemon.client() as client:
                events = list(client.events(since=since, until=int(time.time()) + 1, decode=True,
                                            filters={"type": "image", "event": "delete"}))  # fmt: skip
            guard_log = workdir / "state" / "logs" / "agent.log"
            guard_events = [json.loads(line) for line in guard_log.read_text().splitlines()]
        named = [event["event"] for event in guard_events]
        put_back = {event["id"] for event in guard_events if event["event"] == "diskguard.put_back"}
        absent = {image for _, image, _ in tally["absent_while_in_use"]}
        row = {
            "race": index,
            "started": tally["started"],
            "absent_while_in_use": len(absent),
            "lost_while_in_use": len(absent - put_back),  # absent, and never put back by the guard
            "absent_while": sorted({status for _, _, status in tally["absent_while_in_use"]}),
            "guard_removed": len(events),
            "kept_for_a_create": named.count("diskguard.kept_for_a_create"),
            "put_back": named.count("diskguard.put_back"),
            "bad_reads": tally["bad_reads"],
            "check_errors": tally["check_errors"],
            "guard_exit": guard.returncode,
            "guard_err": guard_err.strip()[-300:],
        }
        log(f"diskguard race {index}: {json.dumps(row)}")
        return row

    # ----------------------------------------------------------------------------------- secrets

    def secrets(self) -> None:
        secret_env = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
        secret_file = "je7MtGbClwBF/2Zp9Utk+h3yCo8nvbEXAMPLEKEY"
        proxy_password = "pa/ss"
        proxy = f"http://user:{urllib.parse.quote(proxy_password, safe='')}@host:3128"
        canary = f"smdiag-canary-{self.rng.randrange(10**9)}"
        forms = {}
        for label, value in (("env secret", secret_env), ("credentials-file secret", secret_file)):
            forms[f"{label}, raw"] = value
            forms[f"{label}, URL-encoded"] = urllib.parse.quote(value, safe="")
            forms[f"{label}, base64"] = base64.b64encode(value.encode()).decode()
        forms["proxy password, as in the URL"] = urllib.parse.quote(proxy_password, safe="")
        forms["proxy password, decoded"] = proxy_password
        forms["proxy credentials, base64"] = base64.b64encode(f"user:{proxy_password}".encode()).decode()

        host = Host(self, "secrets")
        fixtures = self.workdir / "secret-fixtures"  # ours: holds the secrets, never scanned
        fixtures.mkdir()
        (fixtures / "aws-credentials").write_text(
            f"[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = {secret_file}\n"
        )
        # The command prints each secret in every form, and the proxy URL as it is in the environment; the
        # proxy password's other forms are counted in case the tool decodes them.
        printed = [value for form, value in forms.items() if not form.startswith("proxy")] + [proxy]
        leak_lines = "".join(f"echo {shlex.quote(f'{canary} {v}')}\n" for v in printed)
        leak_lines += f"echo {shlex.quote(f'{canary} ' + ' '.join(printed))}\n"
        leaky_stop = fixtures / "leaky-stop.sh"
        leaky_stop.write_text("#!/bin/sh\n" + leak_lines + leak_lines.replace("\n", " >&2\n") + "exit 3\n")
        first_start = fixtures / "start-marker"
        leaky_start = fixtures / "leaky-start.sh"
        leaky_start.write_text(
            f"#!/bin/sh\nif [ -e {first_start} ]; then {host.nb.daemon.start_command()} exit 0; fi\n"
            f"touch {first_start}\n{leak_lines}exit 4\n"
        )
        env = host.env(
            AWS_SECRET_ACCESS_KEY=secret_env,
            AWS_ACCESS_KEY_ID="AKIAIOSFODNN7EXAMPLE",
            AWS_SHARED_CREDENTIALS_FILE=str(fixtures / "aws-credentials"),
            HTTPS_PROXY=proxy,
            HTTP_PROXY=proxy,
            https_proxy=proxy,
        )
        runs_made: list[tuple[str, Outcome]] = []
        try:
            variants = [  # (label, global options, --json, failing command)
                ("bootstrap --json, failing stop command", [], True, {"stop_cmd": f"sh {leaky_stop}"}),
                ("bootstrap (text), failing stop command", [], False, {"stop_cmd": f"sh {leaky_stop}"}),
                ("bootstrap --verbose, failing stop command", ["--verbose"], False, {"stop_cmd": f"sh {leaky_stop}"}),
                ("bootstrap --json, failing start command", [], True, {"start_cmd": f"sh {leaky_start}"}),
            ]
            for label, options, as_json, cmds in variants:
                argv = host.argv(**cmds)
                if not as_json:
                    argv.remove("--json")
                argv[3:3] = options  # before the command: [python, -m, agent, *options, bootstrap, ...]
                started = time.monotonic()
                done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
                runs_made.append(
                    (label, Outcome.of(done.returncode, done.stdout, done.stderr, time.monotonic() - started))
                )
                log(f"secrets: {label}: {runs_made[-1][1].brief()[:160]}")
                settle_engine(host.nb)
            for args in (["last-failure"], ["last-failure", "--json"], ["diskguard", "status", "--json"]):
                done = subprocess.run([sys.executable, "-m", "agent", *args], env=env, capture_output=True, text=True,
                                      timeout=RUN_TIMEOUT_S)  # fmt: skip
                runs_made.append((f"smdiag {' '.join(args)}", Outcome.of(done.returncode, done.stdout, done.stderr, 0)))
            scanned: dict[str, str] = {}
            for label, outcome in runs_made:
                scanned[f"{label}: stdout"] = outcome.stdout
                scanned[f"{label}: stderr"] = outcome.stderr
            for top in (host.state, host.dir / "etc", host.dir / "home", host.dir / "cache"):
                for path in sorted(top.rglob("*")) if top.exists() else []:
                    if path.is_file():
                        scanned[str(path.relative_to(host.dir))] = path.read_bytes().decode(errors="replace")
            counts = {form: 0 for form in forms}
            where: dict[str, list[str]] = {}
            for name, text in scanned.items():
                for form, needle in forms.items():
                    n = text.count(needle)
                    if n:
                        counts[form] += n
                        where.setdefault(form, []).append(name)
            canary_seen = [name for name, text in scanned.items() if canary in text]
            failed_as_expected = all(o.code == 1 for label, o in runs_made if label.startswith("bootstrap"))
            figures = {
                "runs": sum(label.startswith("bootstrap") for label, _ in runs_made),
                "outputs_and_files_scanned": len(scanned),
                "leaked": sum(counts.values()),
                "by_form": counts,
                "where": where,
                "canary_seen_in": canary_seen,
                "detail": [{"run": label, "outcome": o.brief()} for label, o in runs_made],
            }
            self.figures["secrets"] = figures
            self.leaked += figures["leaked"]
            if not canary_seen:
                self.fail("secrets: the failing command's output reached no output or file: the scan proved nothing")
            if not failed_as_expected:
                self.fail(f"secrets: a bootstrap with a failing command did not exit 1: {figures['detail']}")
            if figures["leaked"]:
                log(f"secrets: LEAKED {json.dumps({k: v for k, v in counts.items() if v})} in {json.dumps(where)}")
        finally:
            host.close()


# --------------------------------------------------------------------------------------------- report


def table(suite: Suite) -> str:
    f = suite.figures
    lines = [f"{'fault':<44} {'runs':>5} {'fault hit':>10} {'intact':>8} {'lost':>6} {'leaked':>7}  notes"]

    def line(label, runs, hit, intact, lost, leaked, notes=""):
        lines.append(f"{label:<44} {runs!s:>5} {hit!s:>10} {intact!s:>8} {lost!s:>6} {leaked!s:>7}  {notes}")

    if "sigkill" in f:
        s = f["sigkill"]
        phases = ", ".join(f"{k} {v}" for k, v in sorted(s["phases_hit"].items()))
        line("SIGKILL bootstrap, activity, rerun", s["runs"], f"{s['hit_intended']}/{s['runs']}",
             f"{s['intact']}/{s['runs']}", s["lost_objects"], "-",
             f"reruns completed {s['reruns_completed']}/{s['runs']}; kept both {s['kept_both']}; "
             f"server running after {s['server_running_after']}/{s['runs']}; hit: {phases}")  # fmt: skip
    for name in ("enospc", "inodes", "truncated", "engine_killed"):
        if name in f:
            r = f[name]
            notes = ""
            if name == "engine_killed":
                notes = "waits: " + ", ".join(f"{d['mode']} {d['wait_s']}s" for d in r["detail"])
            if name == "inodes":
                notes = f"refused up front {sum(bool(d.get('refused_up_front')) for d in r['detail'])}"
            lost = sum(sum(p.startswith("LOST") for p in d["problems"]) for d in r["detail"])
            line(r["label"], r["runs"], f"{r['fault_hit']}/{r['runs']}", f"{r['clean']}/{r['runs']}", lost, "-", notes)
    if "diskguard" in f:
        g = f["diskguard"]
        line("diskguard run vs container starts", g["container_starts"], f"{g['images_removed_by_guard']} pruned",
             "-", g["in_use_images_lost"], "-",
             f"in-use images lost {g['in_use_images_lost']}, "
             f"absent until put back {g['in_use_images_absent_until_put_back']}; "
             f"creates in flight: kept {g['creates_in_flight_met']['kept_before_the_delete']}, "
             f"put back {g['creates_in_flight_met']['put_back_after_it']}; "
             f"inconclusive polls {g['inconclusive_checks']}")  # fmt: skip
    if "secrets" in f:
        s = f["secrets"]
        forms = ", ".join(f"{k} {v}" for k, v in s["by_form"].items() if v) or "none in any form"
        line("planted secrets (raw, URL-encoded, base64)", s["runs"], f"{len(s['canary_seen_in'])} seen", "-", "-",
             s["leaked"], f"{s['outputs_and_files_scanned']} outputs/files scanned; {forms}")  # fmt: skip
    for name in ("enospc", "inodes", "truncated", "engine_killed"):
        for d in f.get(name, {}).get("detail", []):
            mode = f" {d['mode']}" if "mode" in d else ""
            lines.append(
                f"  {name}{mode} run {d['run']}: {d['outcome']}"
                + (f" PROBLEMS: {d['problems']}" if d["problems"] else "")
            )
    if "sigkill" in f:
        lines.append("")
        lines.append("SIGKILL runs: aimed at -> hit (delay, journal): engine after the kill | rerun | further | lost")
        for r in f["sigkill"]["detail"]:
            lines.append(
                f"  {r['run']:>2} {r['point']:>14} -> {r['hit']:<14} (+{r['delay_s']:.2f}s, "
                f"journal {r['journal_at_kill']}): {r['engine_after_kill']}"
                f" on {r['root_after_kill']} | {r['rerun']} | {r['further_rerun'] or '-'} | {r['lost']}"
                + (f" {r['missing']}" if r["missing"] else "")
                + (f" PROBLEMS: {r['problems']}" if r["problems"] else "")
            )
    lines.append("")
    lines.append(f"lost objects: {suite.lost}   leaked secrets: {suite.leaked}   failed checks: {len(suite.failures)}")
    lines += [f"  - {failure}" for failure in suite.failures]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=None, help="SIGKILL runs (default 20; 3 with --short)")
    parser.add_argument("--races", type=int, default=None, help="diskguard races (default 2; 1 with --short)")
    parser.add_argument("--short", action="store_true", help="a few runs of each fault (the test suite's form)")
    parser.add_argument("--json", action="store_true", help="the figures as JSON on stdout (the table on stderr)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--only", default=",".join(SCENARIOS), help=f"comma-separated: {','.join(SCENARIOS)}")
    args = parser.parse_args()
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(only) - set(SCENARIOS)
    if unknown:
        print(
            f"faults.py: unknown scenario {', '.join(sorted(unknown))}: choose from {', '.join(SCENARIOS)}",
            file=sys.stderr,
        )
        return 2
    runs = args.runs if args.runs is not None else (3 if args.short else 20)
    few = 1 if args.short else 3
    races = args.races if args.races is not None else (1 if args.short else 2)
    seed = args.seed if args.seed is not None else random.randrange(2**31)
    try:
        bed.check_prerequisites()
    except bed.BedUnavailable as exc:
        print(f"faults.py: {exc}", file=sys.stderr)
        return 2
    agent_file = subprocess.run([sys.executable, "-c", "import agent; print(agent.__file__)"], capture_output=True,
                                text=True, env={**os.environ, "PYTHONPATH": str(REPO)}).stdout.strip()  # fmt: skip
    log(f"fault suite: seed {seed}, {runs} SIGKILL runs, {few} of each other fault; agent under test: {agent_file}")
    workdir = Path(tempfile.mkdtemp(prefix="smflt-", dir="/tmp"))
    (workdir / "images").mkdir()
    suite = Suite(workdir, random.Random(seed), bed.ImageFactory(workdir / "images"))
    started = time.monotonic()
    try:
        if set(only) - {"diskguard"}:
            suite.prepare()
        steps = {
            "sigkill": lambda: suite.sigkill(runs),
            "enospc": lambda: suite.enospc(few),
            "inodes": lambda: suite.inodes(few),
            "truncated": lambda: suite.truncated(2 if args.short else 5),
            "engine_killed": lambda: suite.engine_killed(few),
            "diskguard": lambda: suite.diskguard(races),
            "secrets": suite.secrets,
        }
        for name in only:
            log(f"--- {name}")
            try:
                steps[name]()
            except Exception as exc:  # noqa: BLE001 - a scenario that could not run is a failed check
                suite.fail(f"{name} could not run: {type(exc).__name__}: {exc}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    ok = suite.lost == 0 and suite.leaked == 0 and not suite.failures
    report = table(suite)
    summary = {
        "ok": ok,
        "lost": suite.lost,
        "leaked": suite.leaked,
        "failures": suite.failures,
        "seed": seed,
        "seconds": round(time.monotonic() - started, 1),
        "agent": agent_file,
        "figures": suite.figures,
    }
    if args.json:
        print(report, file=sys.stderr)
        print(json.dumps(summary, indent=2, default=str))
    else:
        print(report)
        print(f"({summary['seconds']} s, seed {seed})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
