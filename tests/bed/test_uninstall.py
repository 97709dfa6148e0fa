"""`smdiag uninstall` and `smdiag diskguard stop`: the way back out.

The first test installs as a notebook does (lifecycle-config/on-start.sh on the bed's notebook-like host,
test_onstart's `Notebook`, every path under the test's directory), adds the docker-compose shim `smdiag
fix` writes for a Compose v5 user, and uninstalls: nothing of smdiag's may be left but what uninstall said
it kept. No systemd runs on the test machine, so the others give the guard's unit to `systemctl` stood in
for at its interface (its verbs, exit status and stderr; it runs the unit's ExecStart), as
tests/unit/test_guard_unit.py does.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from test_onstart import Notebook

from agent.waiting import wait_until

# It pip-installs this checkout, as test_onstart's tests do: on their one worker.
pytestmark = [pytest.mark.bed, pytest.mark.xdist_group("installs-the-checkout")]

UNIT = "smdiag-diskguard.service"
COMPOSE_V5 = {"SchemaVersion": "0.1.0", "Vendor": "smdiag tests", "Version": "v5.0.1", "ShortDescription": "Compose"}


@pytest.fixture
def notebook(host, tmp_path, hermetic_env):
    return Notebook(host(root_mb=400, ebs_mb=1024), tmp_path, hermetic_env)


def tree(top: Path, skip: list[Path]) -> dict[Path, str]:
    """Every path under `top` (not under `skip`) -> the sha256 of a file's bytes, a link's target, or "dir"."""
    found = {}
    for here, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if Path(here, d) not in skip]
        for name in dirs + files:
            path = Path(here, name)
            if path.is_symlink():
                found[path] = "-> " + os.readlink(path)
            elif path.is_dir():
                found[path] = "dir"
            elif path.suffix != ".img":  # the loop disks' images: what the disks hold is walked instead
                found[path] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def compose_v5_user(nb: Notebook, tmp_path: Path) -> dict[str, str]:
    """The notebook's environment for a user whose Docker has only a Compose v5 plugin, and no
    docker-compose on PATH but the bin dir `smdiag` is linked into (TESTBED.md, "Compose v2+ stand-in")."""
    tools, plugin = tmp_path / "tools", tmp_path / "docker-config" / "cli-plugins" / "docker-compose"
    tools.mkdir()
    (tools / "docker").symlink_to(shutil.which("docker"))
    plugin.parent.mkdir(parents=True)
    plugin.write_text(
        f"#!/bin/sh\n[ \"$1\" = docker-cli-plugin-metadata ] && {{ echo '{json.dumps(COMPOSE_V5)}'; exit 0; }}\n"
        'shift; [ "$1" = version ] && { echo "Docker Compose version v5.0.1"; exit 0; }\n'
        'exec /usr/bin/docker-compose "$@"\n'
    )
    plugin.chmod(0o755)
    return {**nb.base_env, "SMDIAG_STATE_DIR": str(nb.state), "PATH": f"{tools}:{nb.link.parent}",
            "DOCKER_CONFIG": str(plugin.parent.parent)}  # fmt: skip


def run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=180)


def test_uninstall_after_on_start_leaves_nothing_but_what_it_says_it_kept(notebook, tmp_path):
    nb = notebook
    user = compose_v5_user(nb, tmp_path)
    nb.link.parent.mkdir()  # as /usr/local/bin is there on any host
    tools_own = [tmp_path / "home" / ".cache" / "pip", tmp_path / "home" / ".rustup"]
    """What this machine's pip (and the rustup it finds on PATH) keep in the home while installing smdiag."""
    skip = [nb.host.old_root, nb.host.target, *tools_own, nb.state / "venvs", nb.state / "logs"]
    """Not compared: Docker's data-roots (the engine writes there; the one bootstrap made must be listed as
    kept), the tools' own, and in the state dir (kept) the agent's environment and the log."""
    before = tree(tmp_path, skip)
    done, _ = nb.on_start()
    steps = {step: state for step, (state, _) in nb.steps().items()}
    assert set(steps.values()) == {"ok"}, (steps, done.stdout)
    fixed = run([str(nb.link), "doctor", "--fix", "--only", "compose", "--yes"], user)
    shim = nb.link.parent / "docker-compose"
    assert fixed.returncode == 0 and shim.exists(), fixed.stdout + fixed.stderr
    smdiag = [str(nb.link)]  # the user's command: uninstall removes the very link it was started by
    env = {**nb.base_env, "SMDIAG_STATE_DIR": str(nb.state)}
    installed = tree(tmp_path, skip)

    planned = run([*smdiag, "uninstall", "--dry-run", "--json"], env)
    assert planned.returncode == 0, planned.stderr
    plan = json.loads(planned.stdout)
    assert [r["what"] for r in plan["removed"]] == ["disk guard", "kernel hook", "kernel hook", "hook directory",
                                                    "compose shim", "link"], plan  # fmt: skip
    assert {r["path"] for r in plan["removed"]} >= {str(shim), str(nb.link), str(nb.state / "kernel-hook")}
    said = run([*smdiag, "uninstall", "--dry-run"], env).stdout
    assert said.startswith("would remove:\n") and said.rstrip().endswith("(dry run: nothing changed)"), said
    assert tree(tmp_path, skip) == installed and len(nb.guards()) == 1

    done = run([*smdiag, "uninstall"], env)
    assert done.returncode == 0, done.stdout + done.stderr
    text = done.stdout
    assert text.startswith("removed:\n") and "(dry run" not in text, text
    for removal in plan["removed"]:
        assert f"{removal['what']}: {removal['path'] or ''}" in text, (removal, text)
    assert f"Docker's data-root stays at {nb.host.target}. To move it back:" in text
    old = nb.host.old_root  # what daemon.json named before bootstrap
    assert f'in {nb.host.daemon_json}, set "data-root" back to "{old}"' in text, text
    assert f"rsync -aHAX --delete {nb.host.target}/ {old}/" in text and "sudo systemctl daemon-reload" in text
    assert "lifecycle configuration installs smdiag again at the next start" in text
    assert "a restart with the lifecycle configuration detached does all of this but the copy" in text

    # Nothing of smdiag's runs or loads any more.
    assert nb.guards() == [] and not nb.link.exists() and not nb.link.is_symlink() and not shim.exists()
    assert not (nb.state / "kernel-hook").exists() and not list(nb.envs.glob("*/lib/*/site-packages/smdiag*"))
    for env_dir in (nb.plain_env, nb.sdk_env):
        assert nb.kernel_start(env_dir) == {"hook": False, "wrapper": False}
    assert nb.host.root_dir() == str(nb.host.target)  # the data-root stays where it is, Docker running there

    # Again: nothing to remove, nothing changed; what is left is exactly what it says it keeps.
    after = tree(tmp_path, skip)
    again = nb.smdiag("uninstall", "--json")
    assert again.returncode == 0, again.stderr
    result = json.loads(again.stdout)
    assert result["removed"] == [] and result["recovered"] == []
    assert tree(tmp_path, skip) == after
    kept = [Path(k["path"]) for k in result["kept"]]
    assert {nb.state, nb.host.target, nb.host.daemon_json, nb.host.sagemaker_config} <= set(kept), kept
    changed = [path for path, digest in after.items() if before.get(path) != digest]
    explained = [*kept, *tools_own]  # a path kept, inside one, or a directory holding one
    unexplained = [p for p in changed if not any(p == k or k in p.parents or p in k.parents for k in explained)]
    assert unexplained == [], "left behind and not listed as kept"
    assert nb.smdiag("uninstall").stdout.startswith("nothing of smdiag's to remove\nkept:\n")

    # What is not smdiag's is named and left alone.
    shim.write_text("#!/bin/sh\necho someone else's docker-compose\n")
    nb.link.symlink_to("/usr/bin/true")
    foreign = json.loads(nb.smdiag("uninstall", "--json").stdout)
    assert [(r["path"], r["detail"]) for r in foreign["left_alone"]] == [
        (str(shim), "not smdiag's shim"), (str(nb.link), "not smdiag's link")
    ]  # fmt: skip
    assert "someone else's" in shim.read_text() and os.readlink(nb.link) == "/usr/bin/true"


SYSTEMCTL = """#!/bin/bash
# Stand-in for systemctl (no systemd runs here), at its interface for the guard's one unit: daemon-reload,
# enable/disable [--now], start, restart, stop. It runs the unit's ExecStart (with its Environment=) and
# stops it with SIGTERM. A verb written into {hold} waits for {release}; one written into {fail} fails once.
echo "$*" >>"{calls}"
if [ -e "{hold}" ] && [ "$1" = "$(cat "{hold}")" ]; then
    touch "{held}"
    while [ ! -e "{release}" ]; do sleep 0.05; done
fi
if [ -e "{fail}" ] && [ "$1" = "$(cat "{fail}")" ]; then
    rm -f "{fail}"
    echo "Failed to $1: Access denied" >&2
    exit 1
fi
verb=$1; shift; now=
[ "${{1:-}}" = --now ] && {{ now=1; shift; }}
unit="$SMDIAG_SYSTEMD_DIR/${{1:-}}"
start_unit() {{
    [ -s "{main_pid}" ] && kill -0 "$(cat "{main_pid}")" 2>/dev/null && return 0
    (eval "exec env $(sed -n 's/^Environment=//p' "$unit") $(sed -n 's/^ExecStart=//p' "$unit")") \\
        </dev/null >>"{output}" 2>&1 &
    echo $! >"{main_pid}"
}}
stop_unit() {{
    [ -s "{main_pid}" ] || return 0
    local pid; pid=$(cat "{main_pid}"); rm -f "{main_pid}"
    kill -TERM "$pid" 2>/dev/null || return 0
    while [ -e "/proc/$pid" ] && [ "$(cut -d' ' -f3 "/proc/$pid/stat")" != Z ]; do sleep 0.05; done
}}
case "$verb" in
    start) start_unit ;;
    restart) stop_unit; start_unit ;;
    stop) stop_unit ;;
    enable) [ -n "$now" ] && start_unit ;;
    disable) [ -n "$now" ] && stop_unit ;;
esac
exit 0
"""


class SystemdHost:
    """A host where systemd runs (its run dir and unit dir are the test's), with the stand-in `systemctl`
    first on PATH, and one Python environment for the kernel hook."""

    def __init__(self, tmp_path: Path, hermetic_env: dict[str, str]) -> None:
        self.files = {name: tmp_path / name for name in ("calls", "hold", "held", "release", "fail", "main_pid",
                                                         "output")}  # fmt: skip
        tools, run_dir, self.unit_dir = tmp_path / "bin", tmp_path / "run-systemd", tmp_path / "systemd"
        for directory in (tools, run_dir, self.unit_dir):
            directory.mkdir()
        (tools / "systemctl").write_text(SYSTEMCTL.format(**self.files))
        (tools / "systemctl").chmod(0o755)
        self.unit = self.unit_dir / UNIT
        self.env_dir = tmp_path / "envs" / "py"
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(self.env_dir)], check=True)
        self.state = Path(hermetic_env["SMDIAG_STATE_DIR"])
        self.env = {**hermetic_env, "PATH": f"{tools}:{os.environ['PATH']}", "SMDIAG_SYSTEMD_RUN_DIR": str(run_dir),
                    "SMDIAG_SYSTEMD_DIR": str(self.unit_dir), "SMDIAG_CONDA_ENVS": str(self.env_dir),
                    "SMDIAG_BIN_DIR": str(tmp_path / "usr-local-bin")}  # fmt: skip

    def smdiag(self, *args: str) -> subprocess.CompletedProcess:
        return run([sys.executable, "-m", "agent", *args], self.env)

    def guard(self) -> int | None:
        """The running guard's pid, as `diskguard status` reads it (from its lock)."""
        from agent.guard.state import guard_pid
        from agent.statedir import StateDir

        return guard_pid(StateDir(self.state))

    def hooked(self) -> bool:
        return bool(list(self.env_dir.glob("lib/*/site-packages/smdiag-kernel-hook.pth")))

    def calls(self) -> list[str]:
        return self.files["calls"].read_text().splitlines()


@pytest.fixture
def systemd_host(tmp_path, hermetic_env, bed_ready):
    made = SystemdHost(tmp_path, hermetic_env)
    yield made
    made.files["release"].touch()
    with_pid = made.files["main_pid"]
    if with_pid.exists():
        subprocess.run(["kill", with_pid.read_text().strip()], capture_output=True)


def test_diskguard_stop_stops_and_disables_the_unit_and_is_safe_to_repeat(systemd_host):
    h = systemd_host
    started = h.smdiag("diskguard", "start", "--systemd", "--json")
    assert started.returncode == 0, started.stderr
    pid = json.loads(started.stdout)["pid"]
    assert h.guard() == pid
    stopped = h.smdiag("diskguard", "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout.splitlines() == [
        f"diskguard stopped (pid {pid}, systemd unit {UNIT}, now disabled)",
        "images are no longer pruned; `smdiag diskguard start` starts it again",
    ]
    assert h.guard() is None and h.calls()[-1] == f"disable --now {UNIT}" and h.unit.exists()
    again = h.smdiag("diskguard", "stop", "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["stopped"] is False
    assert h.smdiag("diskguard", "stop").stdout.startswith(f"diskguard was not running; its unit {UNIT} is disabled")
    restarted = h.smdiag("diskguard", "start", "--systemd", "--json")
    assert restarted.returncode == 0 and h.guard() == json.loads(restarted.stdout)["pid"]


def test_a_failed_uninstall_puts_back_what_it_removed(systemd_host):
    h = systemd_host
    assert h.smdiag("kernels", "enable").returncode == 0 and h.smdiag("diskguard", "start", "--systemd").returncode == 0
    unit_text = h.unit.read_text()
    h.files["fail"].write_text("daemon-reload")  # systemd refuses to re-read its units, once: the unit is gone by then
    failed = h.smdiag("uninstall")
    assert failed.returncode == 1 and failed.stderr.startswith(
        "smdiag: uninstall failed, and put back what it had removed: systemctl daemon-reload failed"
    ), failed.stderr
    assert h.unit.read_text() == unit_text and h.guard() is not None and h.hooked()
    assert h.calls()[-2:] == ["daemon-reload", f"enable --now {UNIT}"]  # systemd runs the unit put back
    # The guard started again from the rollback (signals blocked there) still stops on SIGTERM.
    assert h.smdiag("diskguard", "stop").returncode == 0 and h.guard() is None


def test_a_killed_uninstall_is_put_back_by_the_next_which_then_removes_everything(systemd_host):
    h = systemd_host
    assert h.smdiag("kernels", "enable").returncode == 0 and h.smdiag("diskguard", "start", "--systemd").returncode == 0
    h.files["hold"].write_text("daemon-reload")  # after the guard was stopped and its unit removed
    killed = subprocess.Popen([sys.executable, "-m", "agent", "uninstall"], env=h.env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)  # fmt: skip
    try:
        assert wait_until(h.files["held"].exists, timeout=120), "uninstall never reached systemctl daemon-reload"
        assert not h.unit.exists() and h.guard() is None
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=30)
    finally:
        h.files["release"].touch()  # the stand-in, orphaned by the kill, exits
    h.files["hold"].unlink()
    journal = h.state / "uninstall" / "journal.json"
    assert journal.exists() and h.hooked(), "a killed uninstall leaves its undo behind"

    done = h.smdiag("uninstall")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"put back first what a killed uninstall had removed: restored {h.unit}", lines
    assert lines[1].startswith("put back first what a killed uninstall had removed: started the guard again (pid ")
    assert lines[2] == "removed:" and lines[3].startswith(f"  disk guard: {h.unit} (pid "), lines
    assert not h.unit.exists() and h.guard() is None and not h.hooked() and not journal.exists()
    assert not h.files["main_pid"].exists()  # the stand-in saw the unit's process stop
