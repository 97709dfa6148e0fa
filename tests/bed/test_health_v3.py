"""`smdiag health --mode local` on SageMaker SDK v3: smdiag run by an interpreter whose SDK is v3 (the cached
v3 environment, plus the two packages smdiag's command line adds: typer and structlog), against the bed
engine holding the contract images (tests/test_local_mode.py's `contract_engine`, cached between runs).
`ModelTrainer(training_mode=Mode.LOCAL_CONTAINER)` trains in those images with v3's own driver, and
sagemaker-core's local endpoint serves the result: nothing stands in for the SDK or the engine."""

# ruff: noqa: F811 - the tests take the fixtures imported from test_local_mode as arguments

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_local_mode import (  # noqa: F401 - fixtures
    CACHE,
    contract_engine,
    running_containers,
    scripts_with_the_chapters_bug,
    user_env,
)

from agent import frameworks
from agent.experiments import runner
from testbed import bed

pytestmark = [pytest.mark.bed, pytest.mark.timeout(2400 + bed.SDK_BUILD_TIMEOUT_S)]
PORT_8080 = pytest.mark.xdist_group("host-port-8080")  # local endpoints listen on the host's 8080


@pytest.fixture(scope="module")
def v3_python(tmp_path_factory, sdk_v3_site) -> str:
    """An interpreter that sees SDK v3 (and smdiag by PYTHONPATH), not the host's SDK v2."""
    cli = bed.cached_packages_dir(CACHE, ("typer", "structlog"))
    venv = bed.packages_venv(tmp_path_factory.mktemp("v3") / "venv", sdk_v3_site)
    (Path(bed.site_packages_of(venv)) / "smdiag-cli.pth").write_text(f"{cli}\n")  # after the SDK's (sorted)
    return str(venv / "bin" / "python")


def smdiag_v3(python: str, *args: str, env: dict, timeout: float = 1800) -> subprocess.CompletedProcess:
    return subprocess.run(
        [python, "-m", "agent", *args], env=env, capture_output=True, text=True, timeout=timeout
    )  # fmt: skip


def test_sdk_v3_where_v3_is_not_installed_is_bad_input_naming_the_fix(hermetic_env, tmp_path):
    """This interpreter has SDK v2: `--sdk v3` is refused before any work, as is an --sdk nobody knows."""
    work = tmp_path / "tmp"
    work.mkdir()
    env = {**hermetic_env, "TMPDIR": str(work), "SAGEMAKER_SUPPRESS_V2_WARNING": "1"}
    for args, wanted in [
        (("--sdk", "v3"), "pip install 'smdiag[sagemaker]'"),
        (("--sdk", "v4"), "use v2, v3 or auto"),
    ]:
        for as_json in (False, True):
            done = smdiag_v3(sys.executable, "health", "--mode", "local", "--quick", *args,
                             *(["--json"] if as_json else []), env=env, timeout=120)  # fmt: skip
            seen = f"{args} json={as_json}: {done.stdout!r} {done.stderr!r}"
            assert done.returncode == 2 and done.stderr.count("\n") == 1 and wanted in done.stderr, seen
            assert "Traceback" not in done.stdout + done.stderr, seen
    v3 = smdiag_v3(sys.executable, "health", "--mode", "local", "--sdk", "v3", env=env, timeout=120)
    assert "needs the SageMaker SDK v3" in v3.stderr and "or use --sdk v2" in v3.stderr, v3.stderr
    assert list(work.iterdir()) == []  # nothing done: no work directory


@PORT_8080
def test_local_quick_health_on_sdk_v3_passes_for_all_three(contract_engine, user_env, v3_python):
    daemon, _ = contract_engine
    done = smdiag_v3(v3_python, "health", "--mode", "local", "--quick", "--sdk", "v3", "--json", env=user_env)
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads(done.stdout)
    assert report["passed"] and report["mode"] == "local" and report["sdk"] == "v3", report
    assert [r["framework"] for r in report["results"]] == list(frameworks.FRAMEWORKS)
    for result in report["results"]:
        assert result["passed"] and result["rmse"] <= runner.BAR["quick"] and result["r2"] > 0.9, result
        assert result["train_s"] > 0 and result["deploy_s"] > 0 and result["predict_s"] > 0, result
    assert "ModelTrainer.train in a local container" in done.stderr  # the v3 path, shown as it runs
    assert running_containers(daemon) == []


@PORT_8080
def test_a_broken_script_on_sdk_v3_fails_health_and_last_failure_names_the_line(
    contract_engine,
    user_env,
    v3_python,
    tmp_path,
):
    """`--sdk` left to auto: the environment's v3 drives local mode."""
    daemon, _ = contract_engine
    scripts, bad_line = scripts_with_the_chapters_bug(tmp_path, "sklearn_script.py")
    env = {**user_env, "TMPDIR": str(tmp_path)}
    done = smdiag_v3(v3_python, "health", "--mode", "local", "--framework", "sklearn", "--quick", "--scripts",
                     str(scripts), "--json", env=env, timeout=900)  # fmt: skip
    assert done.returncode == 1, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["sdk"] == "v3" and not report["passed"]
    [result] = report["results"]
    assert result["error"].startswith("RuntimeError: Failed to run") and result["report_id"], result

    shown = json.loads(smdiag_v3(v3_python, "last-failure", "--json", env=env, timeout=60).stdout)
    assert shown["id"] == result["report_id"] and shown["category"] == "script_error"
    assert shown["call"]["sdk"] == "v3" and shown["call"]["kind"] == "train"
    assert "cannot import name 'seeds' from 'numpy.random'" in shown["summary"]
    assert f"sklearn_script.py, line {bad_line}" in shown["summary"]
    text = smdiag_v3(v3_python, "last-failure", env=env, timeout=60).stdout
    assert "script_error" in text and "seeds" in text
    assert running_containers(daemon) == []
