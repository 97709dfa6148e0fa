"""The guard: `smdiag diskguard run` (the daemon), `diskguard start` (keeping exactly one running, however
often it is called), `diskguard stop` (the off switch, also uninstall's) and `diskguard status` (whether it
runs, what it last did).

The daemon applies diskguard's policy whenever the engine reports a pull or a container's life changing.
Under systemd it is a unit that restarts on failure; elsewhere (a container, a host without an init
system) a detached process. In both cases the guard's own lock is what makes it single: a second `run`
exits at once, so two racing starts still leave one guard.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import queue
import shlex
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import docker.errors
import psutil
import requests

from agent import disks, fileops
from agent.diskguard import Policy, check_path, enforce, resolve_target
from agent.engine import Engine, validate_host
from agent.errors import Failed
from agent.guard.state import (
    GuardFiles,
    UseRecord,
    events_state,
    guard_pid,
    last_check,
    remember_check,
    remember_events,
)
from agent.host import studio
from agent.journal import Journal, restore_inline, signals_blocked
from agent.log import get_logger
from agent.settings import Settings
from agent.waiting import wait_until

log = get_logger("guard")

UNIT = "smdiag-diskguard.service"
START_TIMEOUT_S = 20
STOP_TIMEOUT_S = 10
SYSTEMCTL_TIMEOUT_S = 30
STATUS_TIMEOUT_S = 5
"""How long `status` waits for the engine: a report of now, where a hung engine is itself the answer."""


def guard_argv(python: str, settings: Settings) -> list[str]:
    """The guard's command line, every setting explicit so that a service manager's bare environment
    runs the same guard."""
    return [
        python, "-m", "agent", "--state-dir", str(settings.state_dir),
        "diskguard", "run", "--docker-host", settings.docker_host,
        "--high", f"{settings.high_pct:g}", "--low", f"{settings.low_pct:g}",
    ]  # fmt: skip


def unit_text(argv: list[str], settings: Settings) -> str:
    """The systemd unit: after docker, restarted on failure, its output in the journal. Pure."""
    return (
        "[Unit]\n"
        "Description=smdiag diskguard: keeps Docker's disk under its high watermark\n"
        "After=docker.service\n"
        "Wants=docker.service\n\n"
        "[Service]\n"
        f"Environment={shlex.quote('SMDIAG_EBS_MOUNT=' + str(settings.ebs_mount))}\n"
        f"ExecStart={shlex.join(argv)}\n"
        "Restart=on-failure\n"
        "RestartSec=10\n\n"
        "[Install]\n"
        "WantedBy=multi-user.target\n"
    )


def systemd_available(settings: Settings) -> bool:
    return settings.systemd_run_dir.is_dir() and shutil.which("systemctl") is not None


def start(settings: Settings, use_systemd: bool | None = None) -> dict:
    """Start the guard unless one of this agent runs; returns how (`systemd`, `detached`), its pid, and
    whether it was already running. A detached guard of an agent since reinstalled is replaced."""
    validate_host(settings.docker_host)  # a guard that could never connect is bad input, now
    use_systemd = systemd_available(settings) if use_systemd is None else use_systemd
    argv = guard_argv(sys.executable, settings)
    files = GuardFiles(settings.state)
    running = guard_pid(settings.state)
    changed = False
    if use_systemd:
        changed = _start_unit(settings, unit_text(argv, settings))
    else:
        if running is not None and _interpreter(running) not in (None, sys.executable):
            _stop(running)
            running, changed = None, True
        if running is None:
            _spawn(argv, files.guard_output)
    pid = _wait_for_guard(files)
    result = {
        "manager": "systemd" if use_systemd else "detached",
        "pid": pid,
        "already_running": running == pid and not changed,
        "replaced": changed,
    }
    log.info("guard.started", **result)
    return result


def running_guard(settings: Settings) -> dict:
    """What `stop` stops, and what `resume` needs to start it again as it was: the unit (when its file is
    there, and whether systemd runs it), the running guard's pid and command line (None when none runs)."""
    unit = settings.systemd_dir / UNIT
    if guard_pid(settings.state) == -1:  # a guard between taking its lock and writing its pid
        wait_until(lambda: guard_pid(settings.state) != -1, START_TIMEOUT_S)
    pid = guard_pid(settings.state)
    if pid == -1:
        raise Failed(f"a guard holds {GuardFiles(settings.state).run_lock} but wrote no pid", "run this again")
    argv = None
    if pid is not None:
        with contextlib.suppress(psutil.Error):
            argv = psutil.Process(pid).cmdline() or None
    there = unit.exists()
    return {"unit": str(unit) if there else None, "systemd": there and systemd_available(settings), "pid": pid,
            "argv": argv}  # fmt: skip


def stop(settings: Settings, remove_unit: bool = False) -> dict:
    """Stop the guard wherever it runs: its unit is disabled as well as stopped (no boot starts it again until
    `diskguard start`), a detached `run` is terminated. With `remove_unit` the unit file goes too (uninstall).
    Safe to re-run: with no guard running it stops nothing. What it found and did."""
    found = running_guard(settings)
    unit = settings.systemd_dir / UNIT
    if found["systemd"]:
        _systemctl("disable", "--now", UNIT)
    if remove_unit and found["unit"]:
        unit.unlink(missing_ok=True)
        if found["systemd"]:
            _systemctl("daemon-reload")
    left = guard_pid(settings.state)
    if left is not None:
        _stop(left)  # a detached guard, or one its unit's stop left behind
    if guard_pid(settings.state) is None:  # a killed guard's pid file, which doctor reports until now
        GuardFiles(settings.state).run_pid.unlink(missing_ok=True)
    result = {**found, "stopped": found["pid"] is not None, "unit_removed": bool(remove_unit and found["unit"])}
    log.info("guard.stopped", **result)
    return result


def resume(settings: Settings, stopped: dict) -> str | None:
    """Start the guard again as `running_guard` found it before a `stop` (the undo of uninstall's): its unit,
    whose file is back by then, or the same detached command line."""
    if stopped["systemd"]:
        _systemctl("daemon-reload")
        _systemctl("enable", "--now", UNIT)
    elif stopped["argv"]:
        _spawn(stopped["argv"], GuardFiles(settings.state).guard_output)
    else:
        return None
    return f"started the guard again (pid {_wait_for_guard(GuardFiles(settings.state))})"


def format_stop(result: dict) -> str:
    """What `diskguard stop` says: what it stopped, and how to have it back."""
    if result["stopped"]:
        how = f"systemd unit {UNIT}, now disabled" if result["systemd"] else "detached"
        said = f"diskguard stopped (pid {result['pid']}, {how})"
    elif result["systemd"]:
        said = f"diskguard was not running; its unit {UNIT} is disabled"
    else:
        return "diskguard was not running: nothing stopped"
    return said + "\nimages are no longer pruned; `smdiag diskguard start` starts it again"


def _interpreter(pid: int) -> str | None:
    with contextlib.suppress(psutil.Error, IndexError):
        return psutil.Process(pid).cmdline()[0]
    return None


def _stop(pid: int) -> None:
    """Terminate the guard `pid`, killing it if it lingers; done when the process has ended, not only once
    it let go of the guard's files (it still runs its teardown then). A process nobody reaps stays a zombie:
    that is ended too (its lock went with its exit)."""
    try:
        process = psutil.Process(pid)
        process.terminate()
        if not wait_until(lambda: _ended(process), STOP_TIMEOUT_S):
            process.kill()
            wait_until(lambda: _ended(process), STOP_TIMEOUT_S)
    except psutil.NoSuchProcess:
        return
    except psutil.AccessDenied:
        raise Failed(
            f"the guard (pid {pid}) runs as another user, which this one may not stop",
            "run it as root: sudo smdiag diskguard stop",
        ) from None


def _ended(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _start_unit(settings: Settings, text: str) -> bool:
    """Write the unit (its old bytes journaled first), then have systemd run it; whether it changed. A
    start that fails, or was killed before systemd took the new unit, leaves the old unit in place."""
    path = settings.systemd_dir / UNIT
    journal = Journal(GuardFiles(settings.state).unit_journal)
    if journal.load() is not None:
        journal.replay()
        _systemctl("daemon-reload")
    with contextlib.suppress(FileNotFoundError):
        if path.read_text() == text:
            _systemctl("enable", UNIT)
            _systemctl("start", UNIT)
            return False
    journal.begin(command="diskguard start", unit=str(path))
    try:
        journal.will("restore", **restore_inline(path))
        fileops.atomic_write(path, text.encode(), 0o644)
        _systemctl("daemon-reload")
        _systemctl("enable", UNIT)
        _systemctl("restart", UNIT)
    except BaseException:
        with signals_blocked():
            journal.replay()
            with contextlib.suppress(Failed, OSError, subprocess.SubprocessError):
                _systemctl("daemon-reload")
        raise
    journal.commit()
    return True


def _systemctl(*args: str) -> None:
    done = subprocess.run(["systemctl", *args], capture_output=True, text=True, timeout=SYSTEMCTL_TIMEOUT_S)
    if done.returncode != 0:
        raise Failed(f"systemctl {' '.join(args)} failed: {done.stderr.strip()}", f"see journalctl -u {UNIT}")


def _spawn(argv: list[str], output: Path) -> None:
    """A detached guard: its own session (no hang-up when the caller's terminal or script ends)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    with open(output, "ab") as out:
        subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _wait_for_guard(files: GuardFiles) -> int:
    pid = wait_until(lambda: guard_pid(files.state), START_TIMEOUT_S)
    if pid is not None:
        return pid
    output = files.guard_output
    tail = ""
    if output.exists():
        tail = (output.read_text(errors="replace").strip().splitlines() or [""])[-1]
    raise Failed(
        f"the guard did not start within {START_TIMEOUT_S}s" + (f": {tail}" if tail else ""),
        f"see {output} and run `smdiag diskguard run` by hand to see why",
    )


def status(settings: Settings, engine: Engine) -> dict:
    """Measured now: what diskguard watches (the engine's data-root and that disk, or on Studio the engine's
    own accounting against its budget, with the space's disks beside it) and its usage; beside it whether
    a `run` guard is active and follows the engine's events, what it last did, and what it knows of image use."""
    pid = guard_pid(settings.state)
    record = UseRecord(settings.state).load()
    now = {"data_root": None, "watched": None, "measured": None, "used_pct": None, "used": None, "avail": None,
           "error": None}  # fmt: skip
    try:
        target = resolve_target(settings, engine, None)
        now.update(data_root=target.root_dir, watched=target.label, measured=target.basis)
        if target.path is None:
            # the space's disks hold the user's files, which diskguard never removes: shown, not pruned for
            space_disks = studio.space_disks(Path.home())
            now.update(budget=target.budget, engine_full=target.engine_full, space_disks=space_disks)
        usage = target.usage(engine.client)
        now.update(used_pct=round(usage.percent, 2), used=usage.used, avail=usage.avail)
    except Failed as exc:
        now["error"] = exc.one_line()
    except OSError as exc:
        now["error"] = f"the data-root {now['data_root']} is not visible from here ({exc.strerror})"
    except (docker.errors.DockerException, requests.RequestException) as exc:
        now["error"] = f"the engine did not give its accounting: {exc}"
    return {
        "guard_running": pid is not None,
        "guard_pid": pid,
        "guard_events": events_state(settings.state) if pid is not None else None,
        "docker_host": engine.host,
        **now,
        "high": settings.high_pct,
        "low": settings.low_pct,
        "images_seen_in_use": len(record.last_used),
        "last_check": last_check(settings.state),
    }


def format_status(report: dict) -> str:
    guard = f"running (pid {report['guard_pid']})" if report["guard_running"] else "not running"
    events = report["guard_events"]
    if report["guard_running"] and events is None:
        guard += ", not following the engine's events yet"
    elif report["guard_running"] and events["following"]:
        guard += ", following the engine's events"
    elif report["guard_running"]:
        lost = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(events["since"]))
        guard += f", lost the engine's events at {lost} ({events['error']}), reconnecting: it answers no pull meanwhile"
    lines = [f"diskguard run: {guard}"]
    if report["error"]:
        lines.append(f"now: {report['error']}")
    elif report["data_root"] is None:
        lines.append(
            f"now: {report['watched']} {disks.human_bytes(report['used'])}, {report['used_pct']:.1f}% of its "
            f"budget, {disks.human_bytes(report['avail'])} left (high {report['high']:g}%, low {report['low']:g}%)"
        )
        lines.append(f"measured: {report['measured']}")
        for disk in report["space_disks"]:
            shown = (
                f"{disk['percent']:.0f}% used, {disks.human_bytes(disk['free'])} free"
                if disk["exists"]
                else "not there yet"
            )
            lines.append(f"{disk['role']} {disk['path']}: {shown} (local mode's inputs and artifacts, not pruned)")
    else:
        lines.append(
            f"now: data-root {report['data_root']} (engine {report['docker_host']}): {report['used_pct']:.1f}% used, "
            f"{disks.human_bytes(report['avail'])} free (high {report['high']:g}%, low {report['low']:g}%)"
        )
    last = report["last_check"]
    if last:
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(last["time"]))
        lines.append(
            f"last check {when} on {last['path']}: {last['before_pct']}% -> {last['after_pct']}%, "
            f"removed {len(last['removed'])}"
        )
    else:
        lines.append("last check: none recorded")
    lines.append(f"images seen in use: {report['images_seen_in_use']}")
    return "\n".join(lines)


class Guard:
    """`diskguard run`: applies the policy whenever the engine reports a pull, a container created,
    started, dying or removed (and every `interval` seconds), records image use from the same events, and
    survives the engine restarting. Idle, it blocks on the event socket and a timer."""

    def __init__(self, settings: Settings, engine: Engine, policy: Policy, path: Path | None, interval: float) -> None:
        check_path(path)
        self.settings = settings
        self.engine = engine
        """Shared by the checks and the event thread: one client, whose pool outlives an engine restart."""
        self.policy = policy
        self.path = path
        self.interval = interval
        self.stop = threading.Event()
        self.wake = threading.Event()
        self.uses: queue.SimpleQueue = queue.SimpleQueue()
        """(kind, image id, epoch) from the event thread, applied by the main loop."""
        self.record = UseRecord(settings.state).load()
        self.files = GuardFiles(settings.state)
        self._stream = None

    def serve(self) -> None:
        """Run until `stop` is set (SIGTERM); only one guard runs per state dir."""
        self.files.directory.mkdir(parents=True, exist_ok=True)
        with open(self.files.run_lock, "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise Failed(
                    f"another diskguard run is active (pid {guard_pid(self.settings.state)})",
                    "stop it first, or leave it: one guard is enough",
                ) from None
            fileops.atomic_write(self.files.run_pid, f"{os.getpid()}\n", mode=0o644)
            self.files.events.unlink(missing_ok=True)  # a killed guard's, not this one's
            log.info("diskguard.started", high=self.policy.high, low=self.policy.low, interval=self.interval)
            threading.Thread(target=self._watch_events, name="diskguard-events", daemon=True).start()
            try:
                while not self.stop.is_set():
                    self._check()
                    self.wake.wait(self.interval)
                    self.wake.clear()
            finally:
                self._apply_uses()
                self.record.save()
                with contextlib.suppress(Exception):
                    if self._stream is not None:
                        self._stream.close()
                self.files.run_pid.unlink(missing_ok=True)
                self.files.events.unlink(missing_ok=True)
                log.info("diskguard.stopped")

    def shutdown(self, *_signal) -> None:
        self.stop.set()
        self.wake.set()

    def _check(self) -> None:
        self._apply_uses()
        try:
            target = resolve_target(self.settings, self.engine, self.path)
            if target.usage(self.engine.client).percent <= self.policy.high:
                self.record.save()
                return
            with fileops.exclusive_lock(self.files.prune_lock):
                outcome = enforce(self.engine.client, target, self.policy, self.record, self.settings.state)
        except (Failed, docker.errors.DockerException, requests.RequestException, OSError) as exc:
            log.warning("diskguard.check_failed", error=str(exc))
            return
        remember_check(self.settings.state, outcome.to_dict())
        log.info(
            "diskguard.pruned",
            before_pct=outcome.before_pct,
            after_pct=outcome.after_pct,
            removed=len(outcome.removed),
            still_over=outcome.after_pct > self.policy.high,
        )

    def _apply_uses(self) -> None:
        while True:
            try:
                kind, image_id, when = self.uses.get_nowait()
            except queue.Empty:
                return
            if kind == "used":
                self.record.used(image_id, when)
            elif kind == "arrived":
                self.record.arrived_at(image_id, when)
            else:
                self.record.forget([image_id])

    def _watch_events(self) -> None:
        """Follow the engine's events; reconnect with backoff when it goes away (a restart). Whether it follows
        them is kept for `status`, the time and cause of a loss from its first failed attempt."""
        backoff = 1.0
        following = None
        lost_since = None
        while not self.stop.is_set():
            try:
                self._stream = self.engine.events(filters={"type": ["image", "container"]})
                log.info("diskguard.watching", host=self.engine.host)
                following = True
                remember_events(self.settings.state, following)
                backoff = 1.0
                self.wake.set()  # the engine may have come back with a fuller disk
                for event in self._stream:
                    self._on_event(event)
            except Exception as exc:  # noqa: BLE001 - any failure of the stream means: reconnect
                if not self.stop.is_set():
                    error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                    log.info("diskguard.events_lost", error=error)
                    if following is not False:
                        following, lost_since = False, time.time()
                    # Each attempt: whether the engine answered tells doctor a waiting guard from a stuck one.
                    remember_events(self.settings.state, False, error, lost_since, self.engine.answers())
            if self.stop.wait(backoff):
                return
            backoff = min(30.0, backoff * 2)

    def _on_event(self, event: dict) -> None:
        action = (event.get("Action") or event.get("status") or "").split(":")[0]
        when = event.get("timeNano", 0) / 1e9 or event.get("time") or time.time()
        with contextlib.suppress(Exception):
            if event.get("Type") == "container" and action in ("create", "start"):
                image_id = self.engine.client.api.inspect_container(event["id"])["Image"]
                self.uses.put(("used", image_id, when))
            elif event.get("Type") == "image" and action in ("pull", "tag"):
                image_id = self.engine.client.api.inspect_image(event["id"])["Id"]
                self.uses.put(("arrived", image_id, when))
            elif event.get("Type") == "image" and action == "delete":
                self.uses.put(("forget", event["id"], when))
        if action in ("pull", "create", "start", "die", "destroy"):  # destroy: its image may go now
            self.wake.set()
