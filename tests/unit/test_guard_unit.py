"""The guard's systemd unit is written under the journal: a start that fails, or is killed, leaves the old unit.

No systemd runs on the test machine, so `systemctl` is a stand-in on PATH at its real interface (its
arguments, exit status and stderr), recording each call; the unit and the "systemd is running" marker
directory are the test's own.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from agent.waiting import wait_until

UNIT = "smdiag-diskguard.service"
OLD_UNIT = "[Service]\nExecStart=/old/python -m agent diskguard run\n"
SYSTEMCTL = """#!/bin/sh
echo "$*" >> "{calls}"
if [ "$1" = restart ]; then
    [ -e "{hold}" ] && {{ touch "{held}"; while [ ! -e "{release}" ]; do sleep 0.05; done; }}
    echo "Job for {unit} failed because the control process exited with error code." >&2
    exit 1
fi
exit 0
"""


def guard_host(tmp_path: Path, hermetic_env: dict[str, str]) -> tuple[dict[str, str], Path, Path]:
    bin_dir, run_dir, unit_dir = tmp_path / "bin", tmp_path / "run-systemd", tmp_path / "systemd"
    for directory in (bin_dir, run_dir, unit_dir):
        directory.mkdir()
    names = {name: tmp_path / name for name in ("calls", "hold", "held", "release")}
    systemctl = bin_dir / "systemctl"
    systemctl.write_text(SYSTEMCTL.format(unit=UNIT, **names))
    systemctl.chmod(0o755)
    (unit_dir / UNIT).write_text(OLD_UNIT)
    env = {**hermetic_env, "PATH": f"{bin_dir}:{os.environ['PATH']}", "SMDIAG_SYSTEMD_RUN_DIR": str(run_dir),
           "SMDIAG_SYSTEMD_DIR": str(unit_dir)}  # fmt: skip
    return env, unit_dir / UNIT, names["calls"]


def start(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "agent", "diskguard", "start"], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip


def test_a_unit_systemd_cannot_start_is_put_back_as_it_was(tmp_path, hermetic_env):
    env, unit, calls = guard_host(tmp_path, hermetic_env)
    out, err = start(env).communicate(timeout=120)
    assert "systemctl restart" in err and "failed" in err, (out, err)
    assert unit.read_text() == OLD_UNIT
    said = calls.read_text().splitlines()
    assert said[-2:] == [f"restart {UNIT}", "daemon-reload"], said  # systemd re-read the old unit
    assert not list(Path(env["SMDIAG_STATE_DIR"]).rglob("unit-journal.json"))


def test_a_start_killed_while_systemd_restarts_the_unit_is_undone_by_the_next_start(tmp_path, hermetic_env):
    env, unit, calls = guard_host(tmp_path, hermetic_env)
    (tmp_path / "hold").touch()
    killed = start(env)
    try:
        assert wait_until((tmp_path / "held").exists, timeout=120), "the start never reached systemctl restart"
        assert unit.read_text() != OLD_UNIT  # the new unit is in place while systemd restarts it
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=30)
    finally:
        (tmp_path / "release").touch()  # the stand-in, orphaned by the kill, exits
    (tmp_path / "hold").unlink()
    journals = list(Path(env["SMDIAG_STATE_DIR"]).rglob("unit-journal.json"))
    assert journals, "a killed start leaves its undo behind"
    calls.write_text("")
    out, err = start(env).communicate(timeout=120)
    said = calls.read_text().splitlines()
    assert said[0] == "daemon-reload", said  # the killed start's unit was taken back first
    assert unit.read_text() == OLD_UNIT and not journals[0].exists(), (out, err)
