"""Every hint says the step that works: how failure reports get turned on when there is none, and where
`doctor --fix` has something to repair when `fix` has nothing."""

import json

import pytest

from agent.errors import Failed
from agent.failures import store
from agent.fix.doctor_fix import doctor_offer
from agent.fix.run import NO_REMEDY
from agent.fix.text import format_doctor_fix, format_fix

ENGINE_DOWN = {"check": "engine", "problem": "cannot reach the Docker engine at x: Connection refused",
               "fix": "start Docker", "remedy": "start_engine", "commands": ["sudo smdiag doctor --fix --only engine"],
               "item": None}  # fmt: skip
NO_REGION = {"check": "aws", "problem": "no AWS region is configured", "fix": "set AWS_DEFAULT_REGION",
             "remedy": None, "commands": ["export AWS_DEFAULT_REGION=us-east-1"], "item": None}  # fmt: skip


def assert_says_how_reports_get_turned_on(text: str) -> None:
    assert "`smdiag kernels enable`, then restart the kernel" in text
    assert "for this session only, `%load_ext agent` in the notebook" in text
    assert "autowrap" not in text  # `import agent.autowrap` fails in a notebook kernel, which lacks smdiag


def test_no_report_recorded_says_how_reports_get_turned_on(tmp_path):
    with pytest.raises(Failed) as none:
        store.last_report(tmp_path)
    assert none.value.problem == f"no failure has been recorded in {tmp_path / 'failures'}"
    assert_says_how_reports_get_turned_on(none.value.fix)


def test_last_failure_and_failures_list_with_none_say_how_reports_get_turned_on(smdiag):
    done = smdiag("last-failure")
    assert done.returncode == 1 and "no failure has been recorded" in done.stderr
    assert_says_how_reports_get_turned_on(done.stderr)
    assert json.loads(smdiag("last-failure", "--json").stdout)["fix"] == store.TURN_REPORTS_ON
    listed = smdiag("failures", "list")
    assert listed.returncode == 0 and listed.stdout.startswith("no failures recorded; ")
    assert_says_how_reports_get_turned_on(listed.stdout)


def test_doctor_offers_what_doctor_fix_repairs_and_nothing_when_it_repairs_nothing():
    assert doctor_offer({"problems": [NO_REGION, ENGINE_DOWN]}) == (
        "`sudo smdiag doctor --fix` repairs 1 problem `smdiag doctor` found on this host: Docker engine"
    )
    assert doctor_offer({"problems": [NO_REGION]}) is None
    assert doctor_offer({"problems": []}) is None


NO_AUTOMATIC_REMEDY = {"report": "20261201T100000Z-abcdef", "category": "script_error", "summary": "train.py failed",
                       "remedy": None, "actions": [], "verified": False, "dry_run": False, "hint": "fix train.py",
                       "detail": NO_REMEDY}  # fmt: skip


def test_fix_with_no_automatic_remedy_points_to_doctor_fix_when_it_has_one():
    offer = doctor_offer({"problems": [ENGINE_DOWN]})
    text = format_fix({**NO_AUTOMATIC_REMEDY, "doctor_fix": offer})
    assert text.splitlines()[1:] == ["no automatic remedy; what to do:", "  fix train.py", offer]
    alone = format_fix({**NO_AUTOMATIC_REMEDY, "doctor_fix": None})
    assert alone.splitlines()[1:] == ["no automatic remedy; what to do:", "  fix train.py"]


def test_doctor_fix_dry_run_says_nothing_changed_and_never_not_fixed():
    planned = {"remedy": "start_engine", "actions": [{"kind": "start_engine", "target": "x", "done": False,
               "detail": "start Docker (`x`) and wait until it answers", "changes": True}], "blocked": None,
               "verified": False, "detail": None, "dry_run": True}  # fmt: skip
    result = {"healthy": False, "remedies": [planned], "suggestions": [], "problems": [ENGINE_DOWN, NO_REGION],
              "dry_run": True}  # fmt: skip
    text = format_doctor_fix(result)
    assert text.splitlines()[:2] == [
        "remedy: start_engine (dry run: nothing changed)",
        "  [todo] start Docker (`x`) and wait until it answers",
    ]
    assert "NOT fixed" not in text and "None" not in text and "still a problem" not in text
    assert "\nfound, nothing changed (dry run):\n!! Docker engine: cannot reach" in text
    assert "\n      export AWS_DEFAULT_REGION=us-east-1" in text
