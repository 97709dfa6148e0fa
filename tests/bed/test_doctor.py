"""`smdiag doctor` through the real CLI, against real engines and real (full) disks."""

import glob
import json
import os
import pty
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from testbed import bed


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
    assert result.stdout.splitlines()[-1].startswith("ready for SageMaker local mode (the SDK is in ")
    assert f"data-root {daemon.data_root} (overlay2)" in result.stdout
    assert "!!" not in result.stdout


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
    [line] = [ln for ln in result.stdout.splitlines() if ln.startswith("!! Docker engine:")]
    assert line == (
        f"!! Docker engine: cannot reach the Docker engine at unix://{tmp_path}/gone.sock: No such file or directory"
    )
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


def notebook_env(root: Path, name: str, sdk: str | None, python: str = sys.executable) -> Path:
    """A real Python environment (a venv of `python`) with the SageMaker SDK's wheel `sdk` in its site-packages,
    as pip installs it (without dependencies: doctor reads the distribution's metadata, it imports nothing)."""
    env = root / name
    subprocess.run([python, "-m", "venv", "--without-pip", str(env)], check=True)
    if sdk:
        site = next(env.glob("lib/python3.*/site-packages"))
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
                                                    "hook": True, "own": False, "hook_loaded": True,
                                                    "hook_error": None}  # fmt: skip
    assert (found["v3"]["version"], found["v3"]["major"], found["v3"]["hook"]) == ("3.27.0", 3, False)
    assert found["v3"]["hook_loaded"] is None  # no hook there: no interpreter started to look
    assert found["bare"]["version"] is None
    # Reports off where the SDK is: a next step with its command, not a problem (the exit code stays 0).
    assert result.returncode == 0 and report(result)["problems"] == []
    [step] = report(result)["next_steps"]
    assert step["check"] == "failure_reports" and step["items"] == [str(v3)]
    assert step["commands"] == ["smdiag kernels enable"] and step["then"] == "then restart the kernel"
    text = smdiag("doctor", "-v", env=notebook).stdout  # -v after the subcommand is accepted
    assert f"ok SageMaker SDK     {v2}: sagemaker 2.257.7 (v2); failure reports on" in text
    off = f"-> SageMaker SDK     {v3}: sagemaker 3.27.0 (v3); failure reports off (smdiag kernels enable would cover"
    assert f"{off} ModelTrainer" in text
    assert f"{bare}: not installed" in text
    assert f"\n-> failure reports: off in {v3}: a local-mode call that fails there gets no " \
           "report; turn them on with\n      smdiag kernels enable\n   then restart the kernel\n" in text  # fmt: skip
    assert text.splitlines()[-1].endswith(" — next: `smdiag kernels enable`, then restart the kernel")

    enabled = smdiag("kernels", "enable", "--envs", str(v3), env=notebook)
    assert enabled.returncode == 0, enabled.stdout + enabled.stderr
    text = smdiag("doctor", "-v", env=notebook).stdout
    assert f"{v3}: sagemaker 3.27.0 (v3); failure reports on (ModelTrainer, ModelBuilder local serving" in text
    assert "->" not in text and text.splitlines()[-1] == f"ready for SageMaker local mode (the SDK is in " \
           f"{sys.prefix}, {v2.resolve()}, {v3.resolve()})"  # fmt: skip


def python_older_than_3_10() -> str:
    """An interpreter older than 3.10 on this machine (pyenv keeps several here): the hook's .pth line
    does nothing there, as in an old conda environment of a notebook instance."""
    candidates = [shutil.which(f"python3.{minor}") for minor in (9, 8, 7)]
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.[6-9].*/bin/python3")), reverse=True)
    for candidate in filter(None, candidates):
        probe = subprocess.run([candidate, "-c", "import sys; print(sys.version_info < (3, 10))"],
                               capture_output=True, text=True)  # fmt: skip
        if probe.stdout.strip() == "True":
            return candidate
    if os.environ.get("CI") == "true":
        pytest.fail("the bed needs a Python older than 3.10 (e.g. pyenv's 3.9)", pytrace=False)
    pytest.skip("no Python older than 3.10 on this machine")


@pytest.mark.bed
def test_reports_are_not_on_where_kernels_enable_failed_to_load_the_hook(smdiag, tmp_path):
    """`kernels enable` writes the hook into an environment whose interpreter never loads it, and says
    FAILED there: doctor agrees (the file is there, the interpreter was seen not to load it)."""
    old = notebook_env(tmp_path / "envs", "old", "2.257.7", python=python_older_than_3_10())
    notebook = {**REGION, "SMDIAG_CONDA_ENVS": f"{tmp_path}/envs/*"}
    enabled = smdiag("kernels", "enable", env=notebook)
    assert enabled.returncode == 1 and f"{old.resolve()}: FAILED: its python started without loading the hook" \
        in enabled.stdout  # fmt: skip

    rep = report(smdiag("doctor", "--json", env=notebook))
    [env] = [e for e in rep["sdk_environments"] if not e["own"]]
    assert env["hook"] is True and env["hook_loaded"] is False
    assert env["hook_error"] == "its python started without loading the hook (Python older than 3.10?)"
    [step] = rep["next_steps"]
    assert step["items"] == [str(old.resolve())] and env["hook_error"] in step["step"]
    text = smdiag("doctor", env=notebook).stdout
    assert "failure reports on" not in text
    assert f"-> SageMaker SDK     {old.resolve()}: sagemaker 2.257.7 (v2); failure reports off: the hook is there, " \
           "but its python does not load it" in text  # fmt: skip
    assert f"\n-> failure reports: not loaded in {old.resolve()}: {env['hook_error']}" in text


def test_a_host_with_problems_ends_with_the_verdict_and_the_command_that_repairs_what_it_can(smdiag, tmp_path):
    """No engine (smdiag can start one) and no region (the user sets it): two problems, one repaired by
    `doctor --fix`, each fix's command on a line of its own; --json keeps the check ids and adds the verdict."""
    gone = f"unix://{tmp_path}/gone.sock"
    result = smdiag("doctor", env={"DOCKER_HOST": gone})
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[-1] == "not ready for SageMaker local mode: 2 problems — `sudo smdiag doctor --fix` repairs 1 of them"
    engine = lines.index(f"!! Docker engine: cannot reach the Docker engine at {gone}: No such file or directory")
    assert lines[engine + 1].startswith("   fix: start Docker")
    assert lines[engine + 2] == "      sudo smdiag doctor --fix --only engine"
    aws = lines.index("!! AWS setup: no AWS region is configured: the SageMaker SDK raises NoRegionError")
    assert lines[aws + 2] == "      export AWS_DEFAULT_REGION=us-east-1"
    names = {re.split(r"\s{2,}", line[3:])[0] for line in lines[: lines.index("")]}
    assert {"Docker engine", "Docker data-root", "Docker's disk", "temp dir", "EBS volume", "failure wrapper",
            "on-start script", "smdiag state", "SageMaker SDK", "AWS setup"} <= names  # fmt: skip
    assert not names & {"docker_root", "onstart", "wrapper", "disk", "state_dir", "sagemaker_sdk", "daemon_config"}
    assert "\033[" not in result.stdout and "✗" not in result.stdout  # piped: plain text

    rep = report(smdiag("doctor", "--json", env={"DOCKER_HOST": gone}))
    assert [(p["check"], p["remedy"]) for p in rep["problems"]] == [("engine", "start_engine"), ("aws", None)]
    assert rep["verdict"] == {"ready": False, "problems": 2, "repairable": 1, "fix_command": "sudo smdiag doctor --fix",
                              "restarts_docker": False, "repairs": ["engine"]}  # fmt: skip
    assert [d["role"] for d in rep["disks"]] == ["docker_root", "tmp", "ebs"]


def on_a_terminal(smdiag_args: tuple[str, ...], env: dict) -> tuple[int, str]:
    """`smdiag *args` with its stdout on a terminal: what the terminal showed, and the exit code."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "agent", *smdiag_args], env=env, stdin=subprocess.DEVNULL,
                            stdout=slave, stderr=subprocess.PIPE)  # fmt: skip
    os.close(slave)
    shown = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the last writer closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    os.close(master)
    return proc.wait(timeout=120), shown.decode().replace("\r\n", "\n")


def test_on_a_terminal_doctor_shows_marks_and_colour(hermetic_env, tmp_path):
    env = {k: v for k, v in {**hermetic_env, "TERM": "xterm", "DOCKER_HOST": f"unix://{tmp_path}/gone.sock"}.items()
           if k != "NO_COLOR"}  # fmt: skip
    code, shown = on_a_terminal(("doctor",), env)
    assert code == 1
    assert shown.startswith("\033[31m✗ \033[0m Docker engine ") and "\033[32m✓ \033[0m temp dir " in shown
    assert "\033[1msudo smdiag doctor --fix --only engine\033[0m" in shown
    assert shown.rstrip("\n").splitlines()[-1] == (
        "\033[31m✗ \033[0m \033[31mnot ready for SageMaker local mode: 2 problems — `sudo smdiag doctor --fix` "
        "repairs 1 of them\033[0m"
    )
    code, shown = on_a_terminal(("doctor",), {**env, "NO_COLOR": "1"})
    assert code == 1 and "\033[" not in shown and shown.startswith("✗  Docker engine ")


@pytest.mark.bed
def test_a_killed_guard_is_a_doctor_problem_until_it_is_stopped_or_started_again(smdiag, make_engine, tmp_path):
    daemon, _ = make_engine(size_mb=300)
    env = {"DOCKER_HOST": daemon.host, "SMDIAG_SYSTEMD_DIR": str(tmp_path / "no-units"), **REGION}
    started = smdiag("diskguard", "start", "--no-systemd", "--json", env=env)
    assert started.returncode == 0, started.stderr
    pid = json.loads(started.stdout)["pid"]
    try:
        assert f"running (pid {pid})" in smdiag("doctor", env=env).stdout
        os.kill(pid, signal.SIGKILL)
        bed.wait_for(lambda: not json.loads(smdiag("diskguard", "status", "--json", env=env).stdout)["guard_running"])
        [problem] = [p for p in report(smdiag("doctor", "--json", env=env))["problems"] if p["check"] == "guard"]
        assert f"the disk guard (pid {pid}) ended without being stopped" in problem["problem"]
        assert problem["commands"] == ["sudo smdiag diskguard start"]

        assert smdiag("diskguard", "stop", env=env).returncode == 0  # meant to stay off: no longer a problem
        assert not [p for p in report(smdiag("doctor", "--json", env=env))["problems"] if p["check"] == "guard"]
        again = smdiag("diskguard", "start", "--no-systemd", "--json", env=env)
        pid = json.loads(again.stdout)["pid"]
        doctor = smdiag("doctor", env=env).stdout
        assert f"running (pid {pid})" in doctor and "ended without being stopped" not in doctor
    finally:
        smdiag("diskguard", "stop", env=env)


@pytest.mark.bed
def test_the_notebook_users_doctor_reads_the_state_of_roots_guard(smdiag, make_engine, tmp_path, hermetic_env):
    """On a notebook the guard runs as root and doctor as ec2-user. Here the guard's files are made another user's,
    and doctor runs as root without the capability to bypass file permissions: a user who is not their owner."""
    daemon, _ = make_engine(size_mb=300)
    env = {"DOCKER_HOST": daemon.host, "SMDIAG_SYSTEMD_DIR": str(tmp_path / "no-units"), **REGION}
    started = smdiag("diskguard", "start", "--no-systemd", "--json", env=env)
    assert started.returncode == 0, started.stderr
    pid = json.loads(started.stdout)["pid"]
    guard_files = Path(hermetic_env["SMDIAG_STATE_DIR"]) / "diskguard"
    try:
        bed.wait_for(lambda: (guard_files / "events.json").exists())
        for path in guard_files.iterdir():
            os.chown(path, 1000, 1000)
        no_bypass = "-dac_override,-dac_read_search"
        as_user = ("setpriv", f"--bounding-set={no_bypass}", f"--inh-caps={no_bypass}")
        doctor = smdiag("doctor", env=env, prefix=as_user)
        assert "internal error" not in doctor.stderr, doctor.stderr
        assert f"running (pid {pid})" in doctor.stdout, doctor.stdout + doctor.stderr
        status = json.loads(smdiag("diskguard", "status", "--json", env=env, prefix=as_user).stdout)
        assert status["guard_events"]["following"] is True  # what doctor reads of a guard that loses them
    finally:
        smdiag("diskguard", "stop", env=env)
