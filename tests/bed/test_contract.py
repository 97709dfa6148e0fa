"""The contract images' runtime (agent/images/container/smdiag_container.py) run on this host, as the
images run it: `train` over a real /opt/ml tree, `serve` answering HTTP on a real port; and the build's
planning, which is pure."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.linear_model import LinearRegression

from agent import images
from agent.errors import BadInput
from testbed import bed

CONTAINER = Path(images.__file__).with_name("container") / "smdiag_container.py"
ECHO_SCRIPT = """
import json, os, sys
with open(os.path.join(os.environ["SM_MODEL_DIR"], "seen.json"), "w") as f:
    json.dump({"argv": sys.argv[1:], "env": {k: v for k, v in os.environ.items() if k.startswith("SM_")}}, f)
"""


def opt_ml_tree(root: Path, script: str, hyperparameters: dict) -> Path:
    """What local mode mounts: config files, channels, the code; hyperparameters JSON-encoded as SageMaker does."""
    opt_ml = root / "opt" / "ml"
    config = opt_ml / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps({k: json.dumps(v) for k, v in hyperparameters.items()}))
    (config / "inputdataconfig.json").write_text(json.dumps({"train": {}, "validation": {}}))
    (config / "resourceconfig.json").write_text(json.dumps({"current_host": "algo-1", "hosts": ["algo-1"]}))
    (opt_ml / "code").mkdir()
    (opt_ml / "code" / "entry.py").write_text(script)
    return opt_ml


def run_container(command: str, opt_ml: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(CONTAINER), command],
        env={**os.environ, "SMDIAG_OPT_ML": str(opt_ml), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_train_runs_the_entry_script_with_the_toolkits_arguments_and_environment(tmp_path):
    hyperparameters = {
        "epochs": 3, "learning-rate": 0.01, "model_dir": "s3://b/m", "sagemaker_program": "entry.py",
        "sagemaker_submit_directory": "file:///somewhere", "sagemaker_region": "us-east-1",
    }  # fmt: skip
    opt_ml = opt_ml_tree(tmp_path, ECHO_SCRIPT, hyperparameters)
    done = run_container("train", opt_ml)
    assert done.returncode == 0, done.stderr
    seen = json.loads((opt_ml / "model" / "seen.json").read_text())
    assert seen["argv"] == ["--epochs", "3", "--learning-rate", "0.01", "--model_dir", "s3://b/m"]
    env = seen["env"]
    assert env["SM_MODEL_DIR"] == str(opt_ml / "model")
    assert env["SM_CHANNEL_TRAIN"] == str(opt_ml / "input" / "data" / "train")
    assert json.loads(env["SM_CHANNELS"]) == ["train", "validation"] and env["SM_CURRENT_HOST"] == "algo-1"
    assert json.loads(env["SM_HPS"]) == {"epochs": 3, "learning-rate": 0.01, "model_dir": "s3://b/m"}
    assert env["SM_HP_LEARNING_RATE"] == "0.01"


def test_a_failing_script_keeps_its_traceback_and_exit_code_and_writes_the_failure_file(tmp_path):
    opt_ml = opt_ml_tree(tmp_path, "from numpy.random import seeds\n", {"sagemaker_program": "entry.py"})
    done = run_container("train", opt_ml)
    assert done.returncode == 1
    assert "ImportError: cannot import name 'seeds' from 'numpy.random'" in done.stderr
    assert 'entry.py", line 1' in done.stderr
    assert "entry.py exited with code 1" in (opt_ml / "output" / "failure").read_text()


def test_train_without_an_entry_script_says_so(tmp_path):
    opt_ml = opt_ml_tree(tmp_path, "", {"sagemaker_program": "missing.py"})
    done = run_container("train", opt_ml)
    assert done.returncode == 1 and "missing.py" in (opt_ml / "output" / "failure").read_text()


SKLEARN_HANDLERS = """
import os, joblib
def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "model.joblib"))
"""


@pytest.fixture
def sklearn_server(tmp_path):
    opt_ml = opt_ml_tree(tmp_path, SKLEARN_HANDLERS, {})
    (opt_ml / "model").mkdir()

    joblib.dump(LinearRegression().fit([[0.0], [1.0]], [1.0, 3.0]), opt_ml / "model" / "model.joblib")
    port = bed.free_port()
    server = subprocess.Popen(
        [sys.executable, str(CONTAINER), "serve"],
        env={**os.environ, "SMDIAG_OPT_ML": str(opt_ml), "SMDIAG_FRAMEWORK": "sklearn", "SAGEMAKER_PROGRAM": "entry.py",
             "SAGEMAKER_SUBMIT_DIRECTORY": str(opt_ml / "code"), "SAGEMAKER_BIND_TO_PORT": str(port)},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/ping", timeout=2) as answer:
                assert answer.status == 200
                break
        except OSError:
            assert server.poll() is None and time.monotonic() < deadline, server.stdout.read().decode()
            time.sleep(0.2)
    yield url
    server.terminate()
    server.wait(10)


def invoke(url: str, body: bytes, content_type: str, accept: str) -> tuple[int, bytes, str]:
    request = urllib.request.Request(
        f"{url}/invocations", data=body, headers={"Content-Type": content_type, "Accept": accept}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read(), answer.headers["Content-Type"]
    except urllib.error.HTTPError as error:
        return error.code, error.read(), error.headers["Content-Type"]


def test_serve_answers_numpy_json_and_csv_as_the_inference_toolkit_does(sklearn_server):
    buffer = io.BytesIO()
    np.save(buffer, np.array([[2.0], [3.0]], dtype=np.float32))
    status, body, kind = invoke(sklearn_server, buffer.getvalue(), "application/x-npy", "application/x-npy")
    assert (status, kind) == (200, "application/x-npy")
    assert np.allclose(np.load(io.BytesIO(body)), [5.0, 7.0])
    status, body, kind = invoke(sklearn_server, b"[[4.0]]", "application/json", "application/json")
    assert (status, kind) == (200, "application/json") and np.allclose(json.loads(body), [9.0])
    status, body, _ = invoke(sklearn_server, b"0\n1\n", "text/csv", "text/csv")
    assert status == 200 and np.allclose([float(v) for v in body.decode().split()], [1.0, 3.0])


def test_serve_refuses_bad_requests_with_the_reason_and_keeps_serving(sklearn_server):
    status, body, _ = invoke(sklearn_server, b"<xml/>", "application/xml", "application/json")
    assert status == 415 and "unsupported content type 'application/xml'" in json.loads(body)["error"]
    status, body, _ = invoke(sklearn_server, b"[[1.0]]", "application/json", "image/png")
    assert status == 406
    status, body, _ = invoke(sklearn_server, b"not json", "application/json", "application/json")
    assert status == 400 and "cannot decode" in json.loads(body)["error"]
    status, body, _ = invoke(sklearn_server, b'[["a", "b"]]', "application/json", "application/json")
    assert status == 500  # the model's own error, as the toolkit answers it
    assert invoke(sklearn_server, b"[[1.0]]", "application/json", "application/json")[0] == 200


def wanted(framework: str, fingerprint: str, *uris: str) -> images.Wanted:
    return images.Wanted(framework, fingerprint, uris)


def test_plan_builds_tags_or_finds_current():
    want = [wanted("sklearn", "f1", "ecr/sk:1"), wanted("pytorch", "f2", "ecr/pt-t:1", "ecr/pt-i:1")]
    assert images.plan(want, {}, replace=False) == {"sklearn": "build", "pytorch": "build"}
    present = {"ecr/sk:1": "f1", "smdiag/contract-pytorch:f2": "f2", "ecr/pt-t:1": "f2", "ecr/pt-i:1": "old"}
    assert images.plan(want, present, replace=False) == {"sklearn": "current", "pytorch": "tag"}


def test_plan_refuses_to_retag_an_image_smdiag_did_not_build():
    want = [wanted("sklearn", "f1", "ecr/sk:1")]
    with pytest.raises(BadInput, match="did not build"):
        images.plan(want, {"ecr/sk:1": None}, replace=False)
    assert images.plan(want, {"ecr/sk:1": None}, replace=True) == {"sklearn": "build"}


def test_fingerprints_change_with_what_goes_into_an_image():
    assert images.image_fingerprint("sklearn") != images.image_fingerprint("pytorch")
    assert images.image_fingerprint("sklearn") == images.image_fingerprint("sklearn")
    assert images.LABEL in images.dockerfile("sklearn", "base:1", "f1") and "FROM base:1" in images.dockerfile(
        "sklearn", "base:1", "f1"
    )
