"""The pure half of bootstrap: which action is safe, how config files are edited, which way recovery goes."""

import json
import time
from pathlib import Path

import pytest
import yaml

from agent.bootstrap import RecoveryFacts, Situation, decide, recovery_direction
from agent.config_edits import local_mode_config, merged_daemon_config, sysconfig_without_root_flags
from agent.dataroot import MARKER, Inventory, changed_since, classify_target
from agent.errors import BadInput, Failed

GIB = 1024**3
NVIDIA = {"runtimes": {"nvidia": {"path": "nvidia-container-runtime", "runtimeArgs": []}}}


def situation(**changes) -> Situation:
    base = dict(
        current_root="/var/lib/docker",
        target="/ebs/docker",
        target_kind="absent",
        marker_fingerprint=None,
        inventory=Inventory(images={"sha256:a": ["x:1"]}),
        containerd_image_store=False,
        needed_bytes=5 * GIB,
        target_free=100 * GIB,
    )
    return Situation(**{**base, **changes})


def test_first_time_migrates_and_later_boots_repoint():
    assert decide(situation()) == "migrated"
    assert decide(situation(target_kind="empty")) == "migrated"
    assert decide(situation(target_kind="ours", inventory=Inventory())) == "repointed"
    assert decide(situation(target_kind="layout", inventory=Inventory())) == "repointed"
    assert decide(situation(current_root="/ebs/docker")) == "unchanged"


def test_a_copy_of_the_current_root_is_repointed_to_but_a_stale_one_is_not():
    inventory = Inventory(images={"sha256:a": ["x:1"]})
    assert decide(situation(target_kind="ours", marker_fingerprint=inventory.fingerprint())) == "repointed"
    with pytest.raises(Failed, match="both /var/lib/docker .*1 images.* and /ebs/docker hold Docker data"):
        decide(situation(target_kind="ours", marker_fingerprint="something else"))


def test_refusals_name_the_problem():
    with pytest.raises(BadInput, match="has 4.0 GiB free; copying /var/lib/docker needs 5"):
        decide(situation(target_free=4 * GIB))
    with pytest.raises(BadInput, match="not a Docker data-root"):
        decide(situation(target_kind="foreign"))
    with pytest.raises(BadInput, match="mount point"):
        decide(situation(target_kind="mountpoint"))
    with pytest.raises(BadInput, match="contain each other"):
        decide(situation(target="/var/lib/docker/inner"))
    with pytest.raises(Failed, match="containerd image store"):
        decide(situation(containerd_image_store=True, current_root="/ebs/docker"))


def test_daemon_config_merge_keeps_every_other_key():
    text = '{"runtimes": {"nvidia": {"path": "nvidia-container-runtime", "runtimeArgs": []}}, "data-root": "/old"}'
    merged = json.loads(merged_daemon_config(text, "/ebs/docker", Path("daemon.json")))
    assert merged == {**NVIDIA, "data-root": "/ebs/docker"}
    assert json.loads(merged_daemon_config(None, "/ebs/docker", Path("daemon.json"))) == {"data-root": "/ebs/docker"}
    with pytest.raises(BadInput, match=r"daemon.json is not valid JSON: Expecting .* line 1"):
        merged_daemon_config('{"runtimes": ', "/x", Path("daemon.json"))
    with pytest.raises(BadInput, match="not a JSON object"):
        merged_daemon_config("[1]", "/x", Path("daemon.json"))


@pytest.mark.parametrize(
    "options",
    [
        '"--default-ulimit nofile=1024:4096 -g /home/ec2-user/SageMaker/docker-stuff"',
        '"--default-ulimit nofile=1024:4096 --graph=/x"',
        "'--data-root /x --default-ulimit nofile=1024:4096'",
        '"--default-ulimit nofile=1024:4096 --graph /a -g=/b"',
    ],
)
def test_sysconfig_loses_only_the_data_root_flags(options):
    text = f"# The max number of open files\nDAEMON_MAXFILES=1048576\nOPTIONS={options}\nDAEMON_PIDFILE_TIMEOUT=10\n"
    assert sysconfig_without_root_flags(text) == (
        "# The max number of open files\nDAEMON_MAXFILES=1048576\n"
        'OPTIONS="--default-ulimit nofile=1024:4096"\nDAEMON_PIDFILE_TIMEOUT=10\n'
    )


def test_sysconfig_without_flags_is_left_byte_identical():
    text = "OPTIONS='--default-ulimit nofile=1024:4096'\n  # comment\n"
    assert sysconfig_without_root_flags(text) == text


def test_local_mode_config_sets_container_root_and_keeps_the_rest():
    text = "local:\n  local_code: true\nSageMaker:\n  PythonSDK:\n    Modules:\n      Session:\n        X: 1\n"
    config = yaml.safe_load(local_mode_config(text, "/ebs/.sagemaker-local"))
    assert config["local"] == {"local_code": True, "container_root": "/ebs/.sagemaker-local"}
    assert config["SageMaker"]["PythonSDK"]["Modules"]["Session"] == {"X": 1}
    assert local_mode_config(yaml.safe_dump(config), "/ebs/.sagemaker-local") is None
    assert yaml.safe_load(local_mode_config(None, "/r")) == {"local": {"container_root": "/r"}}
    with pytest.raises(ValueError):
        local_mode_config("local: [1, 2]\n", "/r")
    with pytest.raises(ValueError):
        local_mode_config("local: {\n", "/r")


def test_classify_target(tmp_path):
    assert classify_target(tmp_path / "nothing")[0] == "absent"
    assert classify_target(tmp_path)[0] == "empty"
    (tmp_path / "notes.txt").write_text("mine")
    assert classify_target(tmp_path)[0] == "foreign"
    layout = tmp_path / "docker-stuff"
    (layout / "image" / "overlay2").mkdir(parents=True)
    (layout / "overlay2").mkdir()
    assert classify_target(layout)[0] == "layout"
    (layout / ".smdiag-data-root.json").write_text('{"fingerprint": "f"}')
    assert classify_target(layout) == ("ours", {"fingerprint": "f"})


@pytest.mark.parametrize(
    "complete, target_used, old_used, direction",
    [
        (False, False, False, "back"),  # killed before the copy was renamed into place: nothing to keep
        (False, True, True, "back"),  # a staging tree is never a data-root, whatever touched it
        (True, False, False, "forward"),  # a complete, unused copy: finish what the user asked for
        (True, True, False, "forward"),  # the engine ran on the copy (the user's work is there): keep it
        (True, False, True, "back"),  # the old root holds new work and the copy was never used
        (True, True, True, "both"),  # each holds what the other lacks: the user chooses
    ],
)
def test_recovery_goes_the_way_the_facts_say(complete, target_used, old_used, direction):
    facts = RecoveryFacts(target_complete=complete, target_used=target_used, old_used=old_used)
    assert recovery_direction(facts) == direction


def test_changed_since_sees_any_write_below_the_top_but_not_the_marker_or_reads(tmp_path):
    (tmp_path / "image" / "overlay2").mkdir(parents=True)
    (tmp_path / "image" / "overlay2" / "repositories.json").write_text("{}")
    settled = time.time()
    (tmp_path / MARKER).write_text("{}")
    (tmp_path / "image" / "overlay2" / "repositories.json").read_text()
    assert not changed_since(tmp_path, settled)
    (tmp_path / "image" / "overlay2" / "repositories.json").write_text('{"Repositories": {}}')
    assert changed_since(tmp_path, settled)
    assert not changed_since(tmp_path / "gone", settled)


def test_an_inventory_holds_more_when_it_has_what_the_copy_lacks():
    copied = Inventory(images={"sha256:a": ["a:1"]}, volumes={"v": {"f": 1}})
    assert not Inventory().holds_more_than(copied)  # a root the notebook's restart reset: nothing of value
    assert not copied.holds_more_than(copied)
    assert Inventory(images={"sha256:a": ["a:1"], "sha256:b": []}, volumes={"v": {"f": 1}}).holds_more_than(copied)
    assert Inventory(images={"sha256:a": ["a:1", "a:2"]}, volumes={"v": {"f": 1}}).holds_more_than(copied)
    assert Inventory(images={"sha256:a": ["a:1"]}, volumes={"v": {"f": 2}}).holds_more_than(copied)
