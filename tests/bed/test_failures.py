"""Failure reports with the real SageMaker SDK v2 in local mode against the bed: real compose, real
containers, real pulls; each user program runs in its own interpreter with `import agent.autowrap`."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from testbed import bed

pytestmark = pytest.mark.bed

ROLE = "arn:aws:iam::111111111111:role/dummy"
PLANTED = {
    "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7PLANTED",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYPLANTEDKEY",
    "AWS_SESSION_TOKEN": "IQoJb3JpZ2luX2VjEPLANTEDSESSIONTOKENVALUE",
}
CREDENTIALS_FILE_SECRET = "credsFileSecretValuePLANTED0123456789"

PROGRAM = textwrap.dedent(
    """
    import contextlib, json, os, sys
    import agent.autowrap
    from sagemaker.local import LocalSession
    session = LocalSession(sagemaker_config={"SchemaVersion": "1.0",
        "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}})
    session.config = {"local": {"local_code": True}}
    kind, image = sys.argv[1], sys.argv[2]
    try:
        if kind == "fit":
            from sagemaker.estimator import Estimator
            Estimator(image_uri=image, role=ROLE, instance_count=1, instance_type="local",
                      sagemaker_session=session).fit()
        elif kind == "fit_in_instance_groups":  # the job's config has InstanceGroups, no InstanceType
            from sagemaker.estimator import Estimator
            from sagemaker.instance_group import InstanceGroup
            Estimator(image_uri=image, role=ROLE, instance_groups=[InstanceGroup("train", "local", 1)],
                      sagemaker_session=session).fit()
        elif kind in ("deploy", "deploy_waiting"):  # on the host's 8080 unless a port is given
            from sagemaker.model import Model
            if kind == "deploy_waiting":  # the SDK's wait for /ping, shortened as the slow-start hint says
                import sagemaker.local.entities
                sagemaker.local.entities.HEALTH_CHECK_TIMEOUT_LIMIT = int(sys.argv[5])
            if len(sys.argv) > 4:
                session.config["local"]["serving_port"] = int(sys.argv[4])
            Model(image_uri=image, model_data="file://" + sys.argv[3], role=ROLE, sagemaker_session=session,
                  code_location="s3://unused-bucket/code").deploy(initial_instance_count=1, instance_type="local")
        elif kind == "deploy_beside_a_failing_fit":  # another thread's local run fails while this deploy waits
            import threading
            from sagemaker.estimator import Estimator
            from sagemaker.model import Model
            from sagemaker.predictor import Predictor
            def failing_fit():
                with contextlib.suppress(RuntimeError):
                    Estimator(image_uri=sys.argv[4], role=ROLE, instance_count=1, instance_type="local",
                              sagemaker_session=session).fit()
            session.config["local"]["serving_port"] = int(sys.argv[5])
            threading.Thread(target=failing_fit).start()
            Model(image_uri=image, model_data="file://" + sys.argv[3], role=ROLE, sagemaker_session=session,
                  code_location="s3://unused-bucket/code", predictor_cls=Predictor).deploy(
                      initial_instance_count=1, instance_type="local").delete_endpoint()
        elif kind == "pull":  # the SDK's own pull step (ECR images), inside the explicit context manager
            import sagemaker.local.image
            with agent.autowrap.explained("fit", images=[image]):
                sagemaker.local.image._pull_image(image)
    except Exception as exc:
        print(json.dumps({"type": type(exc).__name__, "notes": getattr(exc, "__notes__", [])}), flush=True)
        if kind == "deploy_waiting":  # the SDK's serving thread waits on the container it left running
            sys.stderr.flush()
            os._exit(3)
        sys.exit(3)
    print(json.dumps({"ok": True}))
    """
).replace("ROLE", repr(ROLE))


@pytest.fixture
def local_mode(tmp_path, hermetic_env, images, race_free_compose_path):
    """run(kind, image, *extra, daemon=...) -> (CompletedProcess, raised, report or None), on the bed's
    Compose v1 with its exit-status race closed (a failing container's exit reaches the SDK every time)."""
    program = tmp_path / "user_program.py"
    program.write_text(PROGRAM)
    credentials = Path(hermetic_env["AWS_SHARED_CREDENTIALS_FILE"])
    credentials.write_text(
        f"[default]\naws_access_key_id = AKIAPLANTEDFILEKEY01\naws_secret_access_key = {CREDENTIALS_FILE_SECRET}\n"
    )
    state = Path(hermetic_env["SMDIAG_STATE_DIR"])

    def run(kind: str, image: str, *extra: str, host: str, env: dict | None = None, timeout: float = 300):
        done = subprocess.run(
            [sys.executable, str(program), kind, image, *extra],
            env={**hermetic_env, "DOCKER_HOST": host, "AWS_DEFAULT_REGION": "us-east-1", "PATH": race_free_compose_path,
                 "SAGEMAKER_SUPPRESS_V2_WARNING": "1", "HOME": str(tmp_path), **(env or {})},
            capture_output=True, text=True, timeout=timeout, cwd=tmp_path,
        )  # fmt: skip
        raised = json.loads(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else None
        reports = sorted((state / "failures").glob("*/report.json")) if (state / "failures").exists() else []
        report = json.loads(reports[-1].read_text()) if reports else None
        return done, raised, report

    run.state = state
    return run


def train_image(images, daemon, tag: str, script: str) -> str:
    with daemon.client() as client:
        images.build(client, tag, scripts={"train": script, "serve": script})
    return tag


def test_a_script_traceback_becomes_script_error_with_file_line_and_message(make_engine, images, local_mode, smdiag):
    daemon, _disk = make_engine()
    image = train_image(images, daemon, "smdiag-test/broken-train:1", bed.BROKEN_TRAIN_SCRIPT)
    done, raised, report = local_mode("fit", image, host=daemon.host, env=PLANTED)
    assert done.returncode == 3 and raised["type"] == "RuntimeError"  # the SDK's own exception, unchanged
    assert raised["notes"] and raised["notes"][0].startswith("smdiag: script_error:")
    assert report["category"] == "script_error"
    assert "ImportError: cannot import name 'seeds' from 'numpy.random'" in report["summary"]
    assert "/opt/ml/code/train.py, line 3" in report["summary"]
    [container] = report["containers"]
    assert container["exit_code"] == 1 and container["logs"][-1].startswith("ImportError")
    assert set(container["limits"]) >= {"memory", "shm_size"} and container["limits"]["shm_size"] == 64 * 1024**2
    assert not any("ImportError" in line for line in report["compose_output"])  # compose's own lines only
    assert report["compose_file"]["path"].endswith("docker-compose.yaml")
    summary = [line for line in done.stderr.splitlines() if line.startswith(("smdiag", "  "))]
    assert summary[-4].startswith("smdiag: local-mode fit failed [script_error]")
    assert summary[-1].endswith("(run `smdiag last-failure`)")
    assert set(report) >= {"id", "time", "call", "exception", "category", "summary", "hint", "df_h", "disks",
                           "docker", "pull_errors", "containers", "compose_file"}  # fmt: skip
    assert report["call"]["kind"] == "fit" and report["call"]["images"] == [image]
    assert "Filesystem" in report["df_h"] and report["docker"]["root_dir"] == str(daemon.data_root)

    directory = Path(sorted((local_mode.state / "failures").iterdir())[-1])
    assert directory.stat().st_mode & 0o777 == 0o700
    files = [p for p in directory.rglob("*") if p.is_file()]
    assert files and all(p.stat().st_mode & 0o777 == 0o600 for p in files)
    everything = "\n".join(p.read_text(errors="replace") for p in files)
    for secret in [*PLANTED.values(), CREDENTIALS_FILE_SECRET]:
        assert secret not in everything
    assert "AWS_SECRET_ACCESS_KEY=[redacted]" in report["compose_file"]["text"]

    shown = smdiag("last-failure", "--logs", "3")
    assert shown.returncode == 0 and "category: script_error" in shown.stdout and "| ImportError" in shown.stdout
    listed = json.loads(smdiag("failures", "list", "--json").stdout)
    assert [r["category"] for r in listed] == ["script_error"]


def test_exit_137_is_oom_killed(make_engine, images, local_mode):
    daemon, _disk = make_engine()
    image = train_image(images, daemon, "smdiag-test/oom:1", "echo allocating; exit 137")
    done, raised, report = local_mode("fit", image, host=daemon.host)
    assert raised["type"] == "RuntimeError" and report["category"] == "oom_killed"
    assert "exit 137" in report["summary"] and "batch size" in report["hint"]


def test_a_pull_into_a_full_data_root_is_disk_full_with_the_engines_text(make_engine, images, registry, local_mode):
    builder, _ = make_engine()
    daemon, _disk = make_engine(size_mb=150)
    ref = f"{registry.address}/failures/big:1"
    with builder.client() as client:
        images.build(client, ref, size_mb=100, scripts={"train": "echo hi"})
        for line in client.api.push(ref.rsplit(":", 1)[0], tag="1", stream=True, decode=True):
            assert "error" not in line
    served_before = (registry.workdir / "registry.log").stat().st_size
    done, raised, report = local_mode("fit", ref, host=daemon.host)
    assert raised["type"] == "RuntimeError" and report["category"] == "disk_full"
    [pull] = report["pull_errors"]  # compose's own line: what `smdiag fix` reads to free the data-root
    assert pull["image"] == ref and "no space left on device" in pull["error"]
    assert "smdiag diskguard once" in report["hint"] and "smdiag bootstrap" in report["hint"]
    with open(registry.workdir / "registry.log", "rb") as log:
        log.seek(served_before)
        pulls = re.findall(rb'"(?:HEAD|GET) /v2/failures/big/manifests/1 ', log.read())
    assert len(pulls) == 1  # compose's pull only: the report did not pull the image a second time


def test_a_silent_pull_is_asked_of_the_engine_again(make_engine, registry, hermetic_env):
    """compose's stream without the engine's error (lost before the wrapper kept it): the recorder the
    wrapper runs pulls once more, as compose did, and reads the engine's own error."""
    daemon, _disk = make_engine()
    image = f"{registry.address}/failures/absent:7"
    facts = {"call": {"kind": "fit", "images": [image]}, "started": 0,
             "exception": {"type": "RuntimeError", "message": "Failed to run: ['docker-compose', 'up']"},
             "compose_output": [f"Pulling algo-1-abcde ({image})..."]}  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "agent.record"], input=json.dumps(facts), capture_output=True,
                          text=True, env={**hermetic_env, "DOCKER_HOST": daemon.host}, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads((Path(json.loads(done.stdout)["path"]) / "report.json").read_text())
    [pull] = report["pull_errors"]
    assert pull["image"] == image and "manifest unknown" in pull["error"]
    assert report["category"] == "image_not_found"


# Real texts of compose's pull failures: v1 from this bed, v2 from public threads (Compose v2 is not packaged
# here; the bed's stand-in runs v1).
STREAMED_PULLS = [
    (  # v1, a layer that did not fit (seen on the bed)
        ["Creating network \"sagemaker-local\" with the default driver", "Pulling algo-1-vc1hj (reg:5000/big:1)...",
         "1: Pulling from big", "failed to register layer: Error processing tar file(exit status 1): write "
         "/pad.bin: no space left on device"],
        [("reg:5000/big:1", "failed to register layer: Error processing tar file(exit status 1): write /pad.bin: "
                            "no space left on device")],
    ),
    (  # v1, the registry's refusal (knowagelabs/knowage-server-docker#34)
        ["Pulling knowage (knowagelabs/knowage-server-docker:7.2)...",
         "ERROR: manifest for knowagelabs/knowage-server-docker:7.2 not found: manifest unknown: manifest unknown"],
        [("knowagelabs/knowage-server-docker:7.2",
          "manifest for knowagelabs/knowage-server-docker:7.2 not found: manifest unknown: manifest unknown")],
    ),
    (  # v2 (calibrain/shelfmark#258): the service's progress line carries the message
        ["[+] Running 1/1", " ✘ algo-1-abcde Error manifest unknown            0.9s",
         "Error response from daemon: manifest unknown"],
        [("img:1", "manifest unknown")],
    ),
    (  # v2 (EcrituresNumeriques/stylo#1362): the message only on the closing line
        [" algo-1-abcde Pulling", " ✘ algo-1-abcde Error                   0.7s",
         "Error response from daemon: manifest unknown"],
        [("img:1", "Error response from daemon: manifest unknown")],
    ),
    (  # a pull that finished, then a container that did not start: not a pull error
        ["Pulling algo-1-abcde (img:1)...", "1: Pulling from img", "Digest: sha256:3280c662ed0c",
         "Status: Downloaded newer image for img:1", "Creating algo-1-abcde ... ",
         "ERROR: for algo-1-abcde  Cannot start service algo-1-abcde: no space left on device"],
        [],
    ),
]  # fmt: skip


@pytest.mark.parametrize("lines, expected", STREAMED_PULLS)
def test_compose_s_own_pull_error_lines_are_the_pull_errors(lines, expected):
    from agent.failures.evidence import Gathering, _streamed_pull_errors
    from agent.failures.types import Call, FailureFacts, RaisedException

    facts = FailureFacts(Call("fit", images=["img:1"]), started=0, exception=RaisedException("", ""),
                         compose_stream=lines)  # fmt: skip
    found = _streamed_pull_errors(Gathering(facts, settings=None))
    assert [(p.image, p.error) for p in found] == expected


def test_registry_unreachable_and_image_not_found(make_engine, registry, local_mode):
    daemon, _disk = make_engine()
    _done, _raised, report = local_mode("fit", f"127.0.0.1:{bed.free_port()}/nothing/here:1", host=daemon.host)
    assert report["category"] == "registry_unreachable"
    assert "connection refused" in report["pull_errors"][0]["error"]
    _done, _raised, report = local_mode("fit", f"{registry.address}/failures/absent:9", host=daemon.host)
    assert report["category"] == "image_not_found" and "manifest unknown" in report["pull_errors"][0]["error"]
    assert "manifest unknown" in report["summary"]  # the registry's line, not compose's "Pulling ..."


def test_the_sdks_own_pull_keeps_the_engines_error(make_engine, local_mode):
    daemon, _disk = make_engine()
    image = f"127.0.0.1:{bed.free_port()}/ecr-like/image:1"
    done, raised, report = local_mode("pull", image, host=daemon.host)
    assert raised["type"] == "CalledProcessError"  # what the SDK raises; its message lacks the reason
    assert report["category"] == "registry_unreachable"
    [pull] = report["pull_errors"]
    assert pull["image"] == image and "connection refused" in pull["error"]
    assert "connection refused" in done.stderr  # in the summary the user sees


def test_an_ecr_image_without_aws_credentials_is_aws_credentials_naming_the_image(make_engine, local_mode, tmp_path):
    """The SDK logs in to ECR for an ECR image the engine lacks; with no credentials anywhere its own call
    fails before any container (a first-time user's failure: it was reported as unknown)."""
    daemon, _disk = make_engine()
    image = "111111111111.dkr.ecr.us-east-1.amazonaws.com/smdiag-test/absent:1"
    none = {"AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials")}
    done, raised, report = local_mode("fit", image, host=daemon.host, env=none)
    assert raised["type"] == "NoCredentialsError", done.stderr[-3000:]  # the SDK's own exception, unchanged
    assert report["category"] == "aws_credentials" and image in report["summary"]
    assert "Unable to locate credentials" in report["summary"] and report["remedy"] is None
    assert "[aws_credentials]" in done.stderr


def test_a_stopped_engine_is_daemon_down_and_the_report_is_still_written(make_engine, images, local_mode):
    daemon, _disk = make_engine()
    image = train_image(images, daemon, "smdiag-test/fine:1", "echo ok")
    daemon.kill()
    done, raised, report = local_mode("fit", image, host=daemon.host)
    assert done.returncode == 3 and report["category"] == "daemon_down"
    assert "error" in report["docker"] and report["containers"] == []


def test_an_sdk_config_error_on_a_stopped_engine_is_the_sdks_with_the_engine_beside_it(make_engine, local_mode):
    """The SDK refused the job's config before it went to the engine (issue 30): the exception is the cause,
    and the stopped engine is evidence, not the diagnosis."""
    daemon, _disk = make_engine()
    daemon.kill()
    done, raised, report = local_mode("fit_in_instance_groups", "smdiag-test/fine:1", host=daemon.host)
    assert raised["type"] == "KeyError", done.stderr[-3000:]  # the SDK's own exception, unchanged
    [note] = raised["notes"]
    assert note.startswith("smdiag: sdk_config:") and "smdiag fix" not in note
    assert report["category"] == "sdk_config" and "KeyError: 'InstanceType'" in report["summary"]
    assert "start" not in report["hint"] and report["remedy"] is None
    assert "cannot reach the Docker engine" in report["docker"]["error"] and report["containers"] == []


def test_a_server_slower_than_the_sdks_wait_names_the_sdks_limit(make_engine, images, local_mode, tmp_path):
    """SDK v2 gives up after HEALTH_CHECK_TIMEOUT_LIMIT seconds (shortened here, by the line the hint names)
    while the server still starts: the hint names that limit, not the model server's own timeout."""
    daemon, _disk = make_engine()
    image = train_image(images, daemon, "smdiag-test/never-ready:1", 'echo "loading a big model"; exec sleep 600')
    model = str(bed.model_tarball(tmp_path))
    done, raised, report = local_mode("deploy_waiting", image, model, str(bed.free_port()), "10", host=daemon.host)
    assert raised["type"] == "RuntimeError" and report["category"] == "serving_slow", done.stderr[-3000:]
    assert "still starting" in report["summary"] and "Giving up" in report["summary"]
    assert "sagemaker.local.entities.HEALTH_CHECK_TIMEOUT_LIMIT = " in report["hint"]
    assert "SAGEMAKER_MODEL_SERVER_TIMEOUT" not in report["hint"] and "health_check_timeout" not in report["hint"]


def test_a_serve_that_crashes_at_start_is_serving_crashed_with_its_logs(make_engine, images, local_mode, tmp_path):
    daemon, _disk = make_engine()
    crash = 'echo "loading model"; echo "Traceback (most recent call last):" >&2; echo "KeyError: model_fn" >&2; exit 2'
    image = train_image(images, daemon, "smdiag-test/bad-serve:1", crash)
    model = str(bed.model_tarball(tmp_path))  # on a port of its own: another worker's endpoint may hold 8080
    done, raised, report = local_mode("deploy", image, model, str(bed.free_port()), host=daemon.host, timeout=200)
    assert raised["type"] == "RuntimeError" and report["category"] == "serving_crashed"
    assert report["call"]["kind"] == "deploy"
    assert any("KeyError: model_fn" in line for c in report["containers"] for line in c["logs"])
    assert "Giving up" in report["exception"]["message"]


def test_a_deploy_waits_for_its_own_container_not_for_another_threads_failed_run(
    make_engine, images, local_mode, tmp_path, smdiag, hermetic_env
):
    daemon, _disk = make_engine()
    with daemon.client() as client:  # as on any engine that ran local mode once: two composes that start at
        client.networks.create("sagemaker-local")  # once on a fresh engine each make it ("ambiguous" network)
    broken = train_image(images, daemon, "smdiag-test/broken-train:1", bed.BROKEN_TRAIN_SCRIPT)
    slow_serve = "sleep 10; mkdir -p /www; echo ok > /www/ping; exec httpd -f -p 8080 -h /www"
    image = train_image(images, daemon, "smdiag-test/slow-serve:1", slow_serve)
    done, raised, report = local_mode("deploy_beside_a_failing_fit", image, str(bed.model_tarball(tmp_path)), broken,
                                      str(bed.free_port()), host=daemon.host, timeout=200)  # fmt: skip
    assert done.returncode == 0 and raised == {"ok": True}, done.stderr  # healthy once its server is up
    failures = json.loads(smdiag("failures", "list", "--json").stdout)
    errors = Path(hermetic_env["SMDIAG_STATE_DIR"]) / "logs" / "wrapper-errors.jsonl"
    said = errors.read_text() if errors.exists() else "no wrapper errors"
    assert len(failures) == 1, f"{said}\n{done.stderr[-4000:]}"  # the other thread's, its own
    assert failures[0]["category"] == "script_error" and failures[0]["call"] == "fit"


@pytest.mark.xdist_group("host-port-8080")  # holds the host's 8080: no other worker's endpoint may listen there
def test_port_8080_taken_is_port_in_use(make_engine, images, local_mode, tmp_path):
    daemon, _disk = make_engine()
    image = train_image(images, daemon, "smdiag-test/serve:1", "echo serving; sleep 60")
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        holder.bind(("0.0.0.0", 8080))
    except OSError as exc:
        pytest.fail(f"port 8080 must be free on the test machine: {exc}")
    holder.listen()
    try:
        model = str(bed.model_tarball(tmp_path))
        done, raised, report = local_mode("deploy", image, model, host=daemon.host, timeout=200)
    finally:
        holder.close()
    assert raised["type"] == "RuntimeError" and report["category"] == "port_in_use", report["summary"]
    # compose's stderr, which the SDK pipes for serving and never reads, is in the report
    assert any("address already in use" in line for line in report["compose_output"]), report["compose_output"]
    assert "predictor.delete_endpoint()" in report["hint"]


def test_no_failure_recorded_is_exit_1(smdiag):
    done = smdiag("last-failure")
    assert done.returncode == 1 and "no failure has been recorded" in done.stderr
    assert json.loads(smdiag("failures", "list", "--json").stdout) == []


def test_the_newest_readable_report_is_the_last_failure(tmp_path):
    """Report directories sort by time: the newest readable one is shown, an unreadable newer one skipped."""
    from agent.failures import store as failures

    names = ("20261201T100000Z-aaaaaa", "20261201T110000Z-bbbbbb", "20261201T120000Z-cccccc")
    older, newer, broken = (failures.failures_dir(tmp_path) / name for name in names)
    for directory, text in ((older, '{"id": "old"}'), (newer, '{"id": "new"}'), (broken, "{not json")):
        directory.mkdir(parents=True)
        (directory / "report.json").write_text(text)
    path, report = failures.last_report(tmp_path)
    assert (path, report) == (newer, {"id": "new"})
