"""`smdiag fix` runs the remedy the failure's diagnosis recorded (`report["remedy"]`) and decides nothing
again from the report's evidence; a report recorded before remedies were named points to `doctor --fix`."""

import json
from pathlib import Path

import pytest

from agent.failures.store import failures_dir

FULL_TMP = {
    "id": "20260101T000000Z-aaaaaa",
    "category": "disk_full",
    "summary": "no space left on device",
    "hint": "free room, then run again",
    "disks": [{"role": "docker_root", "path": "/ebs/docker", "percent": 40},
              {"role": "container_root", "path": "/tmp", "percent": 100}],
}  # fmt: skip
"""Evidence from which fix used to decide, itself, that the SDK's container_root was the full disk."""


@pytest.fixture
def recorded(hermetic_env):
    """recorded(report): the report stored as the recorder stores it, in the test's own state dir."""

    def store(report: dict) -> None:
        directory = failures_dir(Path(hermetic_env["SMDIAG_STATE_DIR"])) / report["id"]
        directory.mkdir(parents=True)
        (directory / "report.json").write_text(json.dumps(report))

    return store


def test_a_report_recorded_before_remedies_were_named_points_to_doctor_fix(smdiag, recorded):
    recorded(FULL_TMP)
    done = smdiag("fix", "--yes", "--json")
    assert done.returncode == 3, done.stderr
    said = json.loads(done.stdout)
    assert said["remedy"] is None and said["hint"] == FULL_TMP["hint"]
    assert "no automatic remedy recorded" in said["detail"] and "smdiag doctor --fix" in said["detail"]
    text = smdiag("fix", "--yes")
    assert text.returncode == 3 and "no automatic remedy recorded" in text.stdout
    assert "smdiag doctor --fix" in text.stdout and FULL_TMP["hint"] in text.stdout


def test_fix_runs_the_remedy_the_diagnosis_recorded_and_decides_nothing_again(smdiag, recorded):
    recorded({**FULL_TMP, "remedy": None})
    done = smdiag("fix", "--yes", "--json")
    assert done.returncode == 3 and json.loads(done.stdout)["remedy"] is None, done.stdout + done.stderr
    assert "no automatic remedy; what to do:" in smdiag("fix", "--yes").stdout

    # The engine refused us, in the report's words; the diagnosis named start_engine all the same: it runs.
    denied = {**FULL_TMP, "id": "20260101T000001Z-bbbbbb", "category": "daemon_down",
              "docker": {"error": "cannot reach the Docker engine: Permission denied"},
              "remedy": {"name": "start_engine"}}  # fmt: skip
    recorded(denied)
    dry = smdiag("fix", "--dry-run", "--json", "--start-cmd", "true")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    planned = json.loads(dry.stdout)
    assert planned["remedy"] == "start_engine" and [a["kind"] for a in planned["actions"]] == ["start_engine"]


def test_a_remedy_this_smdiag_does_not_know_is_one_line(smdiag, recorded):
    recorded({**FULL_TMP, "remedy": {"name": "reboot_the_moon"}})
    done = smdiag("fix", "--yes")
    assert done.returncode == 1 and "reboot_the_moon" in done.stderr and "Traceback" not in done.stderr
