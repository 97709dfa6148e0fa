"""SageMaker SDK v3 local mode with the kernel hook: `ModelTrainer(training_mode=Mode.LOCAL_CONTAINER).train()`
(tests/guest_program_v3.py) in the real SDK v3 (its own environment, cached on the machine: conftest
`sdk_v3_site`) against a bed engine, with busybox images whose CMD is `train` (v3 runs the image's own command).

A failing call leaves a report that `smdiag last-failure` shows; and with the hook the user sees what they see
without it. Compared: stdout, stderr, the exception (type and message) and every SDK function called in the
main thread. Removed before comparing, and only these: job-name timestamps and each run's own container root
(compose names its containers after it), which differ between any two runs; in a failing call the wrapper's
own summary (stderr) and note (exception).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from agent import kernels

import bed

# The first run on a machine builds the SDK v3 environment inside the first test's setup.
pytestmark = [pytest.mark.bed, pytest.mark.timeout(600 + bed.SDK_BUILD_TIMEOUT_S)]

PROGRAM = Path(__file__).with_name("guest_program_v3.py")
IMAGE = "v3guest/train:1"
BROKEN_IMAGE = "v3guest/broken:1"
PLANTED = {
    "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7V3PLANT",
    "AWS_SECRET_ACCESS_KEY": "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",
}
VARYING = [
    (re.compile(r"\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}(-\d{3})?"), "<job time>"),
    (re.compile(r"run\d+(?=[_/])"), "run<n>"),  # the run's container root, and compose's project and container names
]
SUMMARY = re.compile(r"\nsmdiag: local-mode \w+ failed \[\w+\]\n(  .*\n){3}")


def normalized(text: str) -> str:
    for pattern, replacement in VARYING:
        text = pattern.sub(replacement, text)
    return text


@dataclass
class Run:
    stdout: str
    stderr: str
    result: dict

    @property
    def exception(self) -> dict | None:
        raised = self.result["exception"]
        return raised and {"type": raised["type"], "message": normalized(raised["message"])}


class V3Guests:
    """Two environments seeing the cached SDK v3: `plain`, and `hooked` with the kernel hook enabled."""

    def __init__(self, tmp_path: Path, env: dict[str, str], site: str) -> None:
        self.state = Path(env["SMDIAG_STATE_DIR"])
        self.work = tmp_path / "work"
        self.data = self.work / "data"
        self.data.mkdir(parents=True)
        (self.data / "train.csv").write_text("1,2\n3,4\n")
        self.envs = {name: bed.packages_venv(tmp_path / "envs" / name, site) for name in ("plain", "hooked")}
        enabled = kernels.enable(self.state, [str(self.envs["hooked"])], Path(sys.executable))
        assert enabled["ok"], enabled
        self.env = {**env, "HOME": str(tmp_path / "home"), "AWS_DEFAULT_REGION": "us-east-1"}
        self.runs = 0

    def run(self, where: str, image: str, **env: str) -> Run:
        self.runs += 1
        root = self.work / f"run{self.runs}"
        root.mkdir()
        result = self.work / f"run{self.runs}.json"
        done = subprocess.run(
            [str(self.envs[where] / "bin" / "python"), str(PROGRAM), str(result), image, str(self.data), str(root)],
            env={**self.env, **env}, cwd=self.work, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        return Run(done.stdout, done.stderr, json.loads(result.read_text()))

    def both(self, image: str, **env: str) -> tuple[Run, Run]:
        return self.run("plain", image, **env), self.run("hooked", image, **env)

    def reports(self) -> list[dict]:
        return [json.loads(p.read_text()) for p in sorted(self.state.glob("failures/*/report.json"))]


def assert_same(plain: Run, hooked: Run) -> None:
    assert normalized(hooked.stdout) == normalized(plain.stdout)
    assert normalized(SUMMARY.sub("", hooked.stderr)) == normalized(plain.stderr)
    assert hooked.exception == plain.exception
    assert hooked.result["sdk_calls"] == plain.result["sdk_calls"]


@pytest.fixture
def guests(tmp_path, hermetic_env, sdk_v3_site) -> V3Guests:
    return V3Guests(tmp_path, hermetic_env, sdk_v3_site)


@pytest.fixture
def engine(make_engine, images, guests):
    """A bed engine with a `train` that succeeds and one that fails as a broken Python script does."""
    daemon, _disk = make_engine()
    with daemon.client() as client:
        images.build(client, IMAGE, scripts={"train": "echo training; echo done"}, cmd=["train"])
        # One stream: the engine copies a container's stdout and stderr apart, so their order varies between runs.
        broken = "exec 2>&1\n" + bed.BROKEN_TRAIN_SCRIPT
        images.build(client, BROKEN_IMAGE, scripts={"train": broken}, cmd=["train"])
        client.networks.create("sagemaker-local")  # made by whichever run came first, and said so, otherwise
    guests.env["DOCKER_HOST"] = daemon.host
    return daemon


def test_a_succeeding_and_a_failing_train_look_the_same_with_and_without_the_hook(guests, engine):
    plain, hooked = guests.both(IMAGE)
    assert_same(plain, hooked)
    assert plain.exception is None and "training" in plain.stdout + plain.stderr
    assert guests.reports() == []

    plain, hooked = guests.both(BROKEN_IMAGE)
    assert_same(plain, hooked)
    assert plain.exception["type"] == "RuntimeError" and "Failed to run" in plain.exception["message"]
    assert "cannot import name 'seeds'" in plain.stdout + plain.stderr  # the SDK streams the container's output
    assert plain.result["exception"]["notes"] == []
    [note] = hooked.result["exception"]["notes"]
    assert note.startswith("smdiag: script_error:") and "smdiag last-failure" in note
    assert len(guests.reports()) == 1


def test_a_broken_training_script_is_named_by_last_failure_and_no_planted_key_is_written(guests, engine, smdiag):
    """With a Session the SDK writes the AWS keys into its compose file: none reaches smdiag's files."""
    hooked = guests.run("hooked", BROKEN_IMAGE, GUEST_SESSION="1", **PLANTED)
    assert hooked.exception["type"] == "RuntimeError" and "Failed to run" in hooked.exception["message"]
    assert "smdiag: local-mode train failed [script_error]" in hooked.stderr
    compose_file = next(guests.work.glob("run*/docker-compose.yaml")).read_text()
    assert PLANTED["AWS_SECRET_ACCESS_KEY"] in compose_file  # the SDK's own file: the test plants for real

    shown = smdiag("last-failure", env=guests.env)
    assert shown.returncode == 0, shown.stderr
    assert "script_error" in shown.stdout
    assert "/opt/ml/code/train.py, line 3" in shown.stdout
    assert "cannot import name 'seeds' from 'numpy.random'" in shown.stdout
    report = json.loads(smdiag("last-failure", "--json", env=guests.env).stdout)
    assert report["call"]["kind"] == "train" and report["call"]["sdk"] == "v3"
    assert report["call"]["images"] == [BROKEN_IMAGE]
    [container] = report["containers"]
    assert container["exit_code"] == 1 and "Starting training" in container["logs"]
    assert report["compose_file"]["path"].endswith("docker-compose.yaml") and report["df_h"]
    assert any("Failed to run" in line or "exited with code 1" in line for line in report["compose_output"])

    written = [p for p in guests.state.rglob("*") if p.is_file()]
    assert any(p.name == "report.json" for p in written)
    for path in written:
        text = path.read_text(errors="replace")
        for value in PLANTED.values():
            assert value not in text, path


def test_a_dead_engine_is_daemon_down(guests, engine, smdiag):
    engine.kill()  # a crash: the socket stays, refusing connections
    hooked = guests.run("hooked", IMAGE)
    assert hooked.exception["type"] == "RuntimeError" and "Failed to run" in hooked.exception["message"]
    [note] = hooked.result["exception"]["notes"]
    assert note.startswith("smdiag: daemon_down:")
    report = json.loads(smdiag("last-failure", "--json", env=guests.env).stdout)
    assert report["category"] == "daemon_down" and report["df_h"]
