"""SageMaker Studio spaces: platform detection and the refusal rules (pure), then smdiag and the real SDK v2
in a Studio-shaped bed (testbed/studio_bed.py): the bed's engine behind a proxy that refuses what Studio's
refuses, a `sagemaker` network, resource-metadata.json under a temporary root."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import docker
import docker.errors
import psutil
import pytest
import yaml
from test_health_v3 import v3_python  # noqa: F401 - the fixture: smdiag's interpreter with SDK v3
from test_local_mode import contract_engine  # noqa: F401 - the fixture: the engine holding the contract images

from agent import frameworks, platform
from agent.failures import catalog
from agent.guard.state import guard_pid
from agent.host import kernels, studio
from agent.settings import Settings
from agent.statedir import StateDir
from testbed import TESTBED, bed
from testbed.studio_bed import NETWORK, PRIVILEGED, StudioSpace

AL2023 = {"ID": "amzn", "VERSION_ID": "2023", "PRETTY_NAME": "Amazon Linux 2023"}
DEBIAN = {"ID": "debian", "VERSION_ID": "12", "PRETTY_NAME": "Debian GNU/Linux 12 (bookworm)"}


# ------------------------------------------------------------------------------------------- detection


@pytest.mark.parametrize("app_type", ["JupyterLab", "CodeEditor", "KernelGateway"])
def test_a_studio_app_that_runs_local_mode_is_studio_pinned_to_api_1_41(app_type):
    found = platform.classify(False, {"AppType": app_type, "SpaceName": "s", "DomainId": "d-1"}, DEBIAN)
    assert (found.kind, found.app_type, found.name, found.domain_id) == (platform.STUDIO, app_type, "s", "d-1")
    assert found.local_mode and found.api_version == "1.41" and found.os is None
    assert found.label == f"SageMaker Studio {app_type} space s"


def test_an_app_type_the_sdk_refuses_is_studio_without_local_mode():
    found = platform.classify(False, {"AppType": "RStudioServerPro"}, DEBIAN)
    assert found.kind == platform.STUDIO and not found.local_mode
    assert "refuses local mode" in found.label


@pytest.mark.parametrize(
    ("config", "metadata", "release", "os_"),
    [
        (True, None, AL2023, "AL2023"),
        (False, {"ResourceName": "nb", "ResourceArn": "arn:...:notebook-instance/nb"}, AL2023, "AL2023"),
        (True, {"ResourceName": "nb"}, {"ID": "amzn", "VERSION_ID": "2"}, "AL2"),
        (False, {"unparsed": True}, AL2023, "AL2023"),
    ],
)
def test_a_notebook_instance_is_one_whatever_says_so_first(config, metadata, release, os_):
    found = platform.classify(config, metadata, release)
    assert found.kind == platform.NOTEBOOK_INSTANCE and found.os == os_ and found.api_version is None


def test_anything_else_is_a_plain_docker_host():
    found = platform.classify(False, None, DEBIAN)
    assert found.kind == platform.DOCKER_HOST and found.local_mode and found.api_version is None
    assert found.label == "Docker host (Debian GNU/Linux 12 (bookworm))"


def test_detect_reads_the_configured_metadata_path(tmp_path):
    metadata = tmp_path / "resource-metadata.json"
    settings = Settings.load(
        {
            "SMDIAG_NOTEBOOK_METADATA": str(metadata),
            "SMDIAG_NOTEBOOK_CONFIG": str(tmp_path / "none"),
            "SMDIAG_OS_RELEASE": str(tmp_path / "none"),
            "SMDIAG_STATE_DIR": str(tmp_path / "state"),
        }
    )
    assert platform.detect(settings).kind == platform.DOCKER_HOST
    metadata.write_text(json.dumps({"AppType": "CodeEditor"}))
    assert platform.detect(settings).app_type == "CodeEditor"


# ---------------------------------------------------------------------------------------------- the bed


@pytest.fixture
def space_and_disk(tmp_path, make_engine):
    """The space, and the loop disk that holds its engine's data-root."""
    daemon, disk = make_engine(size_mb=1024)
    sock_dir = bed.short_tempdir("sd")
    made = StudioSpace(tmp_path, daemon, sock_dir)
    made.proxy.start()
    yield made, disk
    made.proxy.stop()
    shutil.rmtree(sock_dir, ignore_errors=True)


@pytest.fixture
def space(space_and_disk):
    return space_and_disk[0]


def docker_cli(space: StudioSpace, *args: str) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", **space.env()}
    return subprocess.run(["docker", *args], env=env, capture_output=True, text=True, timeout=120)


def test_the_proxy_refuses_as_studios_and_the_rules_name_each_refusal(space, images):
    with space.daemon.client() as client:
        images.build(client, "studio/bb:1")
    ran = docker_cli(space, "run", "--rm", "--network", "sagemaker", "studio/bb:1", "echo", "hello")
    assert ran.returncode == 0 and ran.stdout.strip() == "hello", ran.stderr
    privileged = docker_cli(space, "run", "--rm", "--privileged", "--network", "sagemaker", "studio/bb:1", "true")
    assert f'Error response from daemon: {{"message":"{PRIVILEGED}"}}' in privileged.stderr, privileged
    assert catalog.studio_refusal(privileged.stderr)[0] == "studio_privileged"
    bridged = docker_cli(space, "run", "--rm", "studio/bb:1", "true")
    assert NETWORK in bridged.stderr and catalog.studio_refusal(bridged.stderr)[0] == "studio_network", bridged
    made = docker_cli(space, "network", "create", "mine")
    assert made.returncode != 0 and catalog.studio_refusal(made.stderr)[0] == "studio_network", made
    with space.daemon.client() as client:
        assert "mine" not in [n.name for n in client.networks.list()]


def doctor(smdiag, space: StudioSpace, **env: str) -> tuple[int, dict]:
    done = smdiag("doctor", "--json", env={**space.env(), "PATH": "/usr/local/bin:/usr/bin:/bin", **env})
    assert done.stdout.strip(), done.stderr
    return done.returncode, json.loads(done.stdout)


def test_doctor_names_the_space_and_is_right_about_each_studio_check(space, smdiag, images):
    with space.daemon.client() as client:
        images.build(client, "studio/bb:1")
        client.containers.run("studio/bb:1", "true", network_mode="sagemaker")
        version, df = client.version(), client.df()
    (space.home / "tmp").mkdir()
    _, report = doctor(smdiag, space)
    assert report["platform"]["kind"] == "studio" and report["platform"]["app_type"] == "JupyterLab"
    assert report["platform"]["name"] == "bed-space" and not report["notebook"]["is_notebook_instance"]
    facts = report["studio"]
    assert facts["proxy"] == {"host": space.proxy.host, "expected": "unix:///docker/proxy.sock",
                              "socket_exists": True, "expected_exists": False,
                              "unversioned_status": 301}  # fmt: skip
    # Through a proxy that redirects unversioned calls, only a pinned client gets an answer.
    assert report["engine"]["reachable"] and report["engine"]["version"] == version["Version"]
    assert facts["engine"]["api_version"] == version["ApiVersion"] == "1.41"
    assert facts["engine"]["disk_usage"] == studio.disk_usage(df)
    assert facts["engine"]["disk_usage"]["images"] >= 1 and facts["engine"]["disk_usage"]["containers_bytes"] >= 0
    assert facts["compose"] == {"v2": ["docker", "compose"], "v3": ["docker", "compose"],
                                "plugin_version": "Docker Compose version v2.29.2"}  # fmt: skip
    home, tmp = facts["disks"]
    assert (home["role"], home["path"], home["exists"]) == ("home", str(space.home), True)
    assert (tmp["path"], tmp["exists"]) == (str(space.home / "tmp"), True)
    assert not [p for p in report["problems"] if p["check"] in ("engine", "studio", "compose")], report["problems"]

    text = smdiag("doctor", env={**space.env(), "PATH": "/usr/local/bin:/usr/bin:/bin"}).stdout
    assert "SageMaker Studio JupyterLab space bed-space" in text
    assert "unversioned API calls get HTTP 301; smdiag pins API 1.41" in text
    assert "SageMaker SDK v3 will run: docker compose" in text and "the engine's own accounting: images" in text


def test_doctor_with_docker_access_off_quotes_dockers_own_error_and_says_how_to_turn_it_on(space, smdiag, tmp_path):
    missing = f"unix://{tmp_path}/docker/proxy.sock"
    code, report = doctor(smdiag, space, DOCKER_HOST=missing)
    said = docker_cli(space, "--host", missing, "version").stderr.strip().splitlines()[-1]
    assert code == 1 and said == studio.DISABLED_ERROR.format(host=missing)
    [problem] = [p for p in report["problems"] if p["check"] == "engine"]
    assert said in problem["problem"] and "EnableDockerAccess" in problem["fix"] and "systemctl" not in problem["fix"]


def test_doctor_with_a_full_home_and_a_dead_engine_behind_the_proxy_says_each(space, smdiag, make_disk):
    home = make_disk("home", 60)
    home.fill(leave_mb=3)
    space.daemon.stop()
    code, report = doctor(smdiag, space, HOME=str(home.path))
    problems = {p["check"]: p for p in report["problems"]}
    assert code == 1 and report["studio"]["proxy"]["socket_exists"]
    assert f"{home.path} is" in problems["disk"]["problem"] and "~/tmp" in problems["disk"]["fix"]
    assert "API 1.41 pinned" in problems["engine"]["problem"] and "systemctl" not in problems["engine"]["fix"]


def test_doctor_in_an_app_the_sdk_refuses_says_so(space, smdiag):
    space.write_metadata("RStudioServerPro")
    code, report = doctor(smdiag, space)
    assert code == 1 and "AppType RStudioServerPro in Studio does not support Local Mode" in str(report["problems"])


def test_bootstrap_on_studio_has_nothing_to_move_and_changes_nothing(space, smdiag, tmp_path):
    done = smdiag("bootstrap", "--json", env=space.env())
    result = json.loads(done.stdout)
    assert done.returncode == 0 and result["action"] == "not_applicable" and "nothing to move" in result["why"]
    assert not (tmp_path / "no-daemon.json").exists() and not (tmp_path / "state" / "bootstrap").exists()
    text = smdiag("bootstrap", env=space.env())
    assert text.returncode == 0 and text.stdout.startswith("SageMaker Studio JupyterLab space bed-space: ")


UNPINNED = "Error while fetching server API version"
"""What docker-py says when the proxy redirects its unversioned `GET /version` (an unpinned client)."""


MB = 1024 * 1024


def engine_bytes(space: StudioSpace) -> int:
    """What the engine stores by its own accounting, asked of it directly (not through the proxy)."""
    with space.daemon.client() as client:
        return studio.engine_bytes(studio.disk_usage(client.df()))


@pytest.fixture
def lru_images(space, images):
    """Four unused-looking images, oldest first, and a stopped container from the oldest: `used` arrived
    first but a container holds it; `old` is then the least recently used image that nothing uses."""
    with space.daemon.client() as client:
        for name in ("used", "old", "mid", "new"):
            images.build(client, f"studio/{name}:1", size_mb=20)
        client.containers.run("studio/used:1", "true", network_mode="sagemaker", name="user-of-used")
    return ["studio/used:1", "studio/old:1", "studio/mid:1", "studio/new:1"]


def test_diskguard_on_studio_measures_the_engines_accounting_through_the_proxy_and_prunes_lru_first(
    space, smdiag, make_disk, lru_images
):
    """The data-root is hidden from smdiag as in a space; the budget is the home volume's size. The
    watermarks are set from the measured bytes so that exactly one image must go: the least recently used
    one that no container uses."""
    with pytest.raises(docker.errors.DockerException, match=UNPINNED):
        docker.DockerClient(base_url=space.proxy.host)  # the trap: a client that asks the proxy its version
    home = make_disk("home", 200)
    env = {**space.env(), "HOME": str(home.path)}
    hidden = space.without_data_root()
    st = os.statvfs(home.path)
    budget = (st.f_blocks - st.f_bfree + st.f_bavail) * st.f_frsize
    used = engine_bytes(space)
    high, low = f"{100 * (used - 5 * MB) / budget:.2f}", f"{100 * (used - 15 * MB) / budget:.2f}"

    status = smdiag("diskguard", "status", "--json", env=env, prefix=hidden)
    report = json.loads(status.stdout)
    assert report["error"] is None and UNPINNED not in status.stderr, status
    assert (report["data_root"], report["watched"], report["used"], report["budget"]) == (
        None, "the engine's accounting", used, budget
    )  # fmt: skip
    assert f"docker system df through {space.proxy.host}" in report["measured"]
    assert [d["path"] for d in report["space_disks"]] == [str(home.path), str(home.path / "tmp")]
    text = smdiag("diskguard", "status", env=env, prefix=hidden).stdout
    assert "of its budget" in text and f"the size of the space's EBS volume {home.path}" in text, text

    args = ("diskguard", "once", "--json", "--high", high, "--low", low, "--min-age", "0s")
    forecast = json.loads(smdiag(*args, "--dry-run", env=env, prefix=hidden).stdout)
    assert [r["names"] for r in forecast["removed"]] == [["studio/old:1"]] and forecast["dry_run"], forecast
    assert forecast["measured"] == report["measured"]
    done = smdiag(*args, env=env, prefix=hidden, timeout=300)
    assert done.returncode == 0 and UNPINNED not in done.stderr, done.stderr
    result = json.loads(done.stdout)
    assert result["path"] == "the engine's accounting" and result["before_pct"] > float(high), result
    assert [r["names"] for r in result["removed"]] == [["studio/old:1"]]
    assert result["after_pct"] <= float(low) and engine_bytes(space) == used - result["removed"][0]["bytes"]
    kept = {tuple(k["names"]): k["reason"] for k in result["kept"]}
    assert kept[("studio/used:1",)] == "used by stopped container user-of-used"
    with space.daemon.client() as client:
        tags = {tag for image in client.images.list() for tag in image.tags}
    assert tags == {"studio/used:1", "studio/mid:1", "studio/new:1"}
    after = json.loads(smdiag("diskguard", "status", "--json", env=env, prefix=hidden).stdout)
    assert after["last_check"]["removed"] == result["removed"] and after["used"] == engine_bytes(space)


FIT = TESTBED / "guest_fit.py"
TRAIN_V3 = TESTBED / "guest_program_v3.py"


class Kernel:
    """A kernel's environment in the space with the hook on: SDK v2 (the host's packages) or v3 (the cached
    venv), run where /opt/ml/metadata is the space's, so that each SDK detects Studio by itself."""

    def __init__(self, space: StudioSpace, hermetic_env: dict[str, str], env_dir: Path, site: str | None = None):
        self.space = space
        self.state = Path(hermetic_env["SMDIAG_STATE_DIR"])
        if site is None:
            bed.host_packages_venv(env_dir)
        else:
            bed.packages_venv(env_dir, site)
        assert kernels.enable(self.state, [str(env_dir)], Path(sys.executable))["ok"]
        self.python = str(env_dir / "bin" / "python")
        self.env = {**hermetic_env, **space.env(), "AWS_DEFAULT_REGION": "us-east-1",
                    "SAGEMAKER_SUPPRESS_V2_WARNING": "1",
                    "PATH": f"{env_dir}/bin:/usr/local/bin:/usr/bin:/bin"}  # fmt: skip

    def run(self, *argv: str) -> subprocess.CompletedProcess:
        return subprocess.run(self.space.in_space(self.python, *argv), env=self.env, cwd=self.space.home,
                              capture_output=True, text=True, timeout=600)  # fmt: skip

    def fit(self, image: str) -> dict:
        """SDK v2's Estimator.fit() of `image`; the exception it raised."""
        done = self.run(str(FIT), image)
        assert done.returncode == 3, done.stdout + done.stderr[-3000:]
        return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_failing_fit_in_the_space_runs_on_the_sagemaker_network_and_is_reported(space, smdiag, images, tmp_path,
                                                                                     hermetic_env):  # fmt: skip
    with space.daemon.client() as client:
        images.build(client, "studio/train:1", scripts={"train": bed.BROKEN_TRAIN_SCRIPT})
    kernel = Kernel(space, hermetic_env, tmp_path / "kernel-env")
    raised = kernel.fit("studio/train:1")
    assert raised["type"] == "RuntimeError" and "Failed to run" in raised["message"], raised
    assert raised["notes"][0].startswith("smdiag: script_error:")
    # Studio detected by the SDK itself: staged under ~/tmp, the one container on `sagemaker`, no ports.
    compose_file = next((space.home / "tmp").glob("*/docker-compose.yaml"))
    [service] = yaml.safe_load(compose_file.read_text())["services"].values()
    assert service["network_mode"] == "sagemaker" and "ports" not in service

    shown = smdiag("last-failure", "--json", env=kernel.env)
    report = json.loads(shown.stdout)
    assert report["category"] == "script_error", report
    assert "cannot import name 'seeds'" in report["summary"] and "train.py, line 3" in report["summary"]
    with space.daemon.client() as client:
        made = client.containers.list(all=True)
    assert [c.labels.get("smdiag.bed.network") for c in made] == ["sagemaker"]  # as asked; served on the host's


@pytest.mark.timeout(600 + bed.SDK_BUILD_TIMEOUT_S)  # the first run on a machine builds the SDK v3 environment
def test_a_failing_model_trainer_in_the_space_is_reported_as_the_scripts_error(space, smdiag, images, tmp_path,
                                                                                hermetic_env, sdk_v3_site):  # fmt: skip
    """SDK v3 on Studio: `sagemaker` network, no networks section; its container_root is what the user
    passes (cwd by default), not ~/tmp as v2 forces."""
    with space.daemon.client() as client:
        images.build(client, "studio/train-v3:1", scripts={"train": bed.BROKEN_TRAIN_SCRIPT}, cmd=["train"])
    kernel = Kernel(space, hermetic_env, tmp_path / "kernel-env-v3", sdk_v3_site)
    data, root = space.home / "data", space.home / "run"
    data.mkdir()
    (data / "train.csv").write_text("1,2\n")
    root.mkdir()
    result = tmp_path / "v3.json"
    done = kernel.run(str(TRAIN_V3), str(result), "studio/train-v3:1", str(data), str(root))
    raised = json.loads(result.read_text())["exception"]
    assert raised["type"] == "RuntimeError" and "Failed to run" in raised["message"], done.stderr[-3000:]
    assert raised["notes"][0].startswith("smdiag: script_error:")
    compose = yaml.safe_load((root / "docker-compose.yaml").read_text())
    [service] = compose["services"].values()
    assert service["network_mode"] == "sagemaker" and "networks" not in compose and "ports" not in service

    report = json.loads(smdiag("last-failure", "--json", env=kernel.env).stdout)
    assert (report["category"], report["call"]["sdk"], report["call"]["kind"]) == ("script_error", "v3", "train")
    assert "/opt/ml/code/train.py, line 3" in report["summary"] and "cannot import name 'seeds'" in report["summary"]


@pytest.fixture
def contract_space(contract_engine, tmp_path):  # noqa: F811 - the fixture imported above
    """The space in front of the engine holding the framework images that `smdiag images build` makes."""
    daemon, _ = contract_engine
    sock_dir = bed.short_tempdir("sh")
    made = StudioSpace(tmp_path, daemon, sock_dir)
    made.proxy.start()
    yield made
    made.proxy.stop()
    shutil.rmtree(sock_dir, ignore_errors=True)


def quick_local_health_in(space: StudioSpace, python: str, hermetic_env: dict[str, str], *sdk: str) -> dict:
    """`smdiag health --mode local --quick` run by `python` where /opt/ml/metadata is the space's, so that
    the SDK detects Studio by itself; its report, after checking that every container it made asked for
    `sagemaker`, published no port and is gone from the running ones (each endpoint reached at
    localhost:8080, as the SDK does there)."""
    with space.daemon.client() as client:
        before = {c.id for c in client.containers.list(all=True)}
    env = {**hermetic_env, **space.env(), "AWS_DEFAULT_REGION": "us-east-1", "SAGEMAKER_SUPPRESS_V2_WARNING": "1",
           "PATH": "/usr/local/bin:/usr/bin:/bin"}  # fmt: skip
    done = subprocess.run(space.in_space(python, "-m", "agent", "health", "--mode", "local", "--quick", *sdk, "--json"),
                          env=env, capture_output=True, text=True, timeout=1700)  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads(done.stdout)
    assert report["passed"] and report["mode"] == "local", report
    assert {r["framework"]: r["passed"] for r in report["results"]} == dict.fromkeys(frameworks.FRAMEWORKS, True)
    assert all(r["deploy_s"] is not None for r in report["results"]), report
    with space.daemon.client() as client:
        made = [c for c in client.containers.list(all=True) if c.id not in before]
    assert [c.name for c in made if c.status == "running"] == []
    assert made and {c.labels.get("smdiag.bed.network") for c in made} == {"sagemaker"}, made
    assert not any(c.attrs["HostConfig"]["PortBindings"] for c in made)
    return report


@pytest.mark.xdist_group("host-port-8080")  # the serving containers hold the host's 8080, one at a time
@pytest.mark.timeout(1800)
def test_quick_local_health_in_the_space_serves_on_the_sagemaker_network_and_passes(contract_space, hermetic_env):
    assert quick_local_health_in(contract_space, sys.executable, hermetic_env)["sdk"] == "v2"


@pytest.mark.xdist_group("host-port-8080")
@pytest.mark.timeout(1800 + bed.SDK_BUILD_TIMEOUT_S)  # the first run on a machine builds the SDK v3 environment
def test_quick_local_health_on_sdk_v3_in_the_space_passes(contract_space, hermetic_env, v3_python):  # noqa: F811
    assert quick_local_health_in(contract_space, v3_python, hermetic_env, "--sdk", "v3")["sdk"] == "v3"


def test_a_full_engine_disk_in_the_space_is_disk_full_with_studios_hint_and_the_guard_answers_it(
    space, make_engine, images, registry, smdiag, tmp_path, hermetic_env
):
    """The engine's data-root on a real 150 MB disk; compose pulls a 100 MB image into it through the proxy.
    The report names the engine's disk with a hint for the space (not moving /var/lib/docker), and the
    guard, which cannot see that disk, takes the engine's own ENOSPC as its measure: it prunes."""
    small, _disk = make_engine(size_mb=150)
    sock_dir = bed.short_tempdir("sf")
    full = StudioSpace(tmp_path / "full-space", small, sock_dir)
    full.proxy.start()
    try:
        ref = f"{registry.address}/studio/big:1"
        with space.daemon.client() as client:
            images.build(client, ref, size_mb=100, scripts={"train": "echo hi"})
            for line in client.api.push(ref.rsplit(":", 1)[0], tag="1", stream=True, decode=True):
                assert "error" not in line, line
        with small.client() as client:
            images.build(client, "studio/idle:1", size_mb=5)
        kernel = Kernel(full, hermetic_env, tmp_path / "kernel-env")
        raised = kernel.fit(ref)
        assert raised["type"] == "RuntimeError" and raised["notes"][0].startswith("smdiag: disk_full:"), raised
        report = json.loads(smdiag("last-failure", "--json", env=kernel.env).stdout)
        assert report["category"] == "disk_full" and "no space left on device" in report["summary"], report
        assert report["hint"] == catalog.STUDIO_DISK_FULL_HINT and "bootstrap" not in report["hint"]

        hidden, env = full.without_data_root(), {**full.env(), "HOME": str(full.home)}
        status = smdiag("diskguard", "status", "--json", env=env, prefix=hidden)
        seen = json.loads(status.stdout)
        assert status.returncode == 1 and seen["engine_full"]["id"] == report["id"] and seen["used_pct"] == 100
        assert "reported no space left on device" in seen["measured"]
        done = smdiag("diskguard", "once", "--json", "--min-age", "0s", env=env, prefix=hidden, timeout=300)
        pruned = json.loads(done.stdout)
        assert done.returncode == 0 and ["studio/idle:1"] in [r["names"] for r in pruned["removed"]], pruned
        assert json.loads(smdiag("diskguard", "status", "--json", env=env).stdout)["engine_full"] is None
    finally:
        full.proxy.stop()
        shutil.rmtree(sock_dir, ignore_errors=True)


# ---------------------------------------------------------------------------------- the lifecycle script

STUDIO_ON_START = Path(__file__).resolve().parents[2] / "lifecycle-config" / "studio-on-start.sh"
BUDGET_S = 240


def on_start(space: StudioSpace, env: dict[str, str]) -> tuple[subprocess.CompletedProcess, dict]:
    done = subprocess.run(["bash", str(STUDIO_ON_START)], env=env, capture_output=True, text=True,
                          timeout=BUDGET_S + 60)  # fmt: skip
    lines = (space.home / ".smdiag" / "onstart" / "status.tsv").read_text().splitlines()
    return done, {f[0]: (f[1], f[3]) for f in (line.split("\t") for line in lines if not line.startswith("#"))}


@pytest.mark.xdist_group("installs-the-checkout")  # pip builds inside the checkout: one install at a time
def test_two_starts_install_into_the_home_hook_the_kernels_and_start_one_guard(space, hermetic_env, tmp_path):
    conda = tmp_path / "opt-conda"
    bed.host_packages_venv(conda)  # the image's base environment, with the SageMaker SDK
    state = space.home / ".smdiag"
    env = {**{k: v for k, v in hermetic_env.items() if k != "SMDIAG_STATE_DIR"}, **space.env(),
           "SMDIAG_HOME": str(space.home), "SMDIAG_SOURCE": str(STUDIO_ON_START.parents[1]),
           "SMDIAG_PYTHON": sys.executable, "SMDIAG_CONDA_ENVS": str(conda)}  # fmt: skip
    try:
        first, steps = on_start(space, env)
        assert first.returncode == 0, first.stdout + first.stderr
        assert {step: state for step, (state, _) in steps.items()} == {
            "install": "ok", "link": "ok", "kernels": "ok", "guard": "ok"
        }, steps  # fmt: skip
        assert "| install: ok in " in first.stdout and steps["install"][1].startswith("installed smdiag")
        link = space.home / ".local" / "bin" / "smdiag"
        assert os.readlink(link) == str(state / "venv" / "bin" / "smdiag")
        assert (state / "venv").resolve().is_relative_to(space.home)
        assert [p.name for p in conda.glob("lib/*/site-packages/smdiag*.pth")] == [kernels.PTH_NAME]
        probe = "import sys; print('smdiag_kernel_hook' in sys.modules)"
        hooked = subprocess.run([str(conda / "bin" / "python"), "-c", probe], env={**env, "PATH": os.environ["PATH"]},
                                capture_output=True, text=True)  # fmt: skip
        assert hooked.stdout.strip() == "True", hooked.stderr
        guard = guard_pid(StateDir(state))
        assert guard and psutil.pid_exists(guard)

        kept = {
            str(p): p.stat().st_mtime_ns
            for p in [*state.glob("kernel-hook/*.*"), *conda.glob("lib/*/site-packages/*.pth")]
        }
        second, steps = on_start(space, env)
        assert second.returncode == 0, second.stdout + second.stderr
        assert steps["install"][1].startswith("unchanged") and "already running" in steps["guard"][1], steps
        assert {
            str(p): p.stat().st_mtime_ns
            for p in [*state.glob("kernel-hook/*.*"), *conda.glob("lib/*/site-packages/*.pth")]
        } == kept
        assert guard_pid(StateDir(state)) == guard
    finally:
        started = guard_pid(StateDir(state))
        if started and started > 0:
            with contextlib.suppress(psutil.Error):
                psutil.Process(started).terminate()
                psutil.Process(started).wait(30)
