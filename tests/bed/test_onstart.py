"""lifecycle-config/on-start.sh, run whole against a temporary root standing for a notebook instance: a bed
daemon on a small "root volume" restarted through stop/start commands, an "EBS volume", and two Python
environments standing for conda envs (one with the SageMaker SDK, one bare). The agent is installed by
the script itself, from this checkout, into its own virtual environment on the EBS volume."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from agent import fileops
from agent.statedir import StateDir
from testbed import TESTBED, bed

# One worker runs the tests that pip-install this checkout: setuptools builds inside the source folder
# (build/, *.egg-info), so two installs at once collide.
pytestmark = [pytest.mark.bed, pytest.mark.xdist_group("installs-the-checkout")]

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "lifecycle-config" / "on-start.sh"
BUDGET_S = 240
KERNEL_PROGRAM = (TESTBED / "guest_fit.py").read_text()
KERNEL_START = (
    "import json, sys; print(json.dumps({'hook': 'smdiag_kernel_hook' in sys.modules, "
    "'wrapper': 'smdiag_agent.guest.install' in sys.modules}))"
)


class Notebook:
    """The temporary root: the host's volumes and daemon, the conda-like environments, the script's env."""

    def __init__(self, host: bed.NotebookHost, tmp_path: Path, hermetic_env: dict[str, str]) -> None:
        self.host = host
        self.state = host.ebs_disk.path / ".smdiag"
        self.envs = tmp_path / "anaconda3" / "envs"
        self.plain_env, self.sdk_env = self.envs / "plain", self.envs / "sdk"
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(self.plain_env)], check=True)
        bed.host_packages_venv(self.sdk_env)
        self.base_env = {
            **{k: v for k, v in hermetic_env.items() if k != "SMDIAG_STATE_DIR"},
            **host.env(),
            "SMDIAG_SOURCE": str(REPO),
            "SMDIAG_PYTHON": sys.executable,
            "SMDIAG_CONDA_ENVS": f"{self.envs}/*",
            "SMDIAG_DOCKER_STOP_CMD": host.daemon.stop_command(),
            "SMDIAG_DOCKER_START_CMD": host.daemon.start_command(),
            "SMDIAG_SYSTEMD": "0",
            "SMDIAG_BIN_DIR": str(tmp_path / "usr-local-bin"),
            "HOME": str(tmp_path / "home"),
        }
        self.link = tmp_path / "usr-local-bin" / "smdiag"

    def on_start(self, timeout: float = BUDGET_S + 60, **env: str) -> tuple[subprocess.CompletedProcess, float]:
        started = time.monotonic()
        done = subprocess.run(
            ["bash", str(SCRIPT)], env={**self.base_env, **env}, capture_output=True, text=True, timeout=timeout
        )
        return done, time.monotonic() - started

    def steps(self) -> dict[str, tuple[str, str]]:
        """step -> (state, detail) from the status file the script leaves for doctor."""
        lines = (self.state / "onstart" / "status.tsv").read_text().splitlines()
        return {f[0]: (f[1], f[3]) for f in (line.split("\t") for line in lines if not line.startswith("#"))}

    def smdiag(self, *args: str) -> subprocess.CompletedProcess:
        """The agent the script installed, as a user on the notebook runs it."""
        return subprocess.run(
            [str(self.state / "venv" / "bin" / "smdiag"), *args],
            env={**self.base_env, "SMDIAG_STATE_DIR": str(self.state)},
            capture_output=True,
            text=True,
            timeout=120,
        )

    def kernel(self, env_dir: Path, *argv: str, **env: str) -> subprocess.CompletedProcess:
        """A kernel's interpreter in one of the environments, with the notebook user's plain environment."""
        kernel_env = {
            "PATH": os.environ["PATH"],
            "HOME": self.base_env["HOME"],
            "DOCKER_HOST": self.host.daemon.host,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
            "SAGEMAKER_SUPPRESS_V2_WARNING": "1",
            **env,
        }
        return subprocess.run(
            [str(env_dir / "bin" / "python"), *argv],
            env=kernel_env,
            capture_output=True,
            text=True,
            timeout=300,
            cwd=self.envs.parent,
        )

    def kernel_start(self, env_dir: Path) -> dict:
        done = self.kernel(env_dir, "-c", KERNEL_START)
        assert done.returncode == 0 and done.stderr == "", done.stderr
        return json.loads(done.stdout)

    def guards(self) -> list[int]:
        """The pids of every `diskguard run` of this notebook's state dir."""
        return [
            p.pid
            for p in psutil.process_iter(["cmdline"])
            if "diskguard" in (p.info["cmdline"] or []) and str(self.state) in " ".join(p.info["cmdline"] or [])
        ]

    def snapshot(self) -> dict:
        """What a second run must leave exactly as it was."""
        files = [
            self.host.daemon_json,
            *self.state.glob("kernel-hook/*.*"),
            *self.envs.glob("*/lib/*/site-packages/*.pth"),
        ]
        return {
            "files": {str(f): (f.read_bytes(), f.stat().st_mtime_ns) for f in files},
            "venv": os.readlink(self.state / "venv"),
            "daemon_pid": self.host.daemon.pid(),
            "root": self.host.root_dir(),
            "guards": self.guards(),
        }


@pytest.fixture
def notebook(host, tmp_path, hermetic_env, images):
    h = host(root_mb=400, ebs_mb=1024)
    with h.daemon.client() as client:
        images.build(client, "smdiag-test/broken-train:1", scripts={"train": bed.BROKEN_TRAIN_SCRIPT})
    return Notebook(h, tmp_path, hermetic_env)


def test_two_starts_install_move_guard_and_wrap_then_a_failing_fit_leaves_a_report(notebook):
    nb = notebook
    first, first_s = nb.on_start()
    assert first.returncode == 0, first.stdout + first.stderr
    assert first_s < BUDGET_S
    steps = nb.steps()
    assert {step: state for step, (state, _) in steps.items()} == {
        "install": "ok", "link": "ok", "bootstrap": "ok", "guard": "ok", "kernels": "ok", "compose": "ok"
    }, steps  # fmt: skip
    # `smdiag` is on the users' PATH, naming the agent's environment (which later installs replace).
    assert os.readlink(nb.link) == str(nb.state / "venv" / "bin" / "smdiag")
    assert subprocess.run([str(nb.link), "--version"], capture_output=True, text=True).stdout.startswith("smdiag ")
    assert steps["install"][1].startswith("installed smdiag") and "migrated" in steps["bootstrap"][1]
    assert "| install: ok in " in first.stdout  # each step's line, with its duration, for CloudWatch
    # The agent lives in its own environment on the EBS volume; the users' environments got one .pth each.
    assert (nb.state / "venv").resolve().is_relative_to(nb.host.ebs_disk.path)
    for env in (nb.plain_env, nb.sdk_env):
        assert [p.name for p in env.glob("lib/*/site-packages/*.pth") if "smdiag" in p.name] == [
            "smdiag-kernel-hook.pth"
        ]
        assert not list(env.glob("lib/*/site-packages/agent*")) and not list(env.glob("lib/*/site-packages/smdiag*/"))
    assert nb.host.root_dir() == str(nb.host.target)
    with nb.host.daemon.client() as client:
        assert client.images.get("smdiag-test/broken-train:1")
    assert len(nb.guards()) == 1

    before = nb.snapshot()
    nb.link.unlink()  # the root volume, which holds the bin directory, does not survive a restart
    second, second_s = nb.on_start()
    assert second.returncode == 0, second.stdout + second.stderr
    assert second_s < 60, second.stdout  # the goal for a later boot
    steps = nb.steps()
    assert steps["install"] == ("ok", steps["install"][1]) and steps["install"][1].startswith("unchanged")
    assert "unchanged" in steps["bootstrap"][1] and "already running" in steps["guard"][1]
    assert steps["link"][0] == "ok" and nb.link.is_symlink()
    assert nb.snapshot() == before  # same files, same agent, Docker not restarted, the same single guard

    # A user's kernel in the SDK environment: a failing local-mode fit is explained, with nothing imported.
    program = nb.envs.parent / "kernel_program.py"
    program.write_text(KERNEL_PROGRAM)
    done = nb.kernel(nb.sdk_env, str(program), "smdiag-test/broken-train:1")
    assert done.returncode == 3, done.stderr
    raised = json.loads(done.stdout.strip().splitlines()[-1])
    assert raised["type"] == "RuntimeError" and raised["notes"][0].startswith("smdiag: script_error:")
    assert "smdiag: local-mode fit failed [script_error]" in done.stderr
    shown = nb.smdiag("last-failure", "--json")
    assert shown.returncode == 0, shown.stderr
    report = json.loads(shown.stdout)
    assert report["category"] == "script_error" and "/opt/ml/code/train.py, line 3" in report["summary"]
    assert Path(report["path"]).is_relative_to(nb.state)  # the hook's state dir, though the kernel named none

    # A changed source that cannot be fetched: the start still succeeds, the installed agent is kept and
    # goes on working, and doctor says why.
    unreachable = f"http://127.0.0.1:{bed.free_port()}/smdiag-9.9.9-py3-none-any.whl"
    third, third_s = nb.on_start(SMDIAG_SOURCE=unreachable)
    assert third.returncode == 0 and third_s < BUDGET_S
    steps = nb.steps()
    assert steps["install"][0] == "failed" and "cannot fetch" in steps["install"][1]
    assert "the agent installed before is kept" in steps["install"][1]
    assert [steps[s][0] for s in ("bootstrap", "guard", "kernels")] == ["ok", "ok", "ok"]
    doctor = json.loads(nb.smdiag("doctor", "--json").stdout)
    [problem] = [p for p in doctor["problems"] if p["check"] == "onstart"]
    assert "'install' failed" in problem["problem"] and unreachable in problem["problem"]


def test_kernels_start_as_before_with_the_hook_and_with_the_agent_removed(notebook):
    nb = notebook
    done, _ = nb.on_start()
    assert done.returncode == 0 and nb.steps()["kernels"][0] == "ok", done.stdout
    for env in (nb.plain_env, nb.sdk_env):
        assert nb.kernel_start(env) == {"hook": True, "wrapper": False}  # the wrapper waits for the SDK
    # The wrapper needs nothing but the standard library: in the bare environment it loads on the attempt
    # to import the SDK, and that import fails exactly as it did before.
    bare = nb.kernel(nb.plain_env, "-c", "import sys\ntry:\n import sagemaker\nexcept ImportError as e: print(e)\n"
                     "print('smdiag_agent.guest.install' in sys.modules)")  # fmt: skip
    assert bare.stdout.splitlines() == ["No module named 'sagemaker'", "True"] and bare.stderr == ""

    probe = "import sys, sagemaker.estimator as e; print(hasattr(e.EstimatorBase.fit, '__smdiag_wrapped__'))"
    wrapped = nb.kernel(nb.sdk_env, "-c", probe)
    assert wrapped.returncode == 0 and wrapped.stdout.split()[-1] == "True", wrapped.stderr
    # The agent removed: kernels start, and the SDK imports unwrapped.
    (nb.state / "venv").unlink()
    unwrapped = nb.kernel(nb.sdk_env, "-c", probe)
    assert unwrapped.returncode == 0 and unwrapped.stdout.split()[-1] == "False", unwrapped.stderr
    # The whole state directory gone: the .pth line is a silent no-op.
    subprocess.run(["rm", "-rf", str(nb.state)], check=True)
    for env in (nb.plain_env, nb.sdk_env):
        assert nb.kernel_start(env) == {"hook": False, "wrapper": False}


def test_a_first_move_that_outlasts_its_wait_goes_on_in_the_background(notebook):
    nb = notebook
    # The test holds bootstrap's own lock, so the move cannot finish (nor start) before doctor has looked,
    # however slowly the rest of on-start runs; releasing it lets the move go on.
    with fileops.exclusive_lock(StateDir(nb.state).bootstrap / "lock"):
        done, _ = nb.on_start(SMDIAG_BOOTSTRAP_WAIT_S="1")
        assert done.returncode == 0, done.stdout + done.stderr
        steps = nb.steps()
        assert steps["bootstrap"][0] == "background" and steps["guard"][0] == "ok", steps
        pid = (nb.state / "onstart" / "bootstrap.pid").read_text().strip()
        doctor = json.loads(nb.smdiag("doctor", "--json").stdout)
        [problem] = [p for p in doctor["problems"] if p["check"] == "onstart"]
        assert "still copying in the background" in problem["problem"] and f"pid {pid}" in problem["problem"]

    bed.wait_for(lambda: (nb.state / "onstart" / "bootstrap.rc").exists(), timeout=120)
    bed.wait_for(lambda: bed.bed_answers(nb.host.daemon))
    assert nb.host.root_dir() == str(nb.host.target)  # Docker is back, on the EBS volume
    doctor = json.loads(nb.smdiag("doctor", "--json").stdout)
    assert not [p for p in doctor["problems"] if p["check"] == "onstart"]
    assert "background migration done" in nb.smdiag("doctor").stdout


def test_a_stop_command_without_its_start_command_is_named_by_the_scripts_settings(notebook):
    nb = notebook
    done, _ = nb.on_start(SMDIAG_DOCKER_START_CMD="")
    assert done.returncode == 0, done.stdout + done.stderr
    state, detail = nb.steps()["bootstrap"]
    assert state == "failed", detail
    assert "(SMDIAG_DOCKER_STOP_CMD and SMDIAG_DOCKER_START_CMD) go together" in detail, detail
    assert nb.host.root_dir() == str(nb.host.old_root)  # Docker was not touched
    assert bed.bed_answers(nb.host.daemon)


def test_an_unreachable_source_on_a_first_start_exits_0_in_time_and_the_log_says_why(notebook):
    nb = notebook
    source = f"http://127.0.0.1:{bed.free_port()}/smdiag-0.1.0-py3-none-any.whl"
    done, _seconds = nb.on_start(SMDIAG_SOURCE=source)  # within the script's budget: `on_start` times it out
    assert done.returncode == 0, done.stdout
    steps = nb.steps()
    assert steps["install"][0] == "failed" and f"cannot fetch {source}" in steps["install"][1]
    assert "refused" in steps["install"][1].lower() or "connect" in steps["install"][1].lower()
    assert {steps[s][0] for s in ("bootstrap", "guard", "kernels", "compose")} == {"skipped"}
    log = (nb.state / "onstart" / "on-start.log").read_text()
    assert "install: FAILED after" in log and source in log
    assert nb.host.root_dir() == str(nb.host.old_root) and nb.guards() == []  # nothing else was touched


def test_a_changed_source_gets_a_new_environment_and_replaces_the_guard(notebook, tmp_path):
    nb = notebook
    checkout = tmp_path / "checkout"
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True, text=True)
    for name in files.stdout.split():
        (checkout / name).parent.mkdir(parents=True, exist_ok=True)
        (checkout / name).write_bytes((REPO / name).read_bytes())
    done, _ = nb.on_start(SMDIAG_SOURCE=str(checkout))
    assert done.returncode == 0 and nb.steps()["guard"][0] == "ok", done.stdout
    first_venv, [first_guard] = os.readlink(nb.state / "venv"), nb.guards()

    (checkout / "agent" / "__init__.py").write_text((checkout / "agent" / "__init__.py").read_text() + "\n# new\n")
    done, _ = nb.on_start(SMDIAG_SOURCE=str(checkout))
    assert done.returncode == 0, done.stdout
    assert nb.steps()["install"][1].startswith("installed") and os.readlink(nb.state / "venv") != first_venv
    assert not Path(first_venv).exists()  # the old environment is gone once the new one works
    [guard] = nb.guards()
    assert guard != first_guard  # and the first has ended (a zombie, if nobody reaps it, has ended too)
    assert not psutil.pid_exists(first_guard) or psutil.Process(first_guard).status() == psutil.STATUS_ZOMBIE
    assert psutil.Process(guard).cmdline()[0].startswith(os.readlink(nb.state / "venv"))
