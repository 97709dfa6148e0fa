"""`diagnose` is pure: every rule tested on facts as `gather` shapes them."""

import copy

from agent.host.doctor import diagnose

GIB = 1024**3


def disk(role, path, percent=20.0, total=100 * GIB):
    used = int(total * percent / 100)
    return {
        "role": role,
        "exists": True,
        "path": path,
        "mountpoint": path,
        "device": "/dev/x",
        "fstype": "ext4",
        "total": total,
        "used": used,
        "free": total - used,
        "percent": percent,
    }


HEALTHY = {
    "engine": {"reachable": True, "host": "unix:///var/run/docker.sock", "error": None, "fix": None},
    "docker_root": {"path": "/ebs/docker", "source": "engine", "on_root_volume": False, "on_ebs_volume": True},
    "daemon_config": {"path": "/etc/docker/daemon.json", "exists": True, "error": None, "data_root": "/ebs/docker"},
    "disks": [disk("docker_root", "/ebs/docker"), disk("tmp", "/tmp"), disk("ebs", "/ebs")],
    "compose": {"command": ["docker-compose"], "docker_cli": "/usr/bin/docker", "plugin_version": None,
                "standalone": "/usr/bin/docker-compose"},
    "sdk_environments": [
        {"environment": "/opt/smdiag", "version": None, "major": None, "hook": None, "own": True},
        {"environment": "/home/ec2-user/anaconda3/envs/python3", "version": "2.257.7", "major": 2, "hook": True,
         "own": False},
    ],
    "aws": {"region": "us-east-1", "credentials": True, "credentials_source": "iam-role", "error": None},
    "notebook": {"is_notebook_instance": True, "name": "nb", "platform": "AL2023", "os": "Amazon Linux 2023"},
    "state_dir": {"path": "/ebs/.smdiag", "writable": True, "error": None},
}  # fmt: skip


def facts(**changes):
    f = copy.deepcopy(HEALTHY)
    for dotted, value in changes.items():
        section, _, key = dotted.partition("__")
        if key:
            f[section][key] = value
        else:
            f[section] = value
    return f


def checks(problems):
    return [p.check for p in problems]


def test_healthy_host_has_no_problems():
    assert diagnose(HEALTHY, high_pct=85) == []


def test_unreachable_engine_passes_on_the_reason_and_fix():
    problems = diagnose(
        facts(engine={"reachable": False, "host": "h", "error": "cannot reach h: Connection refused", "fix": "start"}),
        85,
    )
    assert [(p.check, p.problem, p.fix) for p in problems] == [
        ("engine", "cannot reach h: Connection refused", "start")
    ]


def test_docker_root_on_the_root_volume_is_flagged_when_an_ebs_volume_exists():
    f = facts(docker_root__on_root_volume=True, docker_root__on_ebs_volume=False, docker_root__path="/var/lib/docker")
    [problem] = diagnose(f, 85)
    assert problem.check == "docker_root" and "/var/lib/docker" in problem.problem
    assert "smdiag bootstrap" in problem.fix


def test_docker_root_on_the_root_volume_is_fine_without_an_ebs_volume():
    f = facts(docker_root__on_root_volume=True, docker_root__on_ebs_volume=None)
    f["disks"][2] = {"role": "ebs", "path": "/ebs", "exists": False}
    assert diagnose(f, 85) == []


def test_each_full_disk_is_a_problem_at_the_threshold_not_below():
    f = facts(disks=[disk("docker_root", "/d", 85.0), disk("tmp", "/tmp", 84.9), disk("ebs", "/ebs", 97.0)])
    problems = diagnose(f, 85)
    assert checks(problems) == ["disk", "disk"]
    assert "/d is 85% full" in problems[0].problem and "smdiag diskguard once" in problems[0].fix
    assert "/ebs is 97% full" in problems[1].problem and "volume size" in problems[1].fix


def test_compose_missing_and_unrecognised_plugin():
    unrecognised = facts(compose__command=None, compose__standalone=None,
                         compose__plugin_version="Docker Compose version v5.0.1")  # fmt: skip
    [problem] = diagnose(unrecognised, 85)
    assert "Docker Compose is not installed" in problem.problem and "v5.0.1" in problem.problem
    no_cli = facts(compose__command=None, compose__docker_cli=None)
    [problem] = diagnose(no_cli, 85)
    assert "docker CLI is not on PATH" in problem.problem


def test_invalid_daemon_json_is_flagged():
    [problem] = diagnose(facts(daemon_config__error="Expecting value: line 1 column 1 (char 0)"), 85)
    assert problem.check == "daemon_config" and "refuse to start" in problem.problem


def test_missing_region_matters_only_off_notebook_with_the_sdk_installed():
    no_region = facts(aws__region=None, notebook__is_notebook_instance=False)
    assert checks(diagnose(no_region, 85)) == ["aws"]
    no_sdk = facts(aws__region=None, notebook__is_notebook_instance=False, sdk_environments=[NO_SDK])
    assert checks(diagnose(no_sdk, 85)) == ["sagemaker_sdk"]
    assert diagnose(facts(aws__region=None), 85) == []


NO_SDK = {"environment": "/opt/smdiag", "version": None, "major": None, "hook": None, "own": True}


def env_with(version, major):
    return {"environment": f"/envs/sdk{version}", "version": version, "major": major, "hook": False, "own": False}


def test_local_mode_needs_a_known_sdk_major_in_some_environment():
    [problem] = diagnose(facts(sdk_environments=[NO_SDK]), 85)
    assert problem.check == "sagemaker_sdk" and "no notebook environment has the SageMaker SDK" in problem.problem
    [problem] = diagnose(facts(sdk_environments=[NO_SDK, env_with("4.0.1", 4)]), 85)
    assert "a major smdiag does not know (4.0.1 in /envs/sdk4.0.1)" in problem.problem
    assert diagnose(facts(sdk_environments=[NO_SDK, env_with("3.27.0", 3), env_with("4.0.1", 4)]), 85) == []


def test_a_compose_plugin_that_sdk_v2_refuses_is_fine_when_only_v3_is_there():
    v5_plugin = {"compose__command": None, "compose__standalone": None,
                 "compose__plugin_version": "Docker Compose version v5.0.1"}  # fmt: skip
    assert diagnose(facts(sdk_environments=[NO_SDK, env_with("3.27.0", 3)], **v5_plugin), 85) == []
    assert checks(diagnose(facts(sdk_environments=[NO_SDK, env_with("2.257.7", 2)], **v5_plugin), 85)) == ["compose"]


def test_unwritable_state_dir_is_flagged():
    [problem] = diagnose(facts(state_dir__writable=False, state_dir__error="Not a directory"), 85)
    assert problem.check == "state_dir" and "SMDIAG_STATE_DIR" in problem.fix


def test_a_failed_on_start_step_is_a_doctor_problem():
    record = {
        "started": "2026-11-24T09:00:00Z", "finished": "2026-11-24T09:00:02Z", "total_s": 2.0,
        "steps": [{"step": "guard", "state": "failed", "seconds": 20.0, "detail": "the guard did not start"}],
        "log": "/ebs/.smdiag/onstart/on-start.log", "background": None,
    }  # fmt: skip
    [problem] = diagnose(facts(onstart=record), high_pct=85)
    assert problem.check == "onstart" and "the guard did not start" in problem.problem


def test_errors_the_wrapper_logged_instead_of_raising_are_a_doctor_problem():
    last = {"time": "2026-12-01T10:00:00Z", "where": "record", "error": "RuntimeError: agent broken"}
    wrapper = {"path": "/ebs/.smdiag/logs/wrapper-errors.jsonl", "count": 2, "last": last}
    [problem] = diagnose(facts(wrapper=wrapper), 85)
    assert problem.check == "wrapper" and "2 error(s) of its own" in problem.problem
    assert "record: RuntimeError: agent broken" in problem.problem and wrapper["path"] in problem.fix
    assert diagnose(facts(wrapper={**wrapper, "count": 0, "last": {}}), 85) == []


def test_the_compose_versions_sdk_v2_refuses_are_named_as_users_saw_them():
    """compose-v5 (sagemaker-python-sdk#5739) and compose-no-v (#4137): a plugin is there, SDK v2 refuses it."""
    for said in ("Docker Compose version v5.0.1", "Docker Compose version 2.21.0"):
        f = facts(compose__command=None, compose__standalone=None, compose__plugin_version=said)
        [problem] = diagnose(f, 85)
        assert "'Docker Compose is not installed'" in problem.problem and repr(said) in problem.problem
        assert "smdiag doctor --fix" in problem.fix


def test_no_permission_on_the_socket_is_not_told_to_start_the_engine():
    """Permission denied on the engine's socket: the fix is the docker group, not starting Docker."""
    import errno

    from agent.engine import unreachable

    host = "unix:///var/run/docker.sock"
    causes = [
        (PermissionError(errno.EACCES, "Permission denied"), "docker group"),
        (ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), "start Docker"),
    ]
    for cause, says in causes:
        failed = unreachable(host, cause)
        engine = {"reachable": False, "host": host, "error": failed.problem, "fix": failed.fix}
        [problem] = diagnose(facts(engine=engine), 85)
        assert cause.strerror in problem.problem and says in problem.fix


GUARD = {"pid": 4321, "events_lost_for_s": None, "events_error": None, "engine_answered": None, "ended_pid": None,
         "output": "/ebs/.smdiag/diskguard/guard.out"}  # fmt: skip


def test_a_killed_guard_is_a_problem_and_no_guard_at_all_is_not():
    [problem] = diagnose(facts(guard={**GUARD, "pid": None, "ended_pid": 4321}), high_pct=85)
    assert problem.check == "guard" and "pid 4321" in problem.problem and "under 85%" in problem.problem
    assert problem.commands == ("sudo smdiag diskguard start",) and GUARD["output"] in problem.fix
    assert diagnose(facts(guard={**GUARD, "pid": None}), high_pct=85) == []
    assert diagnose(facts(guard=GUARD), high_pct=85) == []
    assert diagnose(facts(guard={**GUARD, "pid": -1}), high_pct=85) == []  # starting


def test_a_guard_without_the_engines_events_is_a_problem_only_past_its_retries_with_its_engine_answering():
    lost = {**GUARD, "events_lost_for_s": 300.0, "events_error": "Connection aborted.", "engine_answered": True}
    [problem] = diagnose(facts(guard=lost), high_pct=85)
    assert problem.check == "guard" and "300 s" in problem.problem and "Connection aborted." in problem.problem
    assert diagnose(facts(guard={**lost, "events_lost_for_s": 20.0}), high_pct=85) == []
    # its engine was down at its last attempt: it waits for it, and reconnects when it answers
    assert diagnose(facts(guard={**lost, "engine_answered": False}), high_pct=85) == []
