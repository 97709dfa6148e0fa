"""The three experiments: the seed's data bit for bit, the native health check end to end, a broken
script, the plot, and the S3 upload against moto in server mode over real HTTP."""

import json
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import boto3
import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

from agent import frameworks
from agent.experiments import data
from testbed import bed


def seed_chapter_generator():
    """The chapter's own code, as printed."""

    def formula(x):
        if x >= -2000:
            return x
        else:
            return -x - 4000

    np.random.seed(42)
    x = np.random.randint(low=-5000, high=5000, size=(1000,)).astype(int)
    y = np.vectorize(formula)(x) + np.random.normal(150, 150, 1000)
    return x, y


def test_the_data_matches_the_seed_bit_for_bit(tmp_path, smdiag):
    done = smdiag("data", "generate", "--out", str(tmp_path), "--json")
    assert done.returncode == 0
    assert json.loads(done.stdout)["rows"] == {
        "all_data.csv": 1000, "training_data.csv": 640, "validation_data.csv": 160, "test_data.csv": 200
    }  # fmt: skip
    x, y = seed_chapter_generator()
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=0)
    x_train, x_val, y_train, y_val = train_test_split(x_train, y_train, test_size=0.2, random_state=0)
    expected_files = {"all_data.csv": (x, y), "training_data.csv": (x_train, y_train),
                      "validation_data.csv": (x_val, y_val), "test_data.csv": (x_test, y_test)}  # fmt: skip
    for name, (xs, ys) in expected_files.items():
        expected = tmp_path / f"expected-{name}"
        pd.DataFrame({"y": ys, "x": xs}).to_csv(expected, header=False, index=False)
        assert (tmp_path / name).read_bytes() == expected.read_bytes(), name


def test_native_quick_health_passes_for_all_three_and_draws_the_plot(tmp_path, smdiag):
    plot = tmp_path / "health.png"
    done = smdiag("health", "--mode", "auto", "--quick", "--plot", str(plot), "--json", timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["passed"] and report["mode"] == "native" and report["mode_reason"] == "no Docker engine answers"
    assert [r["framework"] for r in report["results"]] == ["tensorflow", "pytorch", "sklearn"]
    for result in report["results"]:
        assert result["passed"] and result["rmse"] <= 400 and result["r2"] > 0.9, result
        assert result["train_s"] > 0 and result["deploy_s"] > 0 and result["cpu_s"] > 0 and result["error"] is None
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 20_000
    progress = done.stderr.splitlines()
    for framework in ("tensorflow", "pytorch", "sklearn"):
        phases = [line.split(": ")[2].split(" (")[0] for line in progress if line.startswith(f"health: {framework}: ")]
        assert phases[0] == "training" and phases[-2:] == ["serving", "done"], progress
    # What the PyTorch script reports: at least how its training ended, however fast it ran.
    epochs = frameworks.HYPERPARAMETERS["quick"]["pytorch"]["epochs"]
    assert any(re.search(rf"health: pytorch: training \(epoch \d+/{epochs}, loss", line) for line in progress), progress


def test_the_seeds_broken_script_fails_health_naming_the_framework_and_error(tmp_path, smdiag):
    scripts = tmp_path / "scripts"
    shutil.copytree(data.Path(data.__file__).parent / "scripts", scripts)
    entry = scripts / "tensorflow_script.py"
    entry.write_text(
        entry.read_text().replace("import numpy as np\n", "import numpy as np\nfrom numpy.random import seeds\n", 1)
    )
    kept_here = {"TMPDIR": str(tmp_path)}  # a failed run keeps its work directory (its logs)
    done = smdiag("health", "--mode", "native", "--framework", "tensorflow", "--quick", "--scripts", str(scripts),
                  "--json", env=kept_here, timeout=300)  # fmt: skip
    assert done.returncode == 1
    [result] = json.loads(done.stdout)["results"]
    assert result["framework"] == "tensorflow" and not result["passed"]
    assert "ImportError: cannot import name 'seeds' from 'numpy.random'" in result["error"]
    assert "tensorflow_script.py, line" in result["error"]
    text = smdiag("health", "--mode", "native", "--framework", "tensorflow", "--quick", "--scripts", str(scripts),
                  env=kept_here)  # fmt: skip
    assert "FAIL" in text.stdout and "tensorflow: ImportError" in text.stdout


@pytest.mark.parametrize(
    "broken, expected",
    [
        # Serving reads the saved artifact, not the model training left in memory: a model_fn that looks
        # for another file fails, after training passed.
        (('"model.joblib"))\n\n\ndef load_data', '"model.pkl"))\n\n\ndef load_data'), "serving: FileNotFoundError"),
        # A script that exits non-zero without a traceback fails as `python script.py` would, unserved.
        (("    print(model)\n", "    print(model)\n    sys.exit(3)\n"), "(exit 3, log: "),
    ],
)
def test_a_broken_serving_or_exiting_script_fails_health_saying_how(tmp_path, smdiag, broken, expected):
    scripts = tmp_path / "scripts"
    shutil.copytree(data.Path(data.__file__).parent / "scripts", scripts)
    entry = scripts / "sklearn_script.py"
    source = entry.read_text().replace("import argparse\n", "import argparse\nimport sys\n", 1)
    assert broken[0] in source
    entry.write_text(source.replace(broken[0], broken[1], 1))
    relative = os.path.relpath(scripts)  # as a user types it: the scripts still run from their directory
    done = smdiag("health", "--mode", "native", "--framework", "sklearn", "--quick", "--scripts", relative,
                  "--json", env={"TMPDIR": str(tmp_path)}, timeout=300)  # fmt: skip
    assert done.returncode == 1, done.stderr
    [result] = json.loads(done.stdout)["results"]
    assert not result["passed"] and expected in result["error"] and result["train_s"] > 0, result
    assert result["deploy_s"] is None and result["rmse"] is None
    served = "health: sklearn: serving" in done.stderr
    assert served == expected.startswith("serving"), done.stderr


def test_bad_health_input_is_exit_2(smdiag, tmp_path):
    for args in (("--framework", "caffe"), ("--mode", "cloud"), ("--plot", str(tmp_path / "x.jpg"))):
        done = smdiag("health", *args)
        assert done.returncode == 2 and done.stderr.startswith("smdiag: "), args


def test_upload_uses_the_seeds_s3_layout_against_moto_server(tmp_path, smdiag):
    port = bed.free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    endpoint = f"http://127.0.0.1:{port}"
    creds = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(endpoint, timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing")  # fmt: skip
        s3.create_bucket(Bucket="cookbook")
        done = smdiag("data", "upload", "--bucket", "cookbook", "--prefix", "chapter03", "--endpoint-url", endpoint,
                      "--json", env=creds)  # fmt: skip
        assert done.returncode == 0, done.stderr
        keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="cookbook")["Contents"])
        assert keys == [f"chapter03/synthetic/{n}" for n in sorted(data.FILES)]
        body = s3.get_object(Bucket="cookbook", Key="chapter03/synthetic/test_data.csv")["Body"].read().decode()
        assert len(body.splitlines()) == 200
        missing = smdiag("data", "upload", "--bucket", "no-such-bucket", "--endpoint-url", endpoint, env=creds)
        assert missing.returncode == 1 and "NoSuchBucket" in missing.stderr
    finally:
        server.terminate()
        server.wait(10)


def test_the_state_dir_flag_reaches_the_failure_recorder_of_local_mode(smdiag, hermetic_env, tmp_path):
    """No engine answers, so fit fails; its report goes where --state-dir says, not to SMDIAG_STATE_DIR."""
    chosen = tmp_path / "chosen-state"
    done = smdiag("--state-dir", str(chosen), "health", "--mode", "local", "--framework", "sklearn", "--quick",
                  "--json", env={"AWS_DEFAULT_REGION": "us-east-1", "TMPDIR": str(tmp_path)}, timeout=300)  # fmt: skip
    report = json.loads(done.stdout)
    assert report["work_dir"].startswith(str(tmp_path))  # kept for a failed run's logs, in the test's TMPDIR
    assert done.returncode == 1 and report["results"][0]["report_id"], done.stderr[-2000:]
    found = smdiag("--state-dir", str(chosen), "last-failure", "--json")
    assert found.returncode == 0 and json.loads(found.stdout)["id"] == report["results"][0]["report_id"]
    assert json.loads(found.stdout)["category"] == "daemon_down"
    shown = smdiag("--state-dir", str(chosen), "last-failure").stdout
    assert re.search(r"disk container_root \S+: \d+% used, [\d.]+ [KMGT]iB free of [\d.]+ [KMGT]iB", shown), shown
    assert not (Path(hermetic_env["SMDIAG_STATE_DIR"]) / "failures").exists()
    assert "health: sklearn: training" in done.stderr  # progress on stderr, the result alone on stdout


def read_until(fd: int, wanted: str, process: subprocess.Popen, timeout: float = 300) -> str:
    """What a terminal shows, read until `wanted` appears (or the process ends)."""
    seen, deadline = "", time.monotonic() + timeout
    while wanted not in seen and time.monotonic() < deadline and process.poll() is None:
        if select.select([fd], [], [], 1)[0]:
            seen += os.read(fd, 65536).decode(errors="replace")
    return seen


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_on_a_terminal_health_shows_its_phases_live_and_an_interrupt_leaves_no_work_dir(hermetic_env, tmp_path, stop):
    main, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "agent", "health", "--quick", "--framework", "sklearn,pytorch"],
        stdin=terminal, stdout=terminal, stderr=terminal, start_new_session=True,
        env={**hermetic_env, "TMPDIR": str(tmp_path), "COLUMNS": "120"},
    )  # fmt: skip
    os.close(terminal)
    try:
        shown = read_until(main, "training", process)
        assert "sklearn" in shown and "training" in shown and process.poll() is None, shown  # live, while working
        assert list(tmp_path.glob("smdiag-health-*")), "the run has its work directory while it works"
        process.send_signal(stop)
        assert process.wait(120) == 130  # it ran its cleanup, not died of the signal
    finally:
        if process.poll() is None:
            process.kill()
        os.close(main)
    assert not list(tmp_path.glob("smdiag-health-*"))
