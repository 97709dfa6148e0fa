"""Behaviour every command shares: version, bad input, JSON errors, light start-up."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


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


def test_paths_for_a_shell_survive_eval_whatever_the_state_dir_is_called(smdiag, tmp_path):
    """on-start.sh evals this: a quote, `$`, a backquote or a space in the path must come back unchanged."""
    from agent.statedir import StateDir

    state = tmp_path / "it's $HOME `id` dir"
    done = smdiag("--state-dir", str(state), "paths", "--shell")
    assert done.returncode == 0, done.stderr
    names = sorted(StateDir(state).shell_assignments())
    script = 'eval "$1" && for name in ${@:2}; do printf "%s=%s\\n" "$name" "${!name}"; done'
    shell = subprocess.run(["bash", "-c", script, "_", done.stdout, *names], capture_output=True, text=True, check=True)
    seen = dict(line.split("=", 1) for line in shell.stdout.splitlines())
    assert seen == StateDir(state).shell_assignments()
    assert seen["SMDIAG_LOG_FILE"] == str(state / "logs" / "agent.log") and shell.stderr == ""
    as_json = smdiag("--state-dir", str(state), "paths", "--json")
    assert json.loads(as_json.stdout) == seen
    both = smdiag("paths", "--shell", "--json")
    assert both.returncode == 2 and both.stderr.startswith("smdiag: --shell and --json are two formats")


def test_the_new_commands_refuse_bad_input_in_one_line_and_change_nothing(smdiag, hermetic_env, tmp_path):
    garbage = subprocess.run(
        [sys.executable, "-m", "agent", "failures", "record"], input="not json", env=hermetic_env,
        capture_output=True, text=True,
    )  # fmt: skip
    assert garbage.returncode == 2 and garbage.stderr.startswith("smdiag: stdin is not a failure capture")
    unknown = smdiag("images", "build", "--framework", "caffe")
    assert unknown.returncode == 2 and "unknown framework 'caffe'" in unknown.stderr
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "env")], check=True)
    absent = smdiag("kernels", "enable", "--envs", str(tmp_path / "env"), "--agent-python", str(tmp_path / "nope"))
    assert absent.returncode == 2 and "does not exist" in absent.stderr
    assert not (tmp_path / "state" / "kernel-hook").exists()
    none = smdiag("kernels", "enable", env={"SMDIAG_CONDA_ENVS": str(tmp_path / "no-conda-*")})
    assert none.returncode == 1 and none.stderr.startswith("smdiag: no Python environment matches"), none.stderr
    assert smdiag("kernels", "disable", env={"SMDIAG_CONDA_ENVS": str(tmp_path / "no-conda-*")}).returncode == 0


def bad_inputs(tmp_path):
    """(command line, extra environment, stdin): each command given one input it must refuse before work."""
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory\n")
    no_envs = str(tmp_path / "no-envs-*")
    return [
        (["doctor", "--docker-host", "bogus://nowhere"], {}, None),
        (["doctor"], {"SMDIAG_HIGH_PCT": "abc"}, None),
        (["doctor", "--nope"], {}, None),
        (["bootstrap", "--target", "relative/dir", "--dry-run"], {}, None),
        (["last-failure", "--logs", "-3"], {}, None),
        (["failures", "list"], {"SMDIAG_LOW_PCT": "0"}, None),
        (["failures", "record"], {}, "not json"),
        (["health", "--quick", "--framework", "sklearn", "--plot", "/no/such/dir/h.png"], {}, None),
        (["health", "--framework", "caffe"], {}, None),
        (["health", "--mode", "cloud"], {}, None),
        (["health", "--scripts", str(tmp_path / "no-scripts")], {}, None),
        (["data", "generate", "--out", str(a_file)], {}, None),
        (["data", "generate", "--out", "/proc/nope"], {}, None),
        (["data", "generate"], {}, None),
        (["data", "upload", "--bucket", "Not_A_Bucket"], {}, None),
        (["data", "upload", "--bucket", "cookbook", "--endpoint-url", "localhost:5000"], {}, None),
        (["diskguard", "once", "--high", "abc"], {}, None),
        (["diskguard", "once", "--min-age", "soon"], {}, None),
        (["diskguard", "once", "--path", str(tmp_path / "nowhere")], {}, None),
        (["diskguard", "run", "--interval", "0"], {}, None),
        (["diskguard", "status", "--docker-host", "bogus://nowhere"], {}, None),
        (["diskguard", "make-room", "--for", "NOT AN IMAGE"], {}, None),
        (["diskguard", "start", "--docker-host", "bogus://nowhere", "--no-systemd"], {}, None),
        (["images", "build", "--framework", "caffe"], {}, None),
        (["kernels", "enable", "--envs", no_envs], {}, None),
        (["kernels", "disable", "--envs", no_envs], {}, None),
        (["uninstall", "--bin-dir", "relative/bin"], {}, None),
        (["uninstall", "--envs", no_envs, "--dry-run"], {}, None),
    ]


def test_every_command_refuses_bad_input_in_one_line_before_any_work(hermetic_env, tmp_path):
    for args, env, stdin in bad_inputs(tmp_path):
        for as_json in (False, True):
            argv = [sys.executable, "-m", "agent", *args, *(["--json"] if as_json else [])]
            done = subprocess.run(argv, env={**hermetic_env, **env}, input=stdin or "", capture_output=True,
                                  text=True, timeout=120)  # fmt: skip
            what = f"{' '.join(args)} {env} json={as_json}: {done.stdout!r} {done.stderr!r}"
            assert done.returncode == 2, what
            assert "Traceback" not in done.stdout + done.stderr, what
            assert done.stderr.startswith("smdiag: ") and done.stderr.count("\n") == 1, what
            if as_json:
                error = json.loads(done.stdout)
                assert error["ok"] is False and error["exit_code"] == 2 and error["problem"] and error["fix"], what
            else:
                assert done.stdout == "", what
    assert not (tmp_path / "state" / "diskguard" / "run.pid").exists()
    assert not list(tmp_path.glob("no-envs-*")) and not Path("/proc/nope").exists()


def test_an_unexpected_error_is_one_line_naming_the_log_and_the_traceback_is_only_there(hermetic_env, tmp_path):
    """A stored report that is JSON but not an object: nothing checks for it, so reading it crashes."""
    report = tmp_path / "state" / "failures" / "20261201T000000Z-broken" / "report.json"
    report.parent.mkdir(parents=True)
    report.write_text("[1, 2]\n")
    log = tmp_path / "state" / "logs" / "agent.log"
    for as_json in (False, True):
        done = subprocess.run([sys.executable, "-m", "agent", "last-failure", *(["--json"] if as_json else [])],
                              env=hermetic_env, capture_output=True, text=True)  # fmt: skip
        assert done.returncode == 1 and "Traceback" not in done.stdout + done.stderr
        assert done.stderr.count("\n") == 1 and done.stderr.startswith("smdiag: internal error: TypeError")
        assert f"the traceback is in {log}" in done.stderr
        if as_json:
            assert str(log) in json.loads(done.stdout)["fix"]
    assert "Traceback (most recent call last)" in log.read_text()


COMMANDS = [
    ["doctor"], ["bootstrap"], ["last-failure"], ["health"], ["failures", "list"], ["failures", "record"],
    ["data", "generate"], ["data", "upload"], ["diskguard", "once"], ["diskguard", "run"], ["diskguard", "status"],
    ["diskguard", "make-room"], ["diskguard", "start"], ["diskguard", "stop"], ["images", "build"],
    ["kernels", "enable"], ["kernels", "disable"], ["uninstall"],
]  # fmt: skip


def test_help_shows_defaults_env_variables_and_readable_metavars(smdiag):
    once = smdiag("diskguard", "once", "--help")
    assert once.returncode == 0
    text = " ".join(once.stdout.split())
    assert "SMDIAG_HIGH_PCT; default 85" in text and "SMDIAG_LOW_PCT; default 75" in text
    assert "--high PCT" in text and "--keep REGEX" in text and "[default: 10m]" in text
    for command in COMMANDS:
        shown = smdiag(*command, "--help").stdout
        assert "Usage: smdiag" in shown and "<bool>" not in shown and "<list" not in shown, command
    assert "env SMDIAG_STATE_DIR" in smdiag("--help").stdout


def help_text(smdiag, *command: str) -> str:
    """`--help` as an 80-column terminal shows it."""
    done = smdiag(*command, "--help", env={"COLUMNS": "80"})
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_help_lists_each_command_once_on_one_line_by_what_it_is_for_and_says_where_to_start(smdiag):
    from agent.cli.app import COMMANDS, GROUPS

    shown = help_text(smdiag)
    sections = {}
    for block in shown.split("\n\n"):
        heading, *rows = block.splitlines()
        if heading in ("Daily use:", "Managed jobs:", "Setup, as root:", "Smoke tests:"):
            sections[heading] = rows
    assert list(sections) == ["Daily use:", "Managed jobs:", "Setup, as root:", "Smoke tests:"], shown
    rows = [row for section in sections.values() for row in section]
    assert all(re.fullmatch(r"  [a-z-]+ +\S.*", row) for row in rows), shown  # one line each: none wraps
    assert sorted(row.split()[0] for row in rows) == sorted([*COMMANDS, *GROUPS])
    assert not [row for row in rows if "..." in row] and shown.rstrip().splitlines()[-1] == "start here: smdiag doctor"
    assert "doctor" in sections["Daily use:"][0] and "uninstall" in " ".join(sections["Setup, as root:"])


def test_no_group_cuts_a_commands_description_mid_phrase(smdiag):
    from agent.cli.app import GROUPS

    for group in GROUPS:
        listed = help_text(smdiag, group).split("Commands:\n")[1]
        assert "..." not in listed and listed.strip(), (group, listed)


def test_help_imports_no_library_module(hermetic_env):
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "agent", "--help"], env=hermetic_env,
                          capture_output=True, text=True)  # fmt: skip
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    agent_modules = {name for name in imported if name.startswith("agent")}
    assert agent_modules and all(name.startswith("agent.cli") or name in ("agent", "agent.errors")
                                 for name in agent_modules), agent_modules  # fmt: skip
    assert not {name.split(".")[0] for name in imported} & {"docker", "psutil", "yaml", "structlog", "boto3"}


def path_options(tmp_path: Path, missing: Path) -> list[tuple[list[str], dict[str, str]]]:
    """Every path option of every command, given a path whose directory does not exist: (argv, env)."""
    env_dir = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True)
    return [
        (["--state-dir", str(missing / "state"), "paths"], {}),
        (["data", "generate", "--out", str(missing / "data")], {}),
        (["health", "--framework", "sklearn", "--plot", str(missing / "h.png")], {}),
        (["health", "--framework", "sklearn", "--scripts", str(missing / "scripts")], {}),
        (["bootstrap", "--dry-run", "--target", str(missing / "docker")], {}),
        (["bootstrap", "--dry-run", "--daemon-config", str(missing / "daemon.json")], {}),
        (["bootstrap", "--dry-run", "--sysconfig", str(missing / "docker")], {}),
        (["fix", "--dry-run", "--bin-dir", str(missing / "bin")], {}),
        (["doctor", "--fix", "--dry-run", "--bin-dir", str(missing / "bin")], {}),
        (["doctor", "--fix", "--dry-run"], {"SMDIAG_BIN_DIR": str(missing / "bin")}),
        (["uninstall", "--dry-run", "--bin-dir", str(missing / "bin")], {}),
        (["diskguard", "once", "--path", str(missing / "disk")], {}),
        (["kernels", "enable", "--envs", str(env_dir), "--agent-python", str(missing / "python")], {}),
    ]


def test_every_path_option_refuses_a_missing_directory_alike_and_creates_nothing(hermetic_env, tmp_path):
    """The rule (agent.inputs.new_path): a path smdiag writes may be new, the directory it goes in must exist;
    a path it reads must exist. Either way a missing directory is named, in one line, before any work."""
    missing = tmp_path / "no-such-dir"
    for args, env in path_options(tmp_path, missing):
        done = subprocess.run([sys.executable, "-m", "agent", *args], env={**hermetic_env, **env},
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        what = f"{args} {env}: {done.stderr!r}"
        assert done.returncode == 2 and done.stderr.count("\n") == 1 and str(missing) in done.stderr, what
        assert "does not exist" in done.stderr or "is not a directory" in done.stderr, what
        assert not missing.exists(), what


def test_a_new_path_in_an_existing_directory_is_made(smdiag, tmp_path):
    out = tmp_path / "new-data"
    done = smdiag("--state-dir", str(tmp_path / "new-state"), "data", "generate", "--out", str(out), "--json")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(json.loads(done.stdout)["rows"])
    assert (tmp_path / "new-state" / "logs").is_dir()


@pytest.fixture(scope="session")
def core_only_python(tmp_path_factory) -> str:
    """A real interpreter with only what smdiag's command line imports (typer, structlog, from PyPI): no
    SageMaker SDK, no numpy, no frameworks: a fresh install without extras."""
    root = tmp_path_factory.mktemp("core-only")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root / "venv")], check=True)
    packages = root / "packages"
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--target", str(packages), "typer",
                                "structlog"], capture_output=True, text=True)  # fmt: skip
    assert installed.returncode == 0, installed.stderr[-2000:]
    site = next((root / "venv").glob("lib/python3.*/site-packages"))
    (site / "core-only.pth").write_text(f"{packages}\n")
    return str(root / "venv" / "bin" / "python")


def test_a_missing_extra_is_bad_input_that_names_it(core_only_python, hermetic_env, tmp_path):
    for args, extra in [
        (["health", "--mode", "local", "--framework", "sklearn"], "pip install 'smdiag[sagemaker-v2]'"),
        (["health", "--mode", "native", "--framework", "sklearn"], "pip install 'smdiag[frameworks]'"),
        (["data", "generate", "--out", str(tmp_path / "data")], "pip install 'smdiag[frameworks]'"),
    ]:
        for as_json in (False, True):
            done = subprocess.run([core_only_python, "-m", "agent", *args, *(["--json"] if as_json else [])],
                                  env=hermetic_env, capture_output=True, text=True)  # fmt: skip
            what = f"{args} json={as_json}: {done.stdout!r} {done.stderr!r}"
            assert done.returncode == 2 and "Traceback" not in done.stdout + done.stderr, what
            assert done.stderr.count("\n") == 1 and extra in done.stderr, what
            if as_json:
                assert extra in json.loads(done.stdout)["fix"], what
    assert not (tmp_path / "data").exists()
