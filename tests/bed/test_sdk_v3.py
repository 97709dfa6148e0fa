"""SageMaker SDK v3 local mode with the kernel hook: `ModelTrainer(training_mode=Mode.LOCAL_CONTAINER).train()`
(testbed/guest_program_v3.py) in the real SDK v3 (its own environment, cached on the machine: conftest
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
from pathlib import Path

import pytest

from agent.host import kernels
from testbed import TESTBED, bed
from testbed.guest_runs import Run, assert_same_output

# The first run on a machine builds the SDK v3 environment inside the first test's setup.
pytestmark = [pytest.mark.bed, pytest.mark.timeout(600 + bed.SDK_BUILD_TIMEOUT_S)]

PROGRAM = TESTBED / "guest_program_v3.py"
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
        self.roots: list[Path] = []

    def start(self, where: str, image: str, **env: str) -> subprocess.Popen:
        self.runs += 1
        root = self.work / f"run{self.runs}"
        root.mkdir()
        self.roots.append(root)
        result = self.work / f"run{self.runs}.json"
        return subprocess.Popen(
            [str(self.envs[where] / "bin" / "python"), str(PROGRAM), str(result), image, str(self.data), str(root)],
            env={**self.env, **env}, cwd=self.work, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip

    def finish(self, process: subprocess.Popen) -> Run:
        stdout, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr[-3000:]
        return Run(stdout, stderr, json.loads(Path(process.args[2]).read_text()), VARYING)

    def run(self, where: str, image: str, **env: str) -> Run:
        return self.finish(self.start(where, image, **env))

    def opt_out_of_telemetry(self) -> None:
        """The SDK's telemetry off (its log lines come from another thread, in any order)."""
        config = Path(self.env["HOME"]) / ".config" / "sagemaker" / "config.yaml"
        config.parent.mkdir(parents=True)
        config.write_text("SchemaVersion: '1.0'\nSageMaker:\n  PythonSDK:\n    Modules:\n      TelemetryOptOut: true\n")

    def run_hooked_turned_off(self, how: str, **env: str) -> Run:
        """A hooked run whose guest is turned off once the SDK is imported: by `SMDIAG_DISABLE=1` set in the
        program, or by `smdiag kernels disable` while it waits."""
        if how == "SMDIAG_DISABLE_AFTER_IMPORT":
            return self.run("hooked", IMAGE, SMDIAG_DISABLE_AFTER_IMPORT="1", **env)
        go = self.work / f"go{self.runs}"
        running = self.start("hooked", IMAGE, GUEST_START_WHEN=str(go), **env)
        bed.wait_for(lambda: go.with_suffix(".ready").exists() or running.poll() is not None, timeout=300)
        assert kernels.disable(self.state, [str(self.envs["hooked"])])["ok"]
        go.touch()
        return self.finish(running)

    def both(self, image: str, **env: str) -> tuple[Run, Run]:
        return self.run("plain", image, **env), self.run("hooked", image, **env)

    def reports(self) -> list[dict]:
        return [json.loads(p.read_text()) for p in sorted(self.state.glob("failures/*/report.json"))]


def assert_same(plain: Run, hooked: Run) -> None:
    assert_same_output(plain, hooked)
    assert hooked.result["sdk_calls"] == plain.result["sdk_calls"]


@pytest.fixture
def guests(tmp_path, hermetic_env, sdk_v3_site, race_free_compose_path) -> V3Guests:
    """Compose v1 loses a container's exit on a loaded machine (exit 0, no "exited with code N"): the race-free
    one (conftest)."""
    return V3Guests(tmp_path, {**hermetic_env, "PATH": race_free_compose_path}, sdk_v3_site)


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


def assert_same_outside(plain: Run, hooked: Run) -> None:
    assert_same(plain, hooked)
    outcomes = [run.normalized(json.dumps(run.result["outside"])) for run in (plain, hooked)]
    assert outcomes[1] == outcomes[0]


@pytest.mark.parametrize("how", ["hooked", "SMDIAG_DISABLE_AFTER_IMPORT", "kernels disable"])
def test_each_step_the_guest_taps_is_the_sdks_own_outside_a_local_call(guests, how):
    """With the engine mocked as the SDK's own unit tests do (`docker.from_env` a MagicMock, then
    `client.api.pull.assert_called_once_with(...)`): `_get_docker_client` hands out the SDK's client untouched,
    and every other tapped step returns and calls what it does without the hook; on, or turned off late."""
    guests.opt_out_of_telemetry()
    plain = guests.run("plain", IMAGE, GUEST_CALL="taps")
    if how == "hooked":
        hooked = guests.run("hooked", IMAGE, GUEST_CALL="taps")
    else:
        hooked = guests.run_hooked_turned_off(how, GUEST_CALL="taps")
    assert_same_outside(plain, hooked)
    outside = plain.result["outside"]
    assert outside["mocked_client"]["returned"].startswith("(True, [call('guest/image', tag='1', stream=True)])")
    server = outside["model_server"]["returned"]
    assert server.startswith("('MagicMock', [call.ping(),") and "call.images.pull('guest/image:1')" in server
    assert "call.containers.run('guest/image:1', 'serve'" in server
    assert outside["pull_steps"]["returned"].count("call(['docker', 'pull', 'guest/image:1'])") == 2
    assert outside["stream_output"] == {"returned": "0"} and "one\ntwo\n" in plain.stdout
    assert "Giving up" in outside["wait_for_serving"]["message"]
    assert guests.reports() == []


@pytest.mark.parametrize("how", ["SMDIAG_DISABLE_AFTER_IMPORT", "kernels disable"])
def test_each_entry_point_the_guest_wraps_is_the_sdks_own_once_turned_off_in_a_running_kernel(guests, how):
    """Local calls the SDK refuses at once (before any container): with the guest turned off after the SDK was
    imported and patched, each raises the SDK's own exception, with no note and no report."""
    guests.opt_out_of_telemetry()
    plain = guests.run("plain", IMAGE, GUEST_CALL="entry_points")
    hooked = guests.run_hooked_turned_off(how, GUEST_CALL="entry_points")
    assert_same_outside(plain, hooked)
    outside = plain.result["outside"]
    assert list(outside) == ["train", "build", "deploy", "deploy_local", "create_training_job",
                             "create_processing_job", "create_transform_job", "create_endpoint"]  # fmt: skip
    assert all("raised" in outcome and outcome["notes"] == [] for outcome in outside.values())
    assert "smdiag" not in hooked.stderr and guests.reports() == []


def test_a_dead_engine_is_daemon_down(guests, engine, smdiag):
    engine.kill()  # a crash: the socket stays, refusing connections
    hooked = guests.run("hooked", IMAGE)
    assert hooked.exception["type"] == "RuntimeError" and "Failed to run" in hooked.exception["message"]
    [note] = hooked.result["exception"]["notes"]
    assert note.startswith("smdiag: daemon_down:")
    report = json.loads(smdiag("last-failure", "--json", env=guests.env).stdout)
    assert report["category"] == "daemon_down" and report["df_h"]


# ------------------------------------------------------------------------------------- ModelBuilder serving

SERVE_IMAGE = "v3guest/serve:1"
"""Tagged anew per test (the registry is the session's): each test builds its own before the run."""
# A model server's start takes its Python a second at least; one that exits within milliseconds races the
# guest's attach against the engine's auto_remove (an instant exit can lose its output: see docs/testing.md).
CRASH_AT_START = (
    'echo "loading model"; sleep 1; echo "Traceback (most recent call last):"; echo "KeyError: model_fn"; exit 2'
)
CRASH_ON_SIGNAL = (
    'echo "model server waiting"; while [ ! -e /opt/ml/model/crash-now ]; do sleep 0.2; done;'
    ' echo "Traceback (most recent call last):"; echo "RuntimeError: worker died"; exit 3'
)


@pytest.fixture
def serving(guests, make_engine, images, registry, moto_endpoint):
    """Serve runs (GUEST_CALL=serve) against a bed engine, with AWS in moto and the SDK's telemetry off."""
    guests.opt_out_of_telemetry()
    guests.env.update(GUEST_CALL="serve", AWS_ENDPOINT_URL=moto_endpoint, SAGEMAKER_VALIDATE_ROLE="false", **PLANTED)
    daemon, _disk = make_engine()
    guests.env["DOCKER_HOST"] = daemon.host
    guests.daemon, guests.images, guests.registry = daemon, images, registry
    return guests


def serve_image(guests, script: str, size_mb: int = 0) -> str:
    """ModelBuilder pulls its image whether or not the engine has it: the image is served by the bed registry."""
    ref = f"{guests.registry.address}/{SERVE_IMAGE}"
    with guests.daemon.client() as client:
        guests.images.build(client, ref, size_mb=size_mb, scripts={"serve": "exec 2>&1\n" + script})
        for line in client.api.push(ref.rsplit(":", 1)[0], tag="1", stream=True, decode=True):
            assert "error" not in line, line
    return ref


def assert_no_planted_key(state: Path) -> None:
    for path in state.rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            assert not [value for value in PLANTED.values() if value in text], path


@pytest.mark.xdist_group("host-port-8080")  # v3 model servers always listen on the host's 8080
def test_a_model_server_that_exits_at_start_is_reported_with_the_logs_the_engine_removed(serving, smdiag):
    image = serve_image(serving, CRASH_AT_START)
    hooked = serving.run("hooked", image)
    assert hooked.exception is not None, hooked.stderr[-3000:]
    [note] = hooked.result["exception"]["notes"]
    assert note.startswith("smdiag: ") and "smdiag last-failure" in note
    report = json.loads(smdiag("last-failure", "--json", env=serving.env).stdout)
    assert report["call"]["kind"] == "serve" and report["call"]["sdk"] == "v3"
    assert report["call"]["images"] == [image]
    [container] = report["containers"]
    assert container["exit_code"] == 2 and "KeyError: model_fn" in container["logs"]
    with serving.daemon.client() as client:  # auto_remove: the engine has nothing left to read
        assert client.containers.list(all=True, filters={"ancestor": image}) == []
    assert "KeyError: model_fn" in smdiag("last-failure", env=serving.env).stdout
    assert_no_planted_key(serving.state)


@pytest.mark.xdist_group("host-port-8080")  # v3 model servers always listen on the host's 8080
def test_a_model_server_that_dies_while_the_sdk_waits_ends_the_wait_with_the_sdks_exception(serving, smdiag):
    """Without the hook the SDK pings a dead container for 1200 s; with it, its own LocalDeepPingException
    comes at the next ping after the engine reported the container's death."""
    image = serve_image(serving, CRASH_ON_SIGNAL)
    hooked = serving.run("hooked", image, GUEST_CRASH_ON="model server waiting")
    assert (serving.roots[-1] / "crash-now").exists()  # the container died while the SDK followed its log
    assert hooked.exception["type"] == "LocalDeepPingException", hooked.stderr[-3000:]
    assert "did not pass the ping health check" in hooked.exception["message"]
    report = json.loads(smdiag("last-failure", "--json", env=serving.env).stdout)
    [container] = report["containers"]
    assert container["exit_code"] == 3 and "RuntimeError: worker died" in container["logs"]
    assert report["call"]["kind"] == "serve"
    assert_no_planted_key(serving.state)


@pytest.mark.xdist_group("host-port-8080")  # v3 model servers always listen on the host's 8080
def test_a_model_server_on_a_dead_engine_is_daemon_down(serving, smdiag):
    image = serve_image(serving, CRASH_AT_START)
    serving.daemon.kill()
    hooked = serving.run("hooked", image)
    assert hooked.exception["type"] == "RuntimeError" and "Docker is not available" in hooked.exception["message"]
    report = json.loads(smdiag("last-failure", "--json", env=serving.env).stdout)
    assert report["category"] == "daemon_down" and report["call"]["kind"] == "serve"
    assert not (serving.state / "logs" / "wrapper-errors.jsonl").exists()  # a dead engine is not our error


@pytest.mark.xdist_group("host-port-8080")  # v3 model servers always listen on the host's 8080
def test_a_model_servers_pull_into_a_full_disk_is_disk_full_with_the_engines_text(serving, make_engine, smdiag):
    image = serve_image(serving, CRASH_AT_START, size_mb=100)
    small, _disk = make_engine(size_mb=150)
    serving.env["DOCKER_HOST"] = small.host
    served_before = (serving.registry.workdir / "registry.log").stat().st_size
    hooked = serving.run("hooked", image)
    # The SDK's docker-py pull discards the engine's error: the image is then "not found".
    assert hooked.exception["type"] == "ValueError" and "Could not find image" in hooked.exception["message"]
    report = json.loads(smdiag("last-failure", "--json", env=serving.env).stdout)
    [pull] = report["pull_errors"]
    assert pull["image"] == image and "no space left on device" in pull["error"]
    with open(serving.registry.workdir / "registry.log", "rb") as log:
        log.seek(served_before)
        manifests = re.findall(rb'"(?:HEAD|GET) /v2/v3guest/serve/manifests/1 ', log.read())
    assert len(manifests) == 1  # the SDK's own pull: its error was read as it passed, not by pulling again
    assert report["category"] == "disk_full" and "no space left on device" in report["summary"]
    assert report["docker"]["root_dir"] == str(small.data_root)
    assert_no_planted_key(serving.state)
