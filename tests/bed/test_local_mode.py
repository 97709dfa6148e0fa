"""The book's path, offline: SDK v2 framework estimators in local mode against the bed, with real compose
and real containers from the contract images that `smdiag images build` makes without a registry.

The images live in a bed engine whose data-root is kept on this machine between runs
(`SMDIAG_TEST_CACHE`, default /var/cache/smdiag-test), so only the first run on a machine builds them."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import docker.errors
import numpy as np
import pytest

from agent import frameworks
from agent.experiments import data, local, runner
from testbed import bed

# One worker runs this module: its engine's data-root is a cache shared under a lock, and health's local
# endpoints listen on the host's port 8080 (the SDK's default), which other groups' tests must not hold.
pytestmark = [pytest.mark.bed, pytest.mark.xdist_group("host-port-8080")]

CACHE = Path(os.environ.get("SMDIAG_TEST_CACHE", "/var/cache/smdiag-test"))
REGION = "us-east-1"
SEED_PROGRAM = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from sagemaker.local import LocalSession

    framework, scripts, data, hyperparameters = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
    ROLE, CODE = "arn:aws:iam::111111111111:role/local-mode", "s3://unused-bucket/code"
    session = LocalSession(sagemaker_config={"SchemaVersion": "1.0",
        "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}})
    session.config = {"local": {"local_code": True}}
    common = dict(source_dir=scripts, role=ROLE, instance_count=1, instance_type="local", sagemaker_session=session,
                  hyperparameters=hyperparameters, code_location=CODE)
    inputs = {"train": "file://" + data, "validation": "file://" + data}
    x_test = np.loadtxt(data + "/test_data.csv", delimiter=",", ndmin=2)[:, 1:2].astype(np.float32)
    if framework == "tensorflow":
        from sagemaker.tensorflow import TensorFlow
        estimator = TensorFlow(entry_point="tensorflow_script.py", framework_version="2.16", py_version="py310",
                               **common)
        estimator.fit(inputs)
        predictor = estimator.deploy(initial_instance_count=1, instance_type="local", code_location=CODE)
        seed = predictor.predict({"instances": [[100], [200]]})["predictions"]
        predictions = predictor.predict({"instances": x_test.tolist()})["predictions"]
    elif framework == "pytorch":
        from sagemaker.deserializers import NumpyDeserializer
        from sagemaker.pytorch import PyTorch, PyTorchModel
        from sagemaker.serializers import NumpySerializer
        estimator = PyTorch(entry_point="pytorch_training.py", framework_version="2.3", py_version="py311", **common)
        estimator.fit(inputs)
        model = PyTorchModel(model_data=estimator.model_data, role=ROLE, entry_point="pytorch_inference.py",
                             source_dir=scripts, framework_version="2.3", py_version="py311",
                             sagemaker_session=session, code_location=CODE)
        predictor = model.deploy(initial_instance_count=1, instance_type="local")
        predictor.serializer, predictor.deserializer = NumpySerializer(), NumpyDeserializer()
        seed = predictor.predict(np.array([[100], [200]], dtype=np.float32))
        predictions = predictor.predict(x_test)
    else:
        from sagemaker.sklearn import SKLearn
        estimator = SKLearn(entry_point="sklearn_script.py", framework_version="1.2-1", py_version="py3", **common)
        estimator.fit(inputs)
        predictor = estimator.deploy(initial_instance_count=1, instance_type="local")
        seed = predictor.predict(np.array([[100], [200]], dtype=np.float32))
        predictions = predictor.predict(x_test)
    predictor.delete_endpoint()
    print(json.dumps({"seed": np.asarray(seed, dtype=float).reshape(-1).tolist(),
                      "predictions": np.asarray(predictions, dtype=float).reshape(-1).tolist()}))
    """
)


@pytest.fixture(scope="module")
def contract_engine(bed_ready):
    """A bed engine holding the contract images; its data-root survives this run to cache them. Another
    test run on this machine waits for it rather than sharing the data-root (or killing its daemon)."""
    data_root = CACHE / "engine"
    data_root.mkdir(parents=True, exist_ok=True)
    with open(CACHE / "engine.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        bed.kill_processes_using(data_root)  # under the lock, a daemon here is one a killed run left behind
        daemon = bed.Dockerd(data_root)
        try:
            daemon.start()
        except bed.BedUnavailable as exc:
            pytest.fail(f"the contract engine cannot start: {exc}", pytrace=False)
        with daemon.client() as client:
            client.containers.prune()  # the stopped containers of earlier runs' local mode
            client.networks.prune()  # theirs too: a network kept its subnet, which this engine's pool may not hold
        env = {**os.environ, "DOCKER_HOST": daemon.host, "SMDIAG_CACHE_DIR": str(CACHE / "build"),
               "AWS_DEFAULT_REGION": REGION, "SAGEMAKER_SUPPRESS_V2_WARNING": "1"}  # fmt: skip
        built = subprocess.run(
            [sys.executable, "-m", "agent", "images", "build", "--json"], env=env, capture_output=True, text=True,
            timeout=2400,
        )  # fmt: skip
        assert built.returncode == 0, built.stderr
        yield daemon, json.loads(built.stdout)
        daemon.cleanup()


@pytest.fixture
def user_env(contract_engine, hermetic_env, tmp_path):
    """A user of the contract engine. The containers a test leaves (a serving one on the host's 8080, after a
    failure or a timeout) are removed after it, or every later test's endpoint would fail as port_in_use."""
    daemon, _ = contract_engine
    with daemon.client() as client:
        before = {c.id for c in client.containers.list(all=True)}
    yield {
        **hermetic_env,
        "DOCKER_HOST": daemon.host,
        "AWS_DEFAULT_REGION": REGION,
        "SAGEMAKER_SUPPRESS_V2_WARNING": "1",
        "HOME": str(tmp_path),
    }
    with daemon.client() as client:
        for container in client.containers.list(all=True):
            if container.id not in before:
                with contextlib.suppress(docker.errors.APIError):  # gone, or going, already
                    container.remove(force=True)


def running_containers(daemon) -> list[str]:
    with daemon.client() as client:
        return [c.name for c in client.containers.list()]


def test_the_images_carry_the_uris_the_estimators_resolve_and_a_rebuild_is_a_no_op(contract_engine, user_env):
    daemon, first = contract_engine
    resolved = {f: local.image_uris(f, REGION) for f in ("tensorflow", "pytorch", "sklearn")}
    assert {i["framework"]: i["uris"] for i in first["images"]} == resolved
    with daemon.client() as client:
        for uris in resolved.values():
            assert len({client.images.get(uri).id for uri in uris}) == 1  # training and serving: one image
    again = subprocess.run(
        [sys.executable, "-m", "agent", "images", "build", "--json"],
        env={**user_env, "SMDIAG_CACHE_DIR": str(CACHE / "build")}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert {i["action"] for i in json.loads(again.stdout)["images"]} == {"current"}
    assert "images build: checking the engine for tensorflow, pytorch, sklearn images" in again.stderr  # its steps


@pytest.mark.parametrize("framework", ["tensorflow", "pytorch", "sklearn"])
def test_fit_deploy_predict_delete_with_the_seeds_payloads(framework, contract_engine, user_env, tmp_path):
    daemon, _ = contract_engine
    data_dir = tmp_path / "data"
    data.write(data_dir)
    program = tmp_path / "seed_program.py"
    program.write_text(SEED_PROGRAM)
    hyperparameters = json.dumps(frameworks.HYPERPARAMETERS["quick"][framework])
    done = subprocess.run(
        [sys.executable, str(program), framework, str(frameworks.SCRIPTS), str(data_dir), hyperparameters],
        env=user_env, capture_output=True, text=True, timeout=900, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    x_test, y_test = data.load(data_dir / "test_data.csv")
    rmse, _ = runner.score(y_test, answer["predictions"])
    assert rmse <= runner.BAR["quick"], rmse
    # The seed's two points: about formula(x) plus the noise's mean of 150.
    expected = [data.formula(x) + 150 for x in (100, 200)]
    assert len(answer["seed"]) == 2 and np.allclose(answer["seed"], expected, atol=400), answer["seed"]
    assert running_containers(daemon) == []


def scripts_with_the_chapters_bug(directory: Path, script_name: str) -> tuple[Path, int]:
    """A copy of the experiments' scripts where `script_name` imports what numpy does not have, as the
    chapter's script did; and the number of that line."""
    scripts = directory / "scripts"
    shutil.copytree(frameworks.SCRIPTS, scripts)
    script = scripts / script_name
    lines = script.read_text().splitlines()
    at = lines.index("import numpy as np") + 1
    lines.insert(at, "from numpy.random import seeds")
    script.write_text("\n".join(lines) + "\n")
    return scripts, at + 1


def test_the_seeds_broken_script_fails_fit_and_last_failure_names_the_line(contract_engine, user_env, tmp_path, smdiag):
    daemon, _ = contract_engine
    scripts, bad_line = scripts_with_the_chapters_bug(tmp_path, "tensorflow_script.py")
    args = ["health", "--mode", "local", "--framework", "tensorflow", "--quick", "--scripts", str(scripts), "--json"]
    done = smdiag(*args, env=user_env, timeout=900)
    assert done.returncode == 1, done.stderr[-2000:]
    [result] = json.loads(done.stdout)["results"]
    assert result["error"].startswith("RuntimeError") and result["report_id"]  # fit raised as before

    shown = smdiag("last-failure", "--json", env=user_env)
    report = json.loads(shown.stdout)
    assert report["id"] == result["report_id"] and report["category"] == "script_error"
    assert "cannot import name 'seeds' from 'numpy.random'" in report["summary"]
    assert f"/opt/ml/code/tensorflow_script.py, line {bad_line}" in report["summary"]
    assert running_containers(daemon) == []


def test_a_server_slower_than_the_sdks_wait_fails_health_and_is_stopped(contract_engine, user_env, tmp_path, smdiag):
    """The SDK gives up on a server that does not answer in time, but leaves it running: health deletes the
    endpoint, or the server would hold the port the next framework's endpoint needs."""
    daemon, _ = contract_engine
    scripts = tmp_path / "scripts"
    shutil.copytree(frameworks.SCRIPTS, scripts)
    script = scripts / "sklearn_script.py"
    script.write_text(script.read_text().replace(
        "def model_fn(model_dir):\n", "def model_fn(model_dir):\n    import time\n\n    time.sleep(3600)\n"
    ))  # fmt: skip
    args = ["health", "--mode", "local", "--framework", "sklearn", "--quick", "--scripts", str(scripts), "--json"]
    done = smdiag(*args, env=user_env, timeout=900)
    assert done.returncode == 1, done.stderr[-2000:]
    [result] = json.loads(done.stdout)["results"]
    assert result["train_s"] is not None and result["deploy_s"] is None and "Giving up" in result["error"], result
    assert running_containers(daemon) == []


def test_health_auto_picks_local_mode_here_and_all_three_pass(contract_engine, user_env, smdiag):
    daemon, _ = contract_engine
    done = smdiag("health", "--mode", "auto", "--quick", "--json", env=user_env, timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)  # stdout is the result alone: the SDK's and compose's output go to stderr
    assert report["mode"] == "local" and report["passed"]
    assert {r["framework"]: (r["mode"], r["passed"]) for r in report["results"]} == {
        "tensorflow": ("local", True),
        "pytorch": ("local", True),
        "sklearn": ("local", True),
    }
    assert all(r["rmse"] <= runner.BAR["quick"] and r["deploy_s"] is not None for r in report["results"])
    assert running_containers(daemon) == []


def test_a_uri_that_names_an_image_smdiag_did_not_build_is_left_alone(make_engine, images, smdiag, tmp_path):
    daemon, _disk = make_engine()
    [uri] = local.image_uris("sklearn", REGION)
    with daemon.client() as client:
        pulled = images.build(client, uri)  # stands for the real image, pulled from ECR
    env = {"DOCKER_HOST": daemon.host, "AWS_DEFAULT_REGION": REGION, "SMDIAG_CACHE_DIR": str(tmp_path / "cache")}
    done = smdiag("images", "build", "--framework", "sklearn", env=env)
    assert done.returncode == 2 and "did not build (pulled from ECR?)" in done.stderr and "--replace" in done.stderr
    with daemon.client() as client:
        assert client.images.get(uri).id == pulled.id and not list((tmp_path / "cache").glob("*"))


def test_a_build_into_a_full_disk_fails_with_the_engines_reason(make_engine, smdiag):
    daemon, _disk = make_engine(size_mb=300)  # the base fits, scikit-learn's layer does not
    env = {"DOCKER_HOST": daemon.host, "AWS_DEFAULT_REGION": REGION, "SMDIAG_CACHE_DIR": str(CACHE / "build")}
    done = smdiag("images", "build", "--framework", "sklearn", env=env, timeout=900)
    assert done.returncode == 1, done.stderr
    assert "building the sklearn image failed" in done.stderr and "no space left on device" in done.stderr
    with daemon.client() as client:
        assert not [t for i in client.images.list() for t in i.tags if "scikit-learn" in t]


def test_an_unreachable_debian_mirror_is_named(make_engine, smdiag, tmp_path):
    daemon, _disk = make_engine()
    mirror = f"http://127.0.0.1:{bed.free_port()}/debian"
    env = {"DOCKER_HOST": daemon.host, "AWS_DEFAULT_REGION": REGION, "SMDIAG_CACHE_DIR": str(tmp_path / "cache"),
           "SMDIAG_DEBIAN_MIRROR": mirror}  # fmt: skip
    done = smdiag("images", "build", "--framework", "sklearn", env=env, timeout=300)
    assert done.returncode == 1 and f"debootstrap from {mirror} failed" in done.stderr, done.stderr
    assert not list((tmp_path / "cache" / "images").glob("base-*.tar"))
