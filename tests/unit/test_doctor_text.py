"""Doctor's verdict, next steps and text form are pure: each tested on reports as `run_doctor` shapes them."""

import copy
import re
from dataclasses import asdict

from agent.fix.doctor_fix import verdict
from agent.fix.text import format_doctor, verdict_line
from agent.host.doctor import diagnose, next_steps
from agent.style import Style

GIB = 1024**3
PYTHON3 = "/home/ec2-user/anaconda3/envs/python3"
PYTORCH = "/home/ec2-user/anaconda3/envs/pytorch_p310"


def disk(role, path, percent=20.0):
    total = 100 * GIB
    used = int(total * percent / 100)
    return {"role": role, "exists": True, "path": path, "mountpoint": path, "device": "/dev/x", "fstype": "ext4",
            "total": total, "used": used, "free": total - used, "percent": percent}  # fmt: skip


def env(path, version="2.257.7", hook=True, loaded=True, error=None):
    major = int(version.split(".")[0]) if version else None
    return {"environment": path, "version": version, "major": major, "hook": hook, "own": False,
            "hook_loaded": loaded, "hook_error": error}  # fmt: skip


OWN = {"environment": "/opt/smdiag", "version": None, "major": None, "hook": None, "own": True,
       "hook_loaded": None, "hook_error": None}  # fmt: skip
FACTS = {
    "engine": {"reachable": True, "host": "unix:///var/run/docker.sock", "version": "25.0.8", "api_version": "1.44",
               "root_dir": "/home/ec2-user/SageMaker/docker", "storage_driver": "overlay2", "d_type": True,
               "containerd_image_store": False, "error": None, "fix": None},
    "docker_root": {"path": "/home/ec2-user/SageMaker/docker", "source": "engine", "on_root_volume": False,
                    "on_ebs_volume": True},
    "daemon_config": {"path": "/etc/docker/daemon.json", "exists": True, "error": None,
                      "data_root": "/home/ec2-user/SageMaker/docker"},
    "disks": [disk("docker_root", "/home/ec2-user/SageMaker/docker"), disk("tmp", "/tmp"),
              disk("ebs", "/home/ec2-user/SageMaker")],
    "compose": {"command": ["docker", "compose"], "docker_cli": "/usr/bin/docker",
                "plugin_version": "Docker Compose version v2.29.2", "standalone": None},
    "sdk_environments": [OWN, env(PYTHON3)],
    "aws": {"region": "us-east-1", "credentials": True, "credentials_source": "iam-role", "error": None},
    "notebook": {"is_notebook_instance": True, "name": "nb", "platform": "AL2023", "os": "Amazon Linux 2023"},
    "platform": {"kind": "notebook_instance", "label": "SageMaker notebook instance nb (AL2023)"},
    "studio": None,
    "state_dir": {"path": "/home/ec2-user/SageMaker/.smdiag", "writable": True, "error": None},
    "onstart": None,
    "wrapper": {"path": "/home/ec2-user/SageMaker/.smdiag/logs/wrapper-errors.jsonl", "count": 0, "last": {}},
}  # fmt: skip


def report(**changes) -> dict:
    """doctor's report on FACTS changed so, with its own diagnosis, next steps and verdict."""
    facts = {**copy.deepcopy(FACTS), **changes}
    problems = [asdict(p) for p in diagnose(facts, 85)]
    found = {"healthy": not problems, **facts, "problems": problems,
             "next_steps": [asdict(s) for s in next_steps(facts)]}  # fmt: skip
    return {**found, "verdict": verdict(found)}


ENGINE_DOWN = {**FACTS["engine"], "reachable": False,
               "error": "cannot reach the Docker engine at x: Connection refused",
               "fix": "start Docker (sudo systemctl start docker, or sudo service docker start)"}  # fmt: skip
ON_ROOT = {**FACTS["docker_root"], "path": "/var/lib/docker", "on_root_volume": True, "on_ebs_volume": False}
NO_REGION_OFF_NOTEBOOK = {
    "aws": {**FACTS["aws"], "region": None},
    "notebook": {**FACTS["notebook"], "is_notebook_instance": False},
}


def rows(text: str) -> dict[str, str]:
    """Each check row's name and mark, read from the text (rows come first, up to the first blank line)."""
    found = {}
    for line in text.split("\n\n")[0].splitlines():
        mark, name = line[:2], re.split(r"\s{2,}", line[3:])[0]
        found.setdefault(name, []).append(mark)
    return found


# ---------------------------------------------------------------------------------------------- verdict


def test_the_verdict_counts_the_problems_doctor_fix_repairs_and_names_its_command():
    assert verdict(report()) == {"ready": True, "problems": 0, "repairable": 0, "fix_command": None,
                                 "restarts_docker": False, "repairs": []}  # fmt: skip
    down = report(engine=ENGINE_DOWN, **NO_REGION_OFF_NOTEBOOK)
    assert verdict(down) == {"ready": False, "problems": 2, "repairable": 1, "fix_command": "sudo smdiag doctor --fix",
                             "restarts_docker": False, "repairs": ["engine"]}  # fmt: skip
    # Moving the data-root restarts Docker: doctor --fix applies it only with --yes, so the command says so.
    moved = verdict(report(engine=ENGINE_DOWN, docker_root=ON_ROOT))
    assert moved["fix_command"] == "sudo smdiag doctor --fix --yes" and moved["restarts_docker"]
    assert moved["repairs"] == ["engine", "docker_root"]


def test_a_problem_with_no_automatic_remedy_is_not_counted_as_repaired():
    denied = {**ENGINE_DOWN, "error": "cannot reach the Docker engine at x: Permission denied"}
    assert verdict(report(engine=denied))["repairable"] == 0
    studio_engine = {"check": "engine", "problem": "Docker access is off", "fix": "turn it on", "remedy": None}
    assert verdict({"problems": [studio_engine]})["repairable"] == 0


def test_the_verdict_line_ends_with_the_next_command():
    down = report(engine=ENGINE_DOWN, **NO_REGION_OFF_NOTEBOOK)
    assert verdict_line(down) == (
        "not ready for SageMaker local mode: 2 problems — `sudo smdiag doctor --fix` repairs 1 of them"
    )
    assert verdict_line(report(engine=ENGINE_DOWN)).endswith("1 problem — `sudo smdiag doctor --fix` repairs it")
    both = report(engine=ENGINE_DOWN, docker_root=ON_ROOT)
    assert verdict_line(both).endswith("2 problems — `sudo smdiag doctor --fix --yes` repairs all 2 of them "
                                       "(Docker restarts)")  # fmt: skip
    assert verdict_line(report(**NO_REGION_OFF_NOTEBOOK)) == (
        "not ready for SageMaker local mode: 1 problem — fix it as shown above, then run `smdiag doctor` again"
    )
    assert verdict_line(report()) == f"ready for SageMaker local mode (the SDK is in {PYTHON3})"


# ---------------------------------------------------------------------------------------------- next steps


def test_failure_reports_off_where_the_sdk_is_is_a_next_step_with_the_command():
    off = report(sdk_environments=[OWN, env(PYTHON3, hook=False, loaded=None), env(PYTORCH, "3.27.0", False, None)])
    [step] = off["next_steps"]
    assert step["commands"] == ("smdiag kernels enable",) and step["then"] == "then restart the kernel"
    assert step["items"] == (PYTHON3, PYTORCH) and step["step"].startswith("off in 2 environments")
    assert off["healthy"] and off["problems"] == []  # local mode runs: not a problem, exit codes unchanged
    assert verdict_line(off) == (
        f"ready for SageMaker local mode (the SDK is in {PYTHON3}, {PYTORCH}) — next: `smdiag kernels enable`, "
        "then restart the kernel"
    )
    text = format_doctor(off)
    assert rows(text)["SageMaker SDK"] == ["--", "->", "->"]  # smdiag's own has no SDK here; the others: next
    assert "\n      smdiag kernels enable\n   then restart the kernel\n" in text


def test_reports_are_on_only_where_the_interpreter_was_seen_to_load_the_hook():
    error = "its python started without loading the hook (Python older than 3.10?)"
    broken = report(sdk_environments=[OWN, env(PYTHON3, hook=True, loaded=False, error=error)])
    [step] = broken["next_steps"]
    assert step["items"] == (PYTHON3,) and error in step["step"] and step["commands"] == ()
    text = format_doctor(broken)
    [row] = [line for line in text.splitlines() if line.startswith("-> SageMaker SDK")]
    assert "failure reports off: the hook is there, but its python does not load it" in row
    assert "failure reports on" not in text
    assert verdict_line(broken).endswith(" — 1 next step above")

    on = report()
    assert on["next_steps"] == [] and "failure reports on (fit, deploy" in format_doctor(on)


def test_environments_without_a_known_sdk_and_smdiags_own_need_no_step():
    unknown = env("/envs/future", "4.0.1", hook=False, loaded=None)
    bare = env("/envs/bare", None, hook=False, loaded=None)
    own_sdk = {**OWN, "version": "2.257.7", "major": 2}
    assert next_steps({"sdk_environments": [own_sdk, unknown, bare, env(PYTHON3)]}) == []


# ---------------------------------------------------------------------------------------------- text


INTERNAL_IDS = ("docker_root", "daemon_config", "sagemaker_sdk", "state_dir", "onstart", "wrapper", "disk", "aws")


def test_rows_are_named_for_a_person_and_no_two_disks_share_a_name():
    names = rows(format_doctor(report()))
    assert not set(names) & set(INTERNAL_IDS)
    assert names["Docker's disk"] == names["temp dir"] == names["EBS volume"] == ["ok"]
    assert "Docker data-root" in names and "failure wrapper" in names and "on-start script" in names


def test_a_problem_about_every_environment_marks_each_environments_row():
    bare = report(sdk_environments=[OWN, env(PYTHON3, None, hook=False, loaded=None)])
    assert [p["check"] for p in bare["problems"]] == ["sagemaker_sdk"]
    assert rows(format_doctor(bare))["SageMaker SDK"] == ["!!", "!!"]


def test_a_full_disk_marks_its_own_row_and_the_problem_says_which_disk():
    full_tmp = report(disks=[disk("docker_root", "/d"), disk("tmp", "/tmp", 97.0), disk("ebs", "/e")])
    text = format_doctor(full_tmp)
    names = rows(text)
    assert names["temp dir"] == ["!!"] and names["Docker's disk"] == names["EBS volume"] == ["ok"]
    assert "\n!! temp dir: temp dir /tmp is 97% full" in text
    assert full_tmp["problems"][0]["check"] == "disk" and full_tmp["problems"][0]["item"] == "tmp"  # --json: the id


def test_each_fix_command_is_a_line_of_its_own_to_copy():
    text = format_doctor(report(engine=ENGINE_DOWN, docker_root=ON_ROOT, **NO_REGION_OFF_NOTEBOOK))
    lines = text.splitlines()
    for command in ("sudo smdiag doctor --fix --only engine", "sudo smdiag bootstrap --dry-run",
                    "sudo smdiag bootstrap", "export AWS_DEFAULT_REGION=us-east-1"):  # fmt: skip
        assert f"      {command}" in lines, command
    assert "\n!! Docker engine: cannot reach the Docker engine at x: Connection refused\n   fix: start Docker" in text
    assert "\n!! Docker data-root: Docker's data-root /var/lib/docker is on the small root volume" in text
    assert lines[-1].startswith("not ready for SageMaker local mode: 3 problems")


def test_marks_and_colour_only_on_a_terminal():
    down = report(engine=ENGINE_DOWN)
    plain = format_doctor(down, Style.for_output(False, {"TERM": "xterm"}))
    assert "\033[" not in plain and not set("✓✗") & set(plain)
    assert plain == format_doctor(down) and plain.splitlines()[0].startswith("!! Docker engine ")

    terminal = format_doctor(down, Style.for_output(True, {"TERM": "xterm"}))
    assert terminal.splitlines()[0].startswith("\033[31m✗ \033[0m Docker engine ")
    assert "\033[32m✓ \033[0m Docker Compose " in terminal
    assert "\033[1msudo smdiag doctor --fix --only engine\033[0m" in terminal
    assert terminal.splitlines()[-1] == (
        "\033[31m✗ \033[0m \033[31mnot ready for SageMaker local mode: 1 problem — `sudo smdiag doctor --fix` "
        "repairs it\033[0m"
    )
    no_colour = format_doctor(down, Style.for_output(True, {"TERM": "xterm", "NO_COLOR": "1"}))
    assert "\033[" not in no_colour and no_colour.splitlines()[0].startswith("✗  Docker engine ")
    assert format_doctor(down, Style.for_output(True, {"TERM": "dumb"})) == plain


def test_in_a_studio_space_the_spaces_disks_have_a_name_and_a_full_one_says_which():
    home = "/home/sagemaker-user"
    space = {
        "app_type": "JupyterLab", "local_mode": True, "api_version": "1.41",
        "proxy": {"host": "unix:///docker/proxy.sock", "expected": "unix:///docker/proxy.sock", "socket_exists": True,
                  "expected_exists": True, "unversioned_status": 301},
        "engine": {"reachable": True, "version": "25.0.8", "api_version": "1.41", "disk_usage": None, "error": None},
        "disks": [disk("home", home, 97.0), {"role": "container_root", "path": f"{home}/tmp", "exists": False}],
        "compose": {"v2": ["docker", "compose"], "v3": ["docker", "compose"], "plugin_version": "v2.29.2"},
    }  # fmt: skip
    text = format_doctor(report(studio=space, platform={"kind": "studio", "label": "SageMaker Studio JupyterLab"}))
    names = rows(text)
    assert names["space disk"][0] == "!!" and "disk" not in names
    assert names["Docker's disk"] == names["temp dir"] == names["EBS volume"] == ["ok"]  # the notebook's: fine
    assert f"\n!! space disk: home (the space's EBS volume) {home} is 97% full" in text
