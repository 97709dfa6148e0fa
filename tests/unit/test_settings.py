from pathlib import Path

import pytest

from agent.errors import BadInput
from agent.settings import NOTEBOOK_EBS_MOUNT, Settings
from agent.statedir import StateDir


def test_notebook_defaults_without_any_override(tmp_path):
    settings = Settings.load({"HOME": str(tmp_path)})
    assert settings.ebs_mount == NOTEBOOK_EBS_MOUNT
    assert settings.docker_host == "unix:///var/run/docker.sock"
    assert settings.daemon_config == Path("/etc/docker/daemon.json")
    assert settings.sysconfig == Path("/etc/sysconfig/docker")
    assert (settings.high_pct, settings.low_pct) == (85, 75)


def test_state_lives_on_the_ebs_volume_when_there_is_one(tmp_path):
    ebs = tmp_path / "SageMaker"
    ebs.mkdir()
    assert Settings.load({"SMDIAG_EBS_MOUNT": str(ebs)}).state_dir == ebs / ".smdiag"


def test_state_falls_back_to_the_users_state_home_off_notebook(tmp_path):
    env = {"SMDIAG_EBS_MOUNT": str(tmp_path / "absent"), "HOME": str(tmp_path)}
    assert Settings.load(env).state_dir == tmp_path / ".local" / "state" / "smdiag"
    env["XDG_STATE_HOME"] = str(tmp_path / "xdg")
    assert Settings.load(env).state_dir == tmp_path / "xdg" / "smdiag"


def test_the_wrapper_finds_the_state_dir_the_agent_uses_without_loading_the_settings(tmp_path):
    """agent.autowrap resolves it with StateDir.from_env alone: bad watermarks must not hide it."""
    ebs = tmp_path / "SageMaker"
    ebs.mkdir()
    for env in (
        {"SMDIAG_EBS_MOUNT": str(ebs)},
        {"SMDIAG_EBS_MOUNT": str(tmp_path / "absent"), "HOME": str(tmp_path)},
        {"SMDIAG_EBS_MOUNT": str(tmp_path / "absent"), "XDG_STATE_HOME": str(tmp_path / "xdg")},
        {"SMDIAG_EBS_MOUNT": str(ebs), "SMDIAG_STATE_DIR": str(tmp_path / "state")},
    ):
        assert StateDir.from_env(env).root == Settings.load(env).state_dir, env
    assert StateDir.from_env({"SMDIAG_EBS_MOUNT": str(ebs), "SMDIAG_HIGH_PCT": "lots"}).root == ebs / ".smdiag"


def test_environment_overrides_every_default(tmp_path):
    env = {
        "SMDIAG_EBS_MOUNT": "/ebs",
        "SMDIAG_STATE_DIR": str(tmp_path / "state"),
        "SMDIAG_ROOT_VOLUME": "/rootvol",
        "DOCKER_HOST": "unix:///x.sock",
        "SMDIAG_DOCKER_CONFIG": "/d.json",
        "SMDIAG_SYSCONFIG": "/sysconfig",
        "SMDIAG_HIGH_PCT": "90",
        "SMDIAG_LOW_PCT": "60.5",
    }
    s = Settings.load(env)
    assert (s.ebs_mount, s.state_dir, s.root_volume) == (Path("/ebs"), tmp_path / "state", Path("/rootvol"))
    assert (s.docker_host, s.daemon_config, s.sysconfig) == ("unix:///x.sock", Path("/d.json"), Path("/sysconfig"))
    assert (s.high_pct, s.low_pct) == (90, 60.5)


def test_flags_win_over_environment(tmp_path):
    env = {"SMDIAG_STATE_DIR": "/from-env", "DOCKER_HOST": "unix:///env.sock"}
    s = Settings.load(env, state_dir=tmp_path, docker_host=None)
    assert s.state_dir == tmp_path
    assert s.docker_host == "unix:///env.sock"
    assert s.replace(docker_host="tcp://127.0.0.1:2375", high_pct=None).docker_host == "tcp://127.0.0.1:2375"


@pytest.mark.parametrize(
    "env, named",
    [
        ({"SMDIAG_HIGH_PCT": "lots"}, "SMDIAG_HIGH_PCT='lots' is not a number"),
        ({"SMDIAG_LOW_PCT": "0"}, "SMDIAG_LOW_PCT='0' is outside 1..99"),
        ({"SMDIAG_HIGH_PCT": "100"}, "SMDIAG_HIGH_PCT='100' is outside 1..99"),
        (
            {"SMDIAG_HIGH_PCT": "70", "SMDIAG_LOW_PCT": "80"},
            "SMDIAG_LOW_PCT (80%) is not below the high one SMDIAG_HIGH_PCT (70%)",
        ),
    ],
)
def test_bad_thresholds_are_bad_input_with_a_fix(env, named):
    with pytest.raises(BadInput) as caught:
        Settings.load(env)
    assert named in caught.value.problem
    assert "SMDIAG_" in caught.value.fix
