"""`smdiag fix` and `smdiag doctor --fix` on the bed: each failure provoked for real with SageMaker SDK v2 in
local mode (the wrapper on), repaired by the real CLI, and the same call run again.

Compose v2+ is not packaged here: it is stood in for at its real interface, a Docker CLI plugin in a
temporary `$DOCKER_CONFIG/cli-plugins/docker-compose` that says it is v5.0.1 and hands the work to
docker-compose 1.29 by its absolute path (../shared/TESTBED.md, "Compose v2+ stand-in")."""

from __future__ import annotations

import json
import os
import pty
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from testbed import bed

pytestmark = pytest.mark.bed

ROLE = "arn:aws:iam::111111111111:role/dummy"
PROGRAM = textwrap.dedent(
    """
    import json, os, sys
    import agent.autowrap
    from sagemaker.local import LocalSession
    session = LocalSession(sagemaker_config={"SchemaVersion": "1.0",
        "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}})
    local = {**(session.config or {}).get("local", {}), "local_code": True, "serving_port": int(sys.argv[3])}
    session.config = {**(session.config or {}), "local": local}  # ~/.sagemaker/config.yaml's settings kept
    kind, image = sys.argv[1], sys.argv[2]
    try:
        if kind == "fit":
            from sagemaker.estimator import Estimator
            Estimator(image_uri=image, role=ROLE, instance_count=1, instance_type="local",
                      sagemaker_session=session).fit()
        else:  # deploy, and leave the endpoint running as users do
            from sagemaker.model import Model
            Model(image_uri=image, model_data="file://" + sys.argv[4], role=ROLE, sagemaker_session=session,
                  code_location="s3://unused-bucket/code").deploy(initial_instance_count=1, instance_type="local")
    except Exception as exc:
        print(json.dumps({"type": type(exc).__name__, "message": str(exc), "notes": getattr(exc, "__notes__", [])}))
        sys.exit(3)
    print(json.dumps({"ok": True}), flush=True)
    os._exit(0)  # as a kernel that is shut down: the SDK's serving thread is not joined, its endpoint stays up
    """
).replace("ROLE", repr(ROLE))
PLUGIN = """#!/bin/sh
# Stand-in for Docker Compose v5 (Debian 12 packages no Compose v2+), at Docker's CLI plugin interface.
if [ "$1" = docker-cli-plugin-metadata ]; then
    echo '{"SchemaVersion":"0.1.0","Vendor":"smdiag tests","Version":"v5.0.1","ShortDescription":"Docker Compose"}'
    exit 0
fi
shift
if [ "$1" = version ]; then echo "Docker Compose version v5.0.1"; exit 0; fi
exec /usr/bin/docker-compose "$@"
"""


class User:
    """A notebook user's session: a PATH, a Docker config, and the program run under them."""

    def __init__(self, tmp_path: Path, hermetic_env: dict, host: str, path: str, docker_config: Path | None) -> None:
        self.tmp_path = tmp_path
        self.program = tmp_path / "user_program.py"
        self.program.write_text(PROGRAM)
        self.env = {**hermetic_env, "DOCKER_HOST": host, "AWS_DEFAULT_REGION": "us-east-1", "PATH": path,
                    "SAGEMAKER_SUPPRESS_V2_WARNING": "1", "HOME": str(tmp_path)}  # fmt: skip
        if docker_config is not None:
            self.env["DOCKER_CONFIG"] = str(docker_config)
        self.state = Path(hermetic_env["SMDIAG_STATE_DIR"])

    def run(self, kind: str, image: str, *extra: str, port: int = 8080, timeout: float = 300) -> dict:
        done = subprocess.run(
            [sys.executable, str(self.program), kind, image, str(port), *extra],
            env=self.env, capture_output=True, text=True, timeout=timeout, cwd=self.tmp_path,
        )  # fmt: skip
        assert done.stdout.strip(), done.stderr[-3000:]
        last = done.stdout.strip().splitlines()[-1]
        return json.loads(last[last.index("{") :])  # after the SDK's "!" of a deploy's progress

    def reports(self) -> list[dict]:
        found = sorted((self.state / "failures").glob("*/report.json")) if (self.state / "failures").exists() else []
        return [json.loads(p.read_text()) for p in found]

    def smdiag(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "agent", *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )


def tools_dir(tmp_path: Path) -> Path:
    """A PATH entry with the docker CLI and nothing else: no docker-compose anywhere on the user's PATH."""
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "docker").symlink_to(shutil.which("docker"))
    return tools


def compose_v5_plugin(tmp_path: Path) -> Path:
    config = tmp_path / "docker-config"
    (config / "cli-plugins").mkdir(parents=True)
    plugin = config / "cli-plugins" / "docker-compose"
    plugin.write_text(PLUGIN)
    plugin.chmod(0o755)
    return config


def train_image(images, daemon, tag: str = "smdiag-test/fix-train:1") -> str:
    with daemon.client() as client:
        images.build(client, tag, scripts={"train": "echo trained", "serve": "echo serving; exec sleep 600"})
    return tag


def inventory(daemon) -> dict:
    with daemon.client() as client:
        return {
            "containers": sorted((c.name, c.status) for c in client.containers.list(all=True)),
            "networks": sorted((n.name, n.id) for n in client.networks.list()),
            "images": sorted(i.id for i in client.images.list(all=True)),
        }


def files(directory: Path) -> dict:
    return {str(p): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def result(done: subprocess.CompletedProcess) -> dict:
    assert done.stdout.strip(), done.stderr
    return json.loads(done.stdout)


# ---------------------------------------------------------------------------------------------- compose v5


@pytest.fixture
def compose_v5(tmp_path, hermetic_env, make_engine, images):
    """A user whose Docker has only a Compose v5 plugin; the shim's directory is on PATH, empty."""
    daemon, _disk = make_engine()
    image = train_image(images, daemon)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    path = f"{tools_dir(tmp_path)}:{bin_dir}"
    user = User(tmp_path, hermetic_env, daemon.host, path, compose_v5_plugin(tmp_path))
    user.env["SMDIAG_BIN_DIR"] = str(bin_dir)
    return user, image, bin_dir, daemon


def test_compose_v5_goes_from_import_error_to_a_fit_with_one_fix(compose_v5):
    user, image, bin_dir, daemon = compose_v5
    raised = user.run("fit", image)
    assert raised["type"] == "ImportError" and "Docker Compose is not installed" in raised["message"]
    [report] = user.reports()
    assert report["category"] == "compose_unrecognised" and "v5.0.1" in report["summary"]
    assert report["remedy"] == {"name": "compose_shim"}
    assert "smdiag fix" in report["hint"] and "run `smdiag fix`" in raised["notes"][0]

    before = (inventory(daemon), files(bin_dir))
    dry = user.smdiag("fix", "--last", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    planned = result(dry)
    assert planned["remedy"] == "compose_shim" and planned["verified"] is False
    assert [(a["kind"], a["target"], a["done"]) for a in planned["actions"]] == [
        ("write_shim", str(bin_dir / "docker-compose"), False)
    ]
    assert (inventory(daemon), files(bin_dir)) == before

    done = user.smdiag("fix", "--yes", "--json")
    fixed = result(done)
    assert done.returncode == 0, done.stderr
    assert fixed["report"] == report["id"] and fixed["category"] == "compose_unrecognised"
    assert fixed["verified"] is True and fixed["actions"][0]["done"] is True
    assert "docker-compose" in fixed["detail"] and "v5.0.1" in fixed["detail"]
    shim = bin_dir / "docker-compose"
    assert os.access(shim, os.X_OK) and 'exec docker compose "$@"' in shim.read_text()

    assert user.run("fit", image) == {"ok": True}

    # Again: nothing to change, still verified, the shim untouched.
    stamp = shim.stat().st_mtime_ns
    again = user.smdiag("fix", "--yes", "--json")
    assert again.returncode == 0 and result(again)["actions"] == [] and result(again)["verified"] is True
    assert shim.stat().st_mtime_ns == stamp

    undone = user.smdiag("fix", "--undo", "--json")
    assert undone.returncode == 0, undone.stderr
    assert result(undone)["undone"] == [f"removed {shim}"] and not shim.exists()


def test_the_shim_never_replaces_a_foreign_docker_compose_nor_goes_where_path_does_not_look(compose_v5, tmp_path):
    user, image, bin_dir, _daemon = compose_v5
    assert user.run("fit", image)["type"] == "ImportError"
    elsewhere = tmp_path / "not-on-path"
    elsewhere.mkdir()
    foreign = elsewhere / "docker-compose"
    foreign.write_text("#!/bin/sh\necho 'a docker-compose of someone else'\n")
    done = user.smdiag("fix", "--yes", "--json", "--bin-dir", str(elsewhere))
    assert done.returncode == 1 and "is not smdiag's shim" in result(done)["blocked"]
    assert foreign.read_text() == "#!/bin/sh\necho 'a docker-compose of someone else'\n"

    foreign.unlink()
    done = user.smdiag("fix", "--yes", "--json", "--bin-dir", str(elsewhere))
    assert done.returncode == 1 and "is not on PATH" in result(done)["blocked"]
    assert list(elsewhere.iterdir()) == [] and list(bin_dir.iterdir()) == []

    relative = user.smdiag("fix", "--yes", "--bin-dir", "bin")
    assert relative.returncode == 2 and "not an absolute path" in relative.stderr


def test_doctor_fix_only_compose_applies_the_shim_as_on_start_does(compose_v5):
    user, image, bin_dir, _daemon = compose_v5
    before = result(user.smdiag("doctor", "--json"))
    assert any(p["check"] == "compose" for p in before["problems"])
    done = user.smdiag("doctor", "--fix", "--only", "compose", "--yes", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    [applied] = result(done)["remedies"]
    assert applied["remedy"] == "compose_shim" and applied["verified"] is True
    assert result(done)["problems"] == []
    assert (bin_dir / "docker-compose").exists()
    assert user.run("fit", image) == {"ok": True}


def on_terminal(user: User, answer: str, *args: str) -> tuple[int, str]:
    """`smdiag *args` with a terminal on stdin and stderr (where it asks), answering `answer`."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "agent", *args], env=user.env, stdin=slave,
                            stdout=subprocess.PIPE, stderr=slave, text=True)  # fmt: skip
    os.close(slave)
    os.write(master, answer.encode())
    try:
        out, _ = proc.communicate(timeout=180)
    finally:
        os.close(master)
    return proc.returncode, out


def test_on_a_terminal_fix_asks_first_and_a_no_changes_nothing(compose_v5):
    user, image, bin_dir, _daemon = compose_v5
    user.run("fit", image)
    code, out = on_terminal(user, "n\n", "fix")
    assert code == 1 and "not confirmed: nothing changed" in out and list(bin_dir.iterdir()) == []
    code, out = on_terminal(user, "y\n", "fix")
    assert code == 0 and "verified" in out and (bin_dir / "docker-compose").exists(), out


def test_without_a_terminal_fix_asks_for_yes_and_changes_nothing(compose_v5):
    user, image, bin_dir, _daemon = compose_v5
    user.run("fit", image)
    done = user.smdiag("fix")
    assert done.returncode == 2 and "--yes" in done.stderr and list(bin_dir.iterdir()) == []
    unknown = user.smdiag("fix", "20991231T000000Z-000000", "--yes")
    assert unknown.returncode == 2 and "no failure report" in unknown.stderr


# ---------------------------------------------------------------------------------------------- network


def test_a_stale_sagemaker_local_network_is_removed_when_unused_and_named_when_used(
    tmp_path, hermetic_env, make_engine, images
):
    daemon, _disk = make_engine()
    image = train_image(images, daemon)
    with daemon.client() as client:
        stale = client.networks.create("sagemaker-local", driver="bridge",
                                       options={"com.docker.network.driver.mtu": "1400"})  # fmt: skip
    user = User(tmp_path, hermetic_env, daemon.host, os.environ["PATH"], None)
    raised = user.run("fit", image)
    assert raised["type"] == "RuntimeError", raised
    report = user.reports()[-1]
    assert report["category"] == "network_conflict", report["summary"]
    assert report["remedy"] == {"name": "stale_network"}
    assert "sagemaker-local" in report["summary"] and "smdiag fix" in report["hint"]

    # In use by a container that is not local mode's: named, not touched, not fixed.
    with daemon.client() as client:
        bystander = client.containers.create(image, ["sleep", "600"], name="bystander", network="sagemaker-local")
    before = inventory(daemon)
    blocked = user.smdiag("fix", "--yes", "--json")
    assert blocked.returncode == 1 and "bystander" in result(blocked)["blocked"]
    assert inventory(daemon) == before
    dry = user.smdiag("fix", "--dry-run", "--json")
    assert inventory(daemon) == before and dry.returncode == 1

    with daemon.client() as client:
        client.containers.get(bystander.id).remove()
    before = inventory(daemon)
    dry = user.smdiag("fix", "--dry-run", "--json")
    assert dry.returncode == 0 and [a["kind"] for a in result(dry)["actions"]] == ["remove_network"]
    assert inventory(daemon) == before

    done = user.smdiag("fix", "--yes", "--json")
    assert done.returncode == 0 and result(done)["verified"] is True, done.stdout + done.stderr
    with daemon.client() as client:
        assert stale.id not in [n.id for n in client.networks.list()]
    assert user.run("fit", image) == {"ok": True}

    # doctor --fix leaves the network Compose made for that fit alone, and removes a hand-made one, which the
    # fit's stopped container (the SDK never removes its containers) does not hold.
    with daemon.client() as client:
        made_by_compose = client.networks.get("sagemaker-local").id
    done = user.smdiag("doctor", "--fix", "--only", "network", "--yes", "--json")
    assert done.returncode == 0 and result(done)["remedies"] == [], done.stdout + done.stderr
    with daemon.client() as client:
        assert client.networks.get("sagemaker-local").id == made_by_compose
        client.networks.get(made_by_compose).remove()
        by_hand = client.networks.create("sagemaker-local", driver="bridge").id
    done = user.smdiag("doctor", "--fix", "--only", "network", "--yes", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    [applied] = result(done)["remedies"]
    assert applied["verified"] and "no label" in applied["actions"][0]["detail"]
    with daemon.client() as client:
        assert by_hand not in [n.id for n in client.networks.list()]


# ---------------------------------------------------------------------------------------------- engine


def test_a_stopped_engine_is_started_and_the_fit_then_runs(tmp_path, hermetic_env, make_engine, images):
    daemon, _disk = make_engine()
    image = train_image(images, daemon)
    daemon.kill()
    user = User(tmp_path, hermetic_env, daemon.host, os.environ["PATH"], None)
    assert user.run("fit", image)["type"] in ("RuntimeError", "DockerException", "CalledProcessError")
    report = user.reports()[-1]
    assert report["category"] == "daemon_down" and report["remedy"] == {"name": "start_engine"}

    dry = user.smdiag("fix", "--dry-run", "--json", "--start-cmd", daemon.start_command())
    assert dry.returncode == 0 and [a["kind"] for a in result(dry)["actions"]] == ["start_engine"]
    assert not bed.bed_answers(daemon)

    done = user.smdiag("fix", "--yes", "--json", "--start-cmd", daemon.start_command())
    assert done.returncode == 0, done.stdout + done.stderr
    assert result(done)["verified"] is True and bed.bed_answers(daemon)
    assert user.run("fit", image) == {"ok": True}

    # doctor --fix finds the same without a report.
    daemon.stop()
    done = user.smdiag("doctor", "--fix", "--only", "engine", "--yes", "--start-cmd", daemon.start_command(), "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert [r["remedy"] for r in result(done)["remedies"]] == ["start_engine"] and bed.bed_answers(daemon)


def test_doctor_fix_does_not_start_docker_for_a_socket_that_refuses_us(smdiag, make_engine, tmp_path):
    """Permission denied on the socket (here root without the capability to bypass file permissions): doctor's
    finding names no remedy, the docker group is the fix, and doctor --fix starts nothing."""
    daemon, _disk = make_engine(size_mb=300)
    daemon.socket.chmod(0)
    started = tmp_path / "started"
    no_bypass = "-dac_override,-dac_read_search"
    done = smdiag("doctor", "--fix", "--only", "engine", "--yes", "--start-cmd", f"touch {started}", "--json",
                  env={"DOCKER_HOST": daemon.host},
                  prefix=("setpriv", f"--bounding-set={no_bypass}", f"--inh-caps={no_bypass}"))  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    [problem] = result(done)["problems"]
    assert problem["check"] == "engine" and problem["problem"].endswith(": Permission denied")
    assert problem["remedy"] is None and result(done)["remedies"] == [] and not started.exists()


def test_a_cause_without_an_automatic_remedy_is_exit_3_with_its_hint(tmp_path, hermetic_env, make_engine, images):
    daemon, _disk = make_engine()
    with daemon.client() as client:
        images.build(client, "smdiag-test/fix-broken:1", scripts={"train": bed.BROKEN_TRAIN_SCRIPT})
    user = User(tmp_path, hermetic_env, daemon.host, os.environ["PATH"], None)
    raised = user.run("fit", "smdiag-test/fix-broken:1")
    assert raised["type"] == "RuntimeError" and "smdiag fix" not in raised["notes"][0]
    assert user.reports()[-1]["remedy"] is None
    before = inventory(daemon)
    done = user.smdiag("fix", "--yes", "--json")
    assert done.returncode == 3 and result(done)["remedy"] is None and result(done)["category"] == "script_error"
    assert "fix it at the file and line shown" in result(done)["hint"] and inventory(daemon) == before
    text = user.smdiag("fix", "--yes")
    assert text.returncode == 3 and "no automatic remedy" in text.stdout and "train.py, line 3" in text.stdout
    assert "doctor --fix" not in text.stdout and result(done)["doctor_fix"] is None  # doctor has nothing to repair
    asked = user.smdiag("fix")  # no terminal, no --yes: nothing to repair, so nothing to ask
    assert asked.returncode == 3 and "no automatic remedy" in asked.stdout and "--yes" not in asked.stderr

    # With the engine down, doctor has a remedy to offer, and fix says so.
    daemon.kill()
    text = user.smdiag("fix", "--yes")
    assert text.returncode == 3 and "train.py, line 3" in text.stdout
    assert text.stdout.splitlines()[-1] == (
        "`sudo smdiag doctor --fix` repairs 1 problem `smdiag doctor` found on this host: Docker engine"
    )


def test_fix_without_a_report_says_how_reports_get_turned_on_and_what_doctor_fix_repairs(smdiag, tmp_path):
    gone = {"DOCKER_HOST": f"unix://{tmp_path}/gone.sock"}
    done = smdiag("fix", "--yes", env=gone)
    assert done.returncode == 1 and done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith("smdiag: no failure has been recorded in ")
    assert "turn failure reports on: `smdiag kernels enable`, then restart the kernel; or, for this session only, " \
           "`%load_ext agent` in the notebook" in line and "autowrap" not in line  # fmt: skip
    assert line.endswith("; meanwhile `sudo smdiag doctor --fix` repairs 1 problem `smdiag doctor` found on this "
                         "host: Docker engine)")  # fmt: skip
    error = result(smdiag("fix", "--yes", "--json", env=gone))
    assert error["ok"] is False and "`sudo smdiag doctor --fix` repairs 1 problem" in error["fix"]
    assert not (tmp_path / "state" / "fix").exists()  # nothing was repaired, nothing journaled


def test_fix_without_a_report_on_a_host_doctor_finds_nothing_to_repair_only_says_how_reports_get_turned_on(
    smdiag, make_engine
):
    daemon, _disk = make_engine(size_mb=300)
    done = smdiag("fix", "--yes", env={"DOCKER_HOST": daemon.host})
    assert done.returncode == 1 and "no failure has been recorded" in done.stderr
    assert "`smdiag kernels enable`, then restart the kernel" in done.stderr and "doctor --fix" not in done.stderr


def test_doctor_fix_dry_run_says_nothing_changed_and_changes_nothing(smdiag, tmp_path):
    """The engine is down: doctor --fix would start it; dry, it says how and that nothing changed."""
    started = tmp_path / "started"
    gone = {"DOCKER_HOST": f"unix://{tmp_path}/gone.sock"}
    done = smdiag("doctor", "--fix", "--dry-run", "--start-cmd", f"touch {started}", env=gone)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[:2] == [
        "remedy: start_engine (dry run: nothing changed)",
        f"  [todo] start Docker (`touch {started}`) and wait until it answers",
    ]
    assert "NOT fixed" not in done.stdout and "None" not in done.stdout and not started.exists()
    assert "found, nothing changed (dry run):" in lines and "!! Docker engine: cannot reach the Docker engine at " \
        f"unix://{tmp_path}/gone.sock: No such file or directory" in lines  # fmt: skip
    planned = result(smdiag("doctor", "--fix", "--dry-run", "--start-cmd", f"touch {started}", "--json", env=gone))
    [remedy] = planned["remedies"]
    assert remedy["remedy"] == "start_engine" and remedy["dry_run"] is True and planned["dry_run"] is True


# ---------------------------------------------------------------------------------------------- serving port


SERVE = "mkdir -p /www && echo ok > /www/ping && echo serving && exec httpd -f -p 8080 -h /www"
"""Answers the SDK's GET /ping with 200, as a model server does."""


def test_a_leftover_endpoint_on_the_port_is_removed_and_other_containers_are_left(
    tmp_path, hermetic_env, make_engine, images
):
    daemon, _disk = make_engine()
    image = "smdiag-test/fix-serve:1"
    with daemon.client() as client:
        images.build(client, image, scripts={"serve": SERVE, "train": "echo trained"})
    port = bed.free_port()
    model = str(bed.model_tarball(tmp_path))
    user = User(tmp_path, hermetic_env, daemon.host, os.environ["PATH"], None)
    assert user.run("deploy", image, model, port=port) == {"ok": True}  # the endpoint is left running
    with daemon.client() as client:
        [leftover] = client.containers.list()
        # The old endpoint stops answering /ping (while it does, a new deploy on its port "succeeds" against it).
        assert leftover.exec_run(["rm", "/www/ping"]).exit_code == 0
        unrelated = client.containers.run(image, ["sleep", "600"], name="unrelated", detach=True)

    raised = user.run("deploy", image, model, port=port)
    assert raised["type"] == "RuntimeError"
    report = user.reports()[-1]
    assert report["category"] == "port_in_use", report["summary"]
    assert report["remedy"] == {"name": "leftover_containers", "port": port}  # the port the engine could not bind
    assert "run `smdiag fix`" in raised["notes"][0]

    before = inventory(daemon)
    dry = user.smdiag("fix", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert [(a["kind"], a["target"]) for a in result(dry)["actions"]] == [("remove_container", leftover.name)]
    assert inventory(daemon) == before

    done = user.smdiag("fix", "--yes", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert result(done)["verified"] is True and f"port {port} is free" in result(done)["detail"]
    with daemon.client() as client:
        names = {c.name for c in client.containers.list(all=True)}
    assert leftover.name not in names and unrelated.name in names
    own = [c["name"] for c in report["containers"]]
    assert own and set(own) <= names  # the failing call's own container is evidence: kept
    assert (user.state / "fix" / "logs" / f"{leftover.name}.log").read_text().startswith("serving")
    assert user.run("deploy", image, model, port=port) == {"ok": True}


# ---------------------------------------------------------------------------------------------- disk


def test_a_pull_into_a_full_data_root_gets_its_room_and_then_runs(
    tmp_path, hermetic_env, make_engine, images, registry
):
    builder, _ = make_engine()
    daemon, disk = make_engine(size_mb=700)
    ref = f"{registry.address}/fix/big:1"
    with builder.client() as client:
        images.build(client, ref, size_mb=100, scripts={"train": "echo trained"})
        for line in client.api.push(ref.rsplit(":", 1)[0], tag="1", stream=True, decode=True):
            assert "error" not in line
    with daemon.client() as client:
        for n in (1, 2):
            images.build(client, f"smdiag-test/unused-{n}:1", size_mb=140)
    disk.fill(leave_mb=150)
    user = User(tmp_path, hermetic_env, daemon.host, os.environ["PATH"], None)
    assert user.run("fit", ref)["type"] == "RuntimeError"
    report = user.reports()[-1]
    assert report["category"] == "disk_full" and "smdiag fix" in report["hint"]
    assert report["remedy"] == {"name": "free_disk"}

    done = user.smdiag("fix", "--yes", "--json", "--min-age", "0s")
    assert done.returncode == 0, done.stdout + done.stderr
    fixed = result(done)
    assert fixed["remedy"] == "free_disk" and fixed["verified"] is True
    said = re.match(r"freed ([\d.]+) MiB for ", fixed["actions"][0]["result"])
    assert said and float(said.group(1)) >= 200, fixed["actions"]  # the two unused images, 140 MiB each
    with daemon.client() as client:
        assert not [t for i in client.images.list() for t in i.tags if t.startswith("smdiag-test/unused-")]
    assert user.run("fit", ref) == {"ok": True}


def test_local_modes_files_filling_a_small_tmp_move_to_the_ebs_volume_and_back_on_undo(
    tmp_path, hermetic_env, make_engine, make_disk, images
):
    daemon, _disk = make_engine()
    image = "smdiag-test/fix-big-model:1"
    with daemon.client() as client:
        images.build(client, image, scripts={"train": "dd if=/dev/zero of=/opt/ml/model/weights bs=1M count=40"})
    small_tmp, ebs = make_disk("tmp", 32), make_disk("ebs", 300)
    user = User(tmp_path, hermetic_env, daemon.host, os.environ["PATH"], None)
    config = tmp_path / ".sagemaker" / "config.yaml"
    user.env.update(TMPDIR=str(small_tmp.path), SMDIAG_EBS_MOUNT=str(ebs.path), SMDIAG_SAGEMAKER_CONFIG=str(config))
    raised = user.run("fit", image)
    report = user.reports()[-1]
    assert report["category"] == "container_root_full", (raised, report["summary"])
    assert {d["role"]: d["path"] for d in report["disks"]}["container_root"] == str(small_tmp.path)
    assert report["remedy"] == {"name": "container_root"}

    done = user.smdiag("fix", "--yes", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert result(done)["remedy"] == "container_root" and result(done)["verified"] is True
    assert yaml.safe_load(config.read_text()) == {"local": {"container_root": str(ebs.path / ".sagemaker-local")}}
    assert user.run("fit", image) == {"ok": True}
    assert any((ebs.path / ".sagemaker-local").iterdir())  # local mode works there now

    undone = user.smdiag("fix", "--undo", "--json")
    assert undone.returncode == 0 and not config.exists(), undone.stdout + undone.stderr
