"""What doctor makes of the on-start script's record (pure), the kernel hook's planning, the guard's unit, and
the lifecycle scripts themselves."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from pathlib import Path

from agent.guard import daemon as guard
from agent.host import kernels, onstart
from agent.settings import Settings
from agent.statedir import StateDir

STATUS = (
    "# started 2026-11-24T09:00:00Z\n"
    "install\tok\t1.5\tunchanged: smdiag 0.1.0 in /ebs/.smdiag/venv\n"
    "bootstrap\tfailed\t0.4\tsmdiag: cannot reach the Docker engine\n"
    "guard\tok\t0.2\tdiskguard already running (pid 7, detached)\n"
    "torn line without tabs\n"
    "# finished 2026-11-24T09:00:03Z 2.9\n"
)


def test_the_status_file_is_parsed_into_steps_and_times():
    record = onstart.parse_status(STATUS)
    assert record["started"] == "2026-11-24T09:00:00Z" and record["total_s"] == 2.9
    assert [(s["step"], s["state"], s["seconds"]) for s in record["steps"]] == [
        ("install", "ok", 1.5),
        ("bootstrap", "failed", 0.4),
        ("guard", "ok", 0.2),
    ]


def test_an_unfinished_run_has_no_total():
    record = onstart.parse_status("# started 2026-11-24T09:00:00Z\ninstall\tok\t1.0\tx\n")
    assert record["finished"] is None and record["total_s"] is None and len(record["steps"]) == 1


def record_with(background: dict | None, steps: str = STATUS) -> dict:
    return {**onstart.parse_status(steps), "log": "/ebs/.smdiag/onstart/on-start.log", "background": background}


def test_each_failed_step_is_a_problem_naming_the_log():
    [(problem, fix)] = onstart.problems(record_with(None))
    assert "'bootstrap' failed" in problem and "cannot reach the Docker engine" in problem
    assert "/ebs/.smdiag/onstart/on-start.log" in fix


def test_a_background_migration_is_a_problem_until_it_is_done():
    ok = "# started x\nbootstrap\tbackground\t60.0\tgoes on\n"
    assert onstart.problems(record_with({"state": "done", "detail": "migrated"}, ok)) == []
    [(running, _)] = onstart.problems(record_with({"state": "running", "detail": "pid 9"}, ok))
    assert "still copying" in running and "pid 9" in running
    [(failed, fix)] = onstart.problems(record_with({"state": "failed", "detail": "rolled back: ENOSPC"}, ok))
    assert "rolled back: ENOSPC" in failed and "smdiag bootstrap" in fix
    assert "killed" in onstart.problems(record_with({"state": "lost", "detail": "killed?"}, ok))[0][0]


def test_no_record_no_problem():
    assert onstart.problems(None) == []


def test_the_background_state_is_read_from_the_files_it_leaves(tmp_path):
    state = StateDir(tmp_path)
    directory = tmp_path / "onstart"
    directory.mkdir()
    (directory / "status.tsv").write_text("# started x\nbootstrap\tbackground\t9.0\tgoes on\n")
    (directory / "bootstrap.pid").write_text(str(os.getpid()))
    assert onstart.read(state)["background"]["state"] == "running"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (directory / "bootstrap.pid").write_text(str(dead.pid))
    assert onstart.read(state)["background"]["state"] == "lost"
    (directory / "bootstrap.out").write_text("smdiag: copying failed: No space left on device (fix: ...)\n")
    (directory / "bootstrap.rc").write_text("1\n")
    assert onstart.read(state)["background"] == {
        "state": "failed",
        "detail": "smdiag: copying failed: No space left on device (fix: ...)",
    }
    assert onstart.read(StateDir(tmp_path / "elsewhere")) is None


def test_environments_are_globbed_deduplicated_and_need_a_python(tmp_path):
    for name in ("base", "envs/a", "envs/b"):
        (tmp_path / name / "bin").mkdir(parents=True)
        (tmp_path / name / "bin" / "python").touch()
    (tmp_path / "envs" / "not-an-env").mkdir()
    found = kernels.environments([str(tmp_path / "base"), str(tmp_path / "envs/*"), str(tmp_path / "envs/a")])
    assert found == [tmp_path / "base", tmp_path / "envs/a", tmp_path / "envs/b"]


def test_the_pth_line_is_one_import_line_that_is_a_no_op_without_the_hook(tmp_path):
    line = kernels.pth_line(tmp_path / "kernel-hook")
    assert line.startswith("import ") and line.count("\n") == 1  # site.py executes such lines
    exec(line, {})  # the hook file is absent: nothing happens, nothing is raised
    assert str(tmp_path / "kernel-hook") not in sys.path


def test_the_guard_unit_restarts_on_failure_and_names_every_setting(tmp_path):
    settings = Settings.load(
        env={"SMDIAG_EBS_MOUNT": str(tmp_path), "SMDIAG_HIGH_PCT": "80", "DOCKER_HOST": "unix:///d.sock"}
    )
    argv = guard.guard_argv("/ebs/.smdiag/venv/bin/python", settings)
    unit = guard.unit_text(argv, settings)
    assert "Restart=on-failure" in unit and "After=docker.service" in unit
    exec_start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    assert exec_start.startswith("ExecStart=/ebs/.smdiag/venv/bin/python -m agent --state-dir ")
    assert "--docker-host unix:///d.sock --high 80 --low 75" in exec_start
    assert settings.state_dir.name == ".smdiag"


LIFECYCLE_CONFIG = Path(__file__).resolve().parents[2] / "lifecycle-config"
SHARED_BLOCK = re.compile(r"^# >>> shared with (\S+) .*?\n(.*?)^# <<< shared$", re.S | re.M)
"""The block both lifecycle scripts hold word for word: each must stay one file (the API takes one script)."""


def test_the_script_fits_sagemakers_limit_and_parses():
    script = LIFECYCLE_CONFIG / "on-start.sh"
    assert len(base64.b64encode(script.read_bytes())) <= 16384  # the API refuses a longer Content
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0


def test_the_two_lifecycle_scripts_share_their_common_block_word_for_word():
    blocks = {}
    for name, other in (("on-start.sh", "studio-on-start.sh"), ("studio-on-start.sh", "on-start.sh")):
        found = SHARED_BLOCK.findall((LIFECYCLE_CONFIG / name).read_text())
        assert [shared_with for shared_with, _ in found] == [other], f"{name}: one marked block, shared with {other}"
        blocks[name] = found[0][1]
    assert blocks["on-start.sh"].count("\n") > 60  # the helpers and the status record, not an empty pair of markers
    assert blocks["on-start.sh"] == blocks["studio-on-start.sh"], "edit the shared block in both scripts alike"
