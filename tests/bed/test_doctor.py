"""`smdiag doctor` through the real CLI, against real engines and real (full) disks."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest


def df(path: Path) -> dict:
    """What df says about the filesystem holding `path`, in bytes."""
    out = subprocess.run(
        ["df", "-B1", "--output=size,used,avail,pcent,source,target", str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()[1]
    size, used, avail, pcent, source, target = out.split()
    return {"total": int(size), "used": int(used), "free": int(avail), "percent": float(pcent.rstrip("%")),
            "device": source, "mountpoint": target}  # fmt: skip


REGION = {"AWS_DEFAULT_REGION": "us-east-1"}
"""A configured region: with the SDK installed, its absence is a problem of its own."""


def report(result) -> dict:
    assert result.stdout, result.stderr
    return json.loads(result.stdout)


def disk_of(rep: dict, role: str) -> dict:
    return next(d for d in rep["disks"] if d["role"] == role)


@pytest.mark.bed
def test_reports_the_engines_real_root_and_disk_numbers_that_agree_with_df(smdiag, make_engine, make_disk):
    daemon, root_disk = make_engine(size_mb=400)
    root_disk.fill(leave_mb=150)  # make the numbers worth comparing
    ebs = make_disk("ebs", 300)
    result = smdiag("doctor", "--json", env={**REGION, "DOCKER_HOST": daemon.host, "SMDIAG_EBS_MOUNT": str(ebs.path),
                                             "SMDIAG_ROOT_VOLUME": str(root_disk.path)})  # fmt: skip
    rep = report(result)
    assert rep["engine"]["reachable"] and rep["engine"]["root_dir"] == str(daemon.data_root)
    assert rep["engine"]["storage_driver"] == "overlay2" and rep["engine"]["d_type"] is True
    assert rep["docker_root"] == {"path": str(daemon.data_root), "source": "engine", "on_root_volume": True,
                                  "on_ebs_volume": False}  # fmt: skip
    ours, theirs = disk_of(rep, "docker_root"), df(daemon.data_root)
    assert (ours["device"], ours["mountpoint"]) == (theirs["device"], theirs["mountpoint"])
    for key in ("total", "used", "free"):
        assert abs(ours[key] - theirs[key]) <= 0.01 * theirs["total"], key
    assert abs(ours["percent"] - theirs["percent"]) <= 1
    assert 50 < ours["percent"] < 85
    # A docker root on the root volume while an EBS volume is there: one problem, the fix names the volume.
    assert result.returncode == 1
    [problem] = rep["problems"]
    assert problem["check"] == "docker_root" and str(ebs.path) in problem["fix"]


@pytest.mark.bed
def test_healthy_when_the_docker_root_is_on_the_ebs_volume(smdiag, make_engine, make_disk):
    daemon, disk = make_engine(size_mb=400)
    tmp = make_disk("tmp", 100)
    result = smdiag("doctor", env={**REGION, "DOCKER_HOST": daemon.host, "SMDIAG_EBS_MOUNT": str(disk.path),
                                   "TMPDIR": str(tmp.path)})  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "healthy: ready for SageMaker local mode" in result.stdout
    assert f"data-root {daemon.data_root} (overlay2)" in result.stdout


@pytest.mark.bed
def test_a_full_disk_is_a_problem_with_a_fix(smdiag, make_engine, make_disk):
    daemon, disk = make_engine(size_mb=300)
    tmp = make_disk("tmp", 100)
    tmp.fill(leave_mb=5)
    result = smdiag("doctor", "--json", env={**REGION, "DOCKER_HOST": daemon.host, "SMDIAG_EBS_MOUNT": str(disk.path),
                                             "TMPDIR": str(tmp.path)})  # fmt: skip
    assert result.returncode == 1
    [problem] = report(result)["problems"]
    assert problem["check"] == "disk" and str(tmp.path) in problem["problem"] and "% full" in problem["problem"]
    assert problem["fix"]


def test_dead_socket_exits_1_with_one_line_and_no_traceback(smdiag, tmp_path):
    result = smdiag("doctor", env={"DOCKER_HOST": f"unix://{tmp_path}/gone.sock"})
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    [line] = [ln for ln in result.stdout.splitlines() if ln.startswith("  engine:")]
    assert line == f"  engine: cannot reach the Docker engine at unix://{tmp_path}/gone.sock: No such file or directory"
    rep = report(smdiag("doctor", "--json", env={"DOCKER_HOST": f"unix://{tmp_path}/gone.sock"}))
    assert rep["engine"]["reachable"] is False and "start Docker" in rep["engine"]["fix"]


@pytest.mark.bed
def test_a_killed_daemon_is_reported_as_refusing_connections(smdiag, make_engine):
    daemon, _ = make_engine(size_mb=300)
    daemon.kill()
    assert daemon.socket.exists()  # the socket file outlives the daemon
    result = smdiag("doctor", "--json", env={"DOCKER_HOST": daemon.host})
    assert result.returncode == 1
    engine = report(result)["engine"]
    assert engine["error"] == f"cannot reach the Docker engine at {daemon.host}: Connection refused"


@pytest.mark.parametrize(
    "text, detail",
    [
        ('{"data-root": "/x",}', "Expecting property name enclosed in double quotes"),
        ('["data-root", "/x"]', "the top level is not a JSON object"),
        ('{"data-root": 5}', '"data-root" is 5, not a path'),
    ],
)
def test_invalid_daemon_json_is_named_and_left_alone(smdiag, tmp_path, text, detail):
    config = tmp_path / "daemon.json"
    config.write_text(text)
    result = smdiag("doctor", "--json", env={"SMDIAG_DOCKER_CONFIG": str(config)})
    assert result.returncode == 1
    problem = next(p for p in report(result)["problems"] if p["check"] == "daemon_config")
    assert problem["problem"].startswith(f"{config} is invalid (") and detail in problem["problem"]
    assert config.read_text() == text


def test_notebook_instance_and_platform_are_recognised(smdiag, tmp_path):
    metadata = tmp_path / "resource-metadata.json"
    metadata.write_text(json.dumps({"ResourceName": "my-notebook", "ResourceArn": "arn:aws:sagemaker:..."}))
    os_release = tmp_path / "os-release"
    os_release.write_text('NAME="Amazon Linux"\nID="amzn"\nVERSION_ID="2023"\nPRETTY_NAME="Amazon Linux 2023.9"\n')
    env = {"SMDIAG_NOTEBOOK_METADATA": str(metadata), "SMDIAG_OS_RELEASE": str(os_release)}
    rep = report(smdiag("doctor", "--json", env=env))
    assert rep["notebook"] == {"is_notebook_instance": True, "name": "my-notebook", "platform": "AL2023",
                               "os": "Amazon Linux 2023.9"}  # fmt: skip
    os_release.write_text('ID="amzn"\nVERSION_ID="2"\n')
    assert report(smdiag("doctor", "--json", env=env))["notebook"]["platform"] == "AL2"


def test_credentials_are_reported_by_source_never_by_value(smdiag, tmp_path):
    secret, token = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "FwoGZXIvYXdzEBYaDHVzZXJ0b2tlbnZhbHVl"
    creds = tmp_path / "aws-credentials"
    creds.write_text(f"[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = {secret}\n")
    env = {"AWS_DEFAULT_REGION": "eu-west-1", "AWS_SESSION_TOKEN": token, "SMDIAG_STATE_DIR": str(tmp_path / "st")}
    for args in (("doctor", "--json"), ("doctor",), ("--verbose", "doctor")):
        result = smdiag(*args, env=env)
        for value in (secret, token, "AKIAIOSFODNN7EXAMPLE"):
            assert value not in result.stdout + result.stderr
    aws = report(smdiag("doctor", "--json", env=env))["aws"]
    assert aws == {"region": "eu-west-1", "credentials": True, "credentials_source": "shared-credentials-file",
                   "error": None}  # fmt: skip
    stored = b"".join(p.read_bytes() for p in (tmp_path / "st").rglob("*") if p.is_file())
    assert b"doctor.finished" in stored
    for value in (secret, token, "AKIAIOSFODNN7EXAMPLE"):
        assert value.encode() not in stored


def test_state_dir_that_cannot_be_created_is_a_problem_not_a_crash(smdiag, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = smdiag("doctor", "--json", env={"SMDIAG_STATE_DIR": str(blocker / "state")})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    problem = next(p for p in report(result)["problems"] if p["check"] == "state_dir")
    assert "Not a directory" in problem["problem"]


def test_events_are_logged_as_json_lines_in_the_state_dir(smdiag, tmp_path):
    smdiag("doctor", env={**REGION, "SMDIAG_STATE_DIR": str(tmp_path / "st")})
    lines = (tmp_path / "st" / "logs" / "agent.log").read_text().splitlines()
    event = json.loads(lines[-1])
    assert event["event"] == "doctor.finished" and event["level"] == "info" and event["problems"] == ["engine"]
    assert oct(os.stat(tmp_path / "st" / "logs" / "agent.log").st_mode & 0o777) == "0o600"


@pytest.mark.bed
def test_a_hung_daemon_is_reported_as_not_answering(smdiag, make_engine):
    daemon, _ = make_engine(size_mb=300)
    os.kill(daemon.pid(), signal.SIGSTOP)
    try:
        result = smdiag("doctor", "--json", env={"DOCKER_HOST": daemon.host})
    finally:
        os.kill(daemon.pid(), signal.SIGCONT)
    assert result.returncode == 1
    engine = report(result)["engine"]
    assert engine["error"] == f"cannot reach the Docker engine at {daemon.host}: the engine did not answer within 10s"
    assert "restart" in engine["fix"]


@pytest.mark.bed
def test_a_socket_the_user_may_not_open_points_at_the_docker_group(smdiag, make_engine):
    """A user outside the docker group: here root without the capability to bypass file permissions."""
    daemon, _ = make_engine(size_mb=300)
    daemon.socket.chmod(0)
    no_bypass = "-dac_override,-dac_read_search"
    result = smdiag(
        "doctor",
        "--json",
        env={"DOCKER_HOST": daemon.host},
        prefix=("setpriv", f"--bounding-set={no_bypass}", f"--inh-caps={no_bypass}"),
    )
    assert result.returncode == 1
    engine = report(result)["engine"]
    assert engine["error"].endswith(": Permission denied")
    assert engine["fix"] == "run with sudo, or add your user to the docker group"


def notebook_env(root: Path, name: str, sdk: str | None) -> Path:
    """A real Python environment (a venv) with the SageMaker SDK's wheel `sdk` in its site-packages, as pip
    installs it (without dependencies: doctor reads the distribution's metadata, it imports nothing)."""
    env = root / name
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    if sdk:
        site = env / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site),
                        f"sagemaker=={sdk}"], check=True, capture_output=True)  # fmt: skip
    return env


@pytest.mark.bed
def test_doctor_reads_the_sdk_and_the_hook_of_every_notebook_environment(smdiag, make_engine, tmp_path):
    daemon, disk = make_engine(size_mb=300)
    envs = tmp_path / "envs"
    v2, v3 = notebook_env(envs, "v2", "2.257.7"), notebook_env(envs, "v3", "3.27.0")
    bare = notebook_env(envs, "bare", None)
    notebook = {**REGION, "DOCKER_HOST": daemon.host, "SMDIAG_EBS_MOUNT": str(disk.path),
                "SMDIAG_CONDA_ENVS": f"{envs}/*"}  # fmt: skip
    enabled = smdiag("kernels", "enable", "--envs", str(v2), env=notebook)
    assert enabled.returncode == 0, enabled.stdout + enabled.stderr

    result = smdiag("doctor", "--json", env=notebook)
    found = {Path(e["environment"]).name: e for e in report(result)["sdk_environments"] if not e["own"]}
    assert found["v2"] | {"environment": None} == {"environment": None, "version": "2.257.7", "major": 2,
                                                    "hook": True, "own": False}  # fmt: skip
    assert (found["v3"]["version"], found["v3"]["major"], found["v3"]["hook"]) == ("3.27.0", 3, False)
    assert found["bare"]["version"] is None
    text = smdiag("doctor", "-v", env=notebook).stdout  # -v after the subcommand is accepted
    assert f"{v2}: sagemaker 2.257.7 (v2); failure reports on" in text
    assert f"{v3}: sagemaker 3.27.0 (v3); failure reports off (smdiag kernels enable would cover ModelTrainer" in text
    assert f"{bare}: not installed" in text

    enabled = smdiag("kernels", "enable", "--envs", str(v3), env=notebook)
    assert enabled.returncode == 0, enabled.stdout + enabled.stderr
    text = smdiag("doctor", "-v", env=notebook).stdout
    assert f"{v3}: sagemaker 3.27.0 (v3); failure reports on (ModelTrainer, ModelBuilder local serving" in text
