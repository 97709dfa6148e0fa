"""The kernel hook is a guest: the same SageMaker SDK v2 calls (testbed/guest_program.py) run in an
environment with the hook (`smdiag kernels enable`) and in one without, and the user sees the same thing.

Compared: stdout and stderr, the exception (type and message), every AWS API call with its parameters
(botocore's event hooks; AWS is moto in server mode, reset before each run) and every SDK function called
in the main thread. Removed before comparing, and only these: job-name timestamps, the SDK's random
temp directories and host names, and objects' addresses in reprs, which differ between any two runs; in a
failing local call the wrapper's own summary (stderr) and note (exception); and, where the wrapper keeps a
copy of a step's output, the SDK function it stands in for (named at the test).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from agent.host import kernels
from testbed import TESTBED, bed, guest_runs

PROGRAM = TESTBED / "guest_program.py"
ECR_IMAGE = "111111111111.dkr.ecr.us-east-1.amazonaws.com/guest/train:1"
VARYING = [
    (re.compile(r"\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}-\d{3}"), "<job time>"),
    (re.compile(r"tmp[a-z0-9_]{8}"), "<tmp>"),  # the SDK's container roots, and compose's project names
    (re.compile(r"([a-z0-9]{10}-)?(algo-\d+)-[a-z0-9]{5}"), r"\2-<id>"),  # container and host names
    (re.compile(r" at 0x[0-9a-f]+>"), " at <address>>"),  # reprs of objects among an API call's parameters
    (re.compile(r" id='\d+'>"), " id=<id>>"),  # and of mocks
    (re.compile(r"(execution |Execution ID is )[0-9a-z]{12}\b"), r"\1<id>"),  # a local pipeline's execution
    # v2 ModelTrainer's rich log: a time column, left blank while the second stays the same
    (re.compile(r"\[\d\d/\d\d/\d\d \d\d:\d\d:\d\d\]"), " " * 19),
    # the telemetry URL in the SDK's log carries the call's duration
    (re.compile(r"x-latency=[\d.]+"), "x-latency=<seconds>"),
]


class Run(guest_runs.Run):
    @property
    def api(self) -> list:
        return json.loads(self.normalized(json.dumps(self.result["api"])))


class Guests:
    """Two environments of the host's SDK: `plain`, and `hooked` with the kernel hook enabled."""

    def __init__(self, tmp_path: Path, env: dict[str, str]) -> None:
        self.state = Path(env["SMDIAG_STATE_DIR"])
        self.work = tmp_path / "work"
        self.work.mkdir()
        self.envs = {name: tmp_path / "envs" / name for name in ("plain", "hooked")}
        for path in self.envs.values():
            bed.host_packages_venv(path)
        enabled = kernels.enable(self.state, [str(self.envs["hooked"])], Path(sys.executable))
        assert enabled["ok"], enabled
        self.env = {**env, "HOME": str(tmp_path / "home"), "PYTHONHASHSEED": "0", "AWS_DEFAULT_REGION": "us-east-1",
                    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                    "SAGEMAKER_SUPPRESS_V2_WARNING": "1"}  # fmt: skip
        self.reset_aws = lambda: None

    def start(self, where: str, scenario: str, *args: str, **env: str) -> subprocess.Popen:
        self.reset_aws()
        result = self.work / f"{where}-{scenario}.json"
        return subprocess.Popen(
            [str(self.envs[where] / "bin" / "python"), str(PROGRAM), scenario, str(result), *args],
            env={**self.env, **env}, cwd=self.work, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip

    def finish(self, process: subprocess.Popen) -> Run:
        stdout, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr
        return Run(stdout, stderr, json.loads(Path(process.args[3]).read_text()), VARYING)

    def run(self, where: str, scenario: str, *args: str, **env: str) -> Run:
        return self.finish(self.start(where, scenario, *args, **env))

    def both(self, scenario: str, *args: str, **env: str) -> tuple[Run, Run]:
        return self.run("plain", scenario, *args, **env), self.run("hooked", scenario, *args, **env)

    def reports(self) -> list[dict]:
        return [json.loads(p.read_text()) for p in sorted(self.state.glob("failures/*/report.json"))]


def assert_same(plain: Run, hooked: Run, stands_in_for: tuple[str, ...] = ()) -> None:
    guest_runs.assert_same_output(plain, hooked)
    assert hooked.api == plain.api
    calls = [[c for c in run.result["sdk_calls"] if c not in stands_in_for] for run in (plain, hooked)]
    assert calls[1] == calls[0]


@pytest.fixture
def guests(tmp_path, hermetic_env, moto_endpoint) -> Guests:
    made = Guests(tmp_path, {**hermetic_env, "AWS_ENDPOINT_URL": moto_endpoint})
    reset = urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")
    made.reset_aws = lambda: urllib.request.urlopen(reset, timeout=30).close()
    return made


def test_pipeline_definitions_with_pipeline_variables_are_the_sdks(guests):
    plain, hooked = guests.both("pipeline")
    assert_same(plain, hooked)
    definition = plain.result["definition"]
    assert hooked.result["definition"] == definition
    assert [p["Name"] for p in definition["Parameters"]] == ["TrainInstanceType", "ModelInstanceType"]
    assert len(definition["Steps"]) == 3
    assert plain.exception["type"] == "AttributeError"  # the SDK's own answer to deploy(instance_type=<variable>)
    assert len(plain.result["sdk_calls"]) > 1000 and guests.reports() == []


def test_remote_fit_and_deploy_make_the_same_calls(guests):
    plain, hooked = guests.both("remote_fit")
    assert_same(plain, hooked)
    assert [call[:2] for call in plain.api][-1] == ["sagemaker", "CreateTrainingJob"]
    assert plain.exception is None and "training_image_uri" in " ".join(plain.result["sdk_calls"])

    plain, hooked = guests.both("remote_deploy")
    assert_same(plain, hooked)
    assert [call[:2] for call in plain.api] == [
        ["s3", "CreateBucket"], ["sagemaker", "CreateModel"], ["sagemaker", "CreateEndpointConfig"],
        ["sagemaker", "CreateEndpoint"], ["sagemaker-runtime", "InvokeEndpoint"], ["sagemaker", "DescribeEndpoint"],
        ["sagemaker", "DeleteEndpointConfig"], ["sagemaker", "DeleteEndpoint"],
    ]  # fmt: skip
    assert plain.exception is None and guests.reports() == []


def test_calls_on_a_session_mocked_as_the_sdks_unit_tests_do_are_the_same(guests):
    plain, hooked = guests.both("mocked_session")
    assert_same(plain, hooked)
    calls = [plain.normalized(call) for call in plain.result["mock_calls"]]
    assert [hooked.normalized(call) for call in hooked.result["mock_calls"]] == calls
    assert any(".train(" in call for call in calls) and any("endpoint_from_production_variants(" in c for c in calls)


@pytest.fixture
def engine(make_engine, images, guests, race_free_compose_path):
    """A bed engine with a busybox image whose `train` succeeds, for both environments' runs; and a Compose that
    prints each container's "exited with code N" every time (conftest: Compose v1 drops it on a loaded machine)."""
    daemon, _disk = make_engine()
    with daemon.client() as client:
        images.build(client, "guest/train:1", scripts={"train": "echo training; echo done"})
        client.networks.create("sagemaker-local")  # made by whichever run came first, and said so, otherwise
    guests.env.update(DOCKER_HOST=daemon.host, PATH=race_free_compose_path)
    guests.images = images
    return daemon


@pytest.mark.bed
def test_local_fit_and_processing_show_the_same_output(guests, engine):
    plain, hooked = guests.both("local_fit", "guest/train:1")
    assert_same(plain, hooked)
    assert plain.exception is None and "training" in plain.stdout and "algo-1-" in plain.stdout

    plain, hooked = guests.both("local_process", "guest/train:1")
    assert_same(plain, hooked)
    assert plain.exception is None and "processing" in plain.stdout and "process.sh" in plain.stdout
    assert guests.reports() == []


@pytest.mark.bed
def test_a_local_pipeline_and_a_v2_model_trainer_show_the_same_output(guests, engine):
    with engine.client() as client:  # ModelTrainer runs the image's own command
        guests.images.build(client, "guest/trainer:1", scripts={"train": "echo trained"}, cmd=["train"])
    config = guests.work / "sagemaker-config.yaml"  # the executor's own sessions read telemetry's opt-out here
    config.write_text("SchemaVersion: '1.0'\nSageMaker:\n  PythonSDK:\n    Modules:\n      TelemetryOptOut: true\n")
    plain, hooked = guests.both("local_pipeline", "guest/train:1", SAGEMAKER_USER_CONFIG_OVERRIDE=str(config))
    assert_same(plain, hooked)
    assert plain.exception is None and "processing in a pipeline" in plain.stdout
    assert "Succeeded Succeeded" in plain.stdout

    plain, hooked = guests.both("local_model_trainer", "guest/trainer:1", SAGEMAKER_USER_CONFIG_OVERRIDE=str(config))
    assert_same(plain, hooked)
    assert plain.exception is None and "trained" in plain.stdout + plain.stderr
    assert guests.reports() == []


@pytest.mark.bed
def test_a_failing_pull_in_a_local_fit_prints_the_engines_message_as_without_the_hook(guests, engine):
    plain, hooked = guests.both("local_fit", ECR_IMAGE)  # ECR-like: the SDK logs in (moto's ECR) and pulls
    assert_same(plain, hooked, stands_in_for=("sagemaker.local.image._pull_image",))
    assert plain.exception["type"] == "CalledProcessError"
    assert "no such host" in plain.stderr  # the engine's own message, where the SDK shows it
    assert hooked.result["exception"]["notes"][0].startswith("smdiag: registry_unreachable:")
    [report] = guests.reports()
    assert "no such host" in report["pull_errors"][0]["error"] and report["call"]["images"] == [ECR_IMAGE]


@pytest.mark.bed
def test_the_sdks_pull_step_succeeds_and_fails_as_without_the_hook(guests, engine, registry, images):
    ref = f"{registry.address}/guest/pulled:1"
    with engine.client() as client:
        images.build(client, ref, scripts={"train": "echo hi"})
        for line in client.api.push(ref.rsplit(":", 1)[0], tag="1", stream=True, decode=True):
            assert "error" not in line
        client.images.remove(ref)
    plain, hooked = guests.both("sdk_pull", ref)
    assert_same(plain, hooked, stands_in_for=("sagemaker.local.image._pull_image",))
    assert plain.exception is None and guests.reports() == []

    unreachable = f"127.0.0.1:{bed.free_port()}/guest/absent:1"
    plain, hooked = guests.both("sdk_pull", unreachable)
    assert_same(plain, hooked, stands_in_for=("sagemaker.local.image._pull_image",))
    assert plain.exception["type"] == "CalledProcessError" and "connection refused" in plain.stderr
    [report] = guests.reports()
    assert "connection refused" in report["pull_errors"][0]["error"]


@pytest.mark.bed
@pytest.mark.parametrize("when", ["SMDIAG_DISABLE", "SMDIAG_DISABLE_AFTER_IMPORT"])
def test_smdiag_disable_before_start_or_after_import_is_the_sdk_alone(guests, engine, when):
    for scenario, arg in (("local_fit", ECR_IMAGE), ("sdk_pull", f"127.0.0.1:{bed.free_port()}/guest/absent:1")):
        plain, hooked = guests.both(scenario, arg, **{when: "1"})
        assert_same(plain, hooked)  # the SDK's own functions run: nothing stands in for any
        assert "smdiag" not in hooked.stderr
        assert hooked.result["exception"]["notes"] == []
    assert guests.reports() == []


@pytest.mark.bed
def test_the_recorder_is_not_called_through_a_users_mock_of_subprocess_run(guests, engine, tmp_path):
    """A user's unit test mocks `subprocess.run` around a local fit that fails (no Compose on PATH, and the
    mocked `docker compose version` says nothing): the hand-over to the recorder does not go through their
    mock, and the report names the missing Compose."""
    no_compose = tmp_path / "bin-without-compose"
    no_compose.mkdir()
    (no_compose / "docker").symlink_to(shutil.which("docker"))  # a docker CLI without the compose plugin
    plain, hooked = guests.both("mocked_run", "guest/train:1", PATH=str(no_compose))
    assert_same(plain, hooked)
    assert hooked.result["mock_calls"] == plain.result["mock_calls"]
    assert "['docker', 'compose', 'version']" in plain.result["mock_calls"][0]
    assert plain.exception["type"] == "ImportError" and "Docker Compose is not installed" in plain.exception["message"]
    [note] = hooked.result["exception"]["notes"]
    assert note.startswith("smdiag: compose_missing:")
    [report] = guests.reports()
    assert report["category"] == "compose_missing" and report["call"]["sdk"] == "v2"


def test_the_sdks_pull_step_mocked_by_a_user_is_the_sdks_in_a_captured_call(guests):
    """A user's `subprocess.check_output` mock around the SDK's pull step in a captured call: the guest does not
    pull in its place (nothing of the real engine's is asked), the mock sees the SDK's one call."""
    plain, hooked = guests.both("mocked_check_output", "guest/train:1")
    assert_same(plain, hooked)
    assert hooked.result["mock_calls"] == plain.result["mock_calls"] == ["call(['docker', 'pull', 'guest/train:1'])"]
    assert plain.exception is None and guests.reports() == []


SERVE = "mkdir -p /www && echo {name} > /www/ping && echo serving {name} && exec httpd -f -p 8080 -h /www"
"""Answers the SDK's GET /ping with 200 (and the model's name), as a model server does."""


@pytest.mark.bed
def test_a_deploy_answered_by_an_earlier_endpoint_on_its_port_is_reported_and_that_endpoint_left_serving(
    guests, engine, tmp_path
):
    """The SDK returns from the second deploy: its /ping is answered by the first endpoint, which holds the
    port, while the second's container cannot bind it. Predictions would go to the first model: the guest
    says so on one line and writes the report; the first endpoint goes on serving, untouched."""
    with engine.client() as client:
        for name in ("one", "two"):
            guests.images.build(client, f"guest/serve-{name}:1", scripts={"serve": SERVE.format(name=name)})
    port = bed.free_port()
    model = str(bed.model_tarball(tmp_path))
    hooked = guests.run("hooked", "two_deploys", "guest/serve-one:1", "guest/serve-two:1", model, str(port))
    assert hooked.exception is None
    deployed = re.findall(r"deployed (\S+)", hooked.stdout)  # after the SDK's "!" of each deploy's progress
    assert deployed == ["guest/serve-one:1", "guest/serve-two:1"]  # the SDK's success, twice
    with engine.client() as client:
        [first] = client.containers.list(filters={"ancestor": "guest/serve-one:1"})
        [second] = client.containers.list(all=True, filters={"ancestor": "guest/serve-two:1"})
        assert second.status in ("created", "exited") and "port is already allocated" in second.attrs["State"]["Error"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=30) as answer:
        assert answer.read() == b"one\n"
    ours = [line for line in hooked.stderr.splitlines() if line.startswith("smdiag")]
    assert len(ours) == 1, hooked.stderr
    [line] = ours
    assert line.startswith(f"smdiag: the endpoint answering on port {port} is not the one just deployed ({first.name})")
    [report] = guests.reports()
    assert report["category"] == "port_in_use" and report["call"]["kind"] == "deploy"
    assert "[port_in_use] report: " + str(guests.state / "failures" / report["id"]) in line
    assert second.name in [c["name"] for c in report["containers"]]
    assert f"answered by {first.name}" in report["summary"] and f"container {second.name}" in report["summary"]
    assert report["answered_by"] == [first.name]


def test_kernels_disable_turns_a_running_kernel_into_the_sdk_alone_and_leaves_nothing(guests):
    """No engine here: the SDK's `docker pull` fails for real ("Cannot connect to the Docker daemon")."""
    image = "127.0.0.1:1/guest/absent:1"
    plain = guests.run("plain", "sdk_pull", image)
    go = guests.work / "go"
    running = guests.start("hooked", "sdk_pull", image, GUEST_START_WHEN=str(go))
    bed.wait_for(lambda: (guests.work / "go.ready").exists() or running.poll() is not None)
    disabled = kernels.disable(guests.state, [str(guests.envs["hooked"])])
    go.touch()
    hooked = guests.finish(running)
    assert_same(plain, hooked)
    assert plain.exception["type"] == "CalledProcessError" and "Cannot connect" in plain.stderr
    assert "smdiag" not in hooked.stderr and hooked.result["exception"]["notes"] == [] and guests.reports() == []
    site = next(guests.envs["hooked"].glob("lib/python3.*/site-packages"))
    assert sorted(p.name for p in site.iterdir()) == ["host-packages.pth"]  # as `venv` and the test made it
    assert not (guests.state / "kernel-hook").exists() and disabled["ok"]


def test_an_error_of_the_wrapper_is_logged_for_doctor_and_the_users_call_is_unchanged(guests, tmp_path, smdiag):
    """A broken agent interpreter (it exits 1) cannot record the report: the user's exception and output
    stay the SDK's, one line says why there is no report, and doctor counts the error."""
    broken = tmp_path / "broken-python"
    broken.write_text("#!/bin/sh\necho 'agent broken' >&2\nexit 1\n")
    broken.chmod(0o755)
    assert kernels.enable(guests.state, [str(guests.envs["hooked"])], broken)["environments"][0]["changed"] is False
    image = "127.0.0.1:1/guest/absent:1"
    plain, hooked = guests.both("sdk_pull", image)
    assert hooked.normalized(hooked.stdout) == plain.normalized(plain.stdout) and hooked.exception == plain.exception
    assert hooked.stderr == plain.stderr + "smdiag: no failure report: RuntimeError (logged; see `smdiag doctor`)\n"
    assert hooked.result["exception"]["notes"] == [] and guests.reports() == []
    doctor = json.loads(smdiag("doctor", "--json").stdout)
    assert doctor["wrapper"]["count"] == 1 and doctor["wrapper"]["last"]["where"] == "record"
    assert "agent broken" in doctor["wrapper"]["last"]["error"]
    [problem] = [p for p in doctor["problems"] if p["check"] == "wrapper"]
    assert "1 error(s) of its own" in problem["problem"]
