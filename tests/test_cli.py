"""Behaviour every command shares: version, bad input, JSON errors, light start-up."""

import json
import shutil
import subprocess
import sys


def test_console_script_is_installed_and_reports_its_version():
    exe = shutil.which("smdiag")
    assert exe, "the smdiag console script is not on PATH: pip install -e ."
    result = subprocess.run([exe, "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("smdiag ")


def test_bad_docker_host_is_bad_input_in_one_line(smdiag):
    result = smdiag("doctor", "--docker-host", "bogus://nowhere")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("smdiag: invalid docker host 'bogus://nowhere'") and "fix:" in result.stderr


def test_bad_settings_are_bad_input_and_json_says_so(smdiag):
    result = smdiag("doctor", "--json", env={"SMDIAG_HIGH_PCT": "ninety"})
    assert result.returncode == 2
    error = json.loads(result.stdout)
    assert error["ok"] is False and error["exit_code"] == 2 and "'ninety' is not a number" in error["problem"]
    assert "Traceback" not in result.stderr


def test_unknown_option_is_a_usage_error():
    result = subprocess.run([sys.executable, "-m", "agent", "doctor", "--nope"], capture_output=True, text=True)
    assert result.returncode == 2 and "No such option" in result.stderr


def test_startup_does_not_import_heavy_modules():
    code = (
        "import sys; from agent import cli; "
        "heavy = [m for m in ('sagemaker', 'tensorflow', 'torch', 'docker', 'boto3', 'botocore') if m in sys.modules]; "
        "print(heavy)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_reading_failure_reports_imports_no_sdk_or_framework(hermetic_env):
    for command in (("last-failure",), ("failures", "list")):
        result = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "agent", *command],
            env=hermetic_env, capture_output=True, text=True,
        )  # fmt: skip
        imported = {line.split("|")[-1].strip().split(".")[0] for line in result.stderr.splitlines() if "|" in line}
        assert "agent" in imported and "typer" in imported, result.stderr[-500:]
        assert not imported & {"sagemaker", "tensorflow", "torch", "docker", "boto3"}, command


def test_the_new_commands_refuse_bad_input_in_one_line_and_change_nothing(smdiag, hermetic_env, tmp_path):
    garbage = subprocess.run(
        [sys.executable, "-m", "agent", "failures", "record"], input="not json", env=hermetic_env,
        capture_output=True, text=True,
    )  # fmt: skip
    assert garbage.returncode == 2 and garbage.stderr.startswith("smdiag: stdin is not a failure capture")
    unknown = smdiag("images", "build", "--framework", "caffe")
    assert unknown.returncode == 2 and "unknown framework 'caffe'" in unknown.stderr
    absent = smdiag("kernels", "enable", "--envs", str(tmp_path / "*"), "--agent-python", str(tmp_path / "nope"))
    assert absent.returncode == 2 and "does not exist" in absent.stderr
    assert not (tmp_path / "state" / "kernel-hook").exists()
