"""The local-mode failures users hit (../shared/FAILURES.md's table), each reproduced on the bed with the
real SageMaker SDK v2 and the wrapper on: one entry per case, shared by tests/bed/test_real_failures.py and
bench/diagnosis.py, so the test and the benchmark judge the same reproduction.

A case sets up what its thread's user had (an image, a registry, a full disk, a Compose, a PATH), runs a
user program in its own interpreter with `import agent.autowrap`, and returns what the user got: the SDK's
exception, smdiag's report, and how long after the exception the report was on disk.
"""

from __future__ import annotations

import contextlib
import crypt
import json
import os
import shutil
import subprocess
import sys
import textwrap
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from testbed import bed

ROLE = "arn:aws:iam::111111111111:role/dummy"
REGION = "us-east-1"
REPO = Path(__file__).resolve().parent.parent
USER_PROGRAM_TIMEOUT_S = 400
USER_UID = 1000
CACHE = Path(os.environ.get("SMDIAG_TEST_CACHE", "/var/cache/smdiag-test"))
USER_PACKAGES = ("sagemaker==2.257.7", "psutil>=5.9", "docker>=7.0", "typer>=0.12", "structlog>=24.1", "rich>=13",
                 "boto3>=1.34", "pyyaml>=6")  # fmt: skip
"""The SDK (the version of the main environment) and smdiag's dependencies, for a user who is not root."""

USER_PROGRAM = textwrap.dedent(
    """
    import json, os, sys, time
    import agent.autowrap
    import sagemaker
    from sagemaker.local import LocalSession

    spec, result_path = json.loads(sys.argv[1]), sys.argv[2]
    ROLE, CODE = "ROLE_ARN", "s3://unused-bucket/code"
    session = LocalSession(sagemaker_config={"SchemaVersion": "1.0",
        "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}})
    local = {k: os.path.expandvars(v) if isinstance(v, str) else v for k, v in spec.get("local", {}).items()}
    session.config = {"local": {"local_code": True, **local}}
    image, kind = spec.get("image"), spec["kind"]

    # When the SDK raised: the first moment an exception passes through one of the SDK's frames (a tracer
    # without line events; installed after the imports, so they run at full speed).
    SDK, seen = os.path.dirname(sagemaker.__file__), {}
    def in_sdk_frame(frame, event, arg):
        if event == "exception" and id(arg[1]) not in seen:
            seen[id(arg[1])] = (arg[1], time.time())
        return in_sdk_frame
    def tracer(frame, event, arg):
        if frame.f_code.co_filename.startswith(SDK):
            frame.f_trace_lines = False
            return in_sdk_frame
        return None

    from sagemaker.estimator import Estimator
    from sagemaker.model import Model
    from sagemaker.processing import ScriptProcessor
    sys.settrace(tracer)
    try:
        if kind == "fit":
            Estimator(image_uri=image, role=ROLE, instance_count=1, instance_type="local",
                      sagemaker_session=session).fit()
        elif kind == "deploy":
            Model(image_uri=image, model_data="file://" + spec["model"], role=ROLE, sagemaker_session=session,
                  code_location=CODE).deploy(initial_instance_count=1, instance_type="local")
        elif kind == "transform":
            Model(image_uri=image, model_data="file://" + spec["model"], role=ROLE, sagemaker_session=session,
                  code_location=CODE).transformer(1, "local", output_path="file://" + spec["output"]).transform(
                      "file://" + spec["data"], content_type="text/csv")
        elif kind == "process":
            ScriptProcessor(command=["sh"], image_uri=image, role=ROLE, instance_count=1, instance_type="local",
                            sagemaker_session=session).run(code=spec["code"])
        elif kind == "execution_role":  # not a wrapped call: the user asks for the explanation explicitly
            with agent.autowrap.explained("get_execution_role"):
                sagemaker.get_execution_role(sagemaker_session=session)
    except Exception as exc:
        sys.settrace(None)
        raised_at = seen.get(id(exc), (None, None))[1]
        result = {"type": type(exc).__name__, "message": str(exc)[:500], "notes": getattr(exc, "__notes__", []),
                  "raised_at": raised_at}
    else:
        sys.settrace(None)
        result = {"type": None}
    with open(result_path, "w") as f:
        json.dump(result, f)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # a failed transform leaves the SDK's serving thread waiting on its container: do not join it
    """
).replace("ROLE_ARN", ROLE)


@dataclass
class Outcome:
    """What the user got: the SDK's exception as raised (type, message, smdiag's note), the report smdiag
    stored (None: no report), and seconds from the exception to the report on disk."""

    raised: dict
    report: dict | None
    latency_s: float | None
    output: str
    """What the user saw: the SDK's and the containers' output, then smdiag's note."""


@dataclass(frozen=True)
class Case:
    id: str
    source: str
    cause: str
    """The cause the thread established, in a user's words."""
    category: str
    evidence: str
    """A piece of the line that proves it: the summary must quote it."""
    fix: str
    """A word of the fix: the hint must name it."""
    reproduce: Callable[[Bed], Outcome]


class Bed:
    """The bed the cases share, each part made on first use and torn down by `close()`: one engine on a
    loop disk (the cases' images built once into it), the registry, the images' workdir, moto."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.stack = contextlib.ExitStack()
        self._engine: bed.Dockerd | None = None
        self._registry: bed.Registry | None = None
        self._moto: bed.MotoProxy | None = None
        self.factory = bed.ImageFactory(workdir / "images")
        self.built: set[tuple[str, str]] = set()

    def close(self) -> None:
        self.stack.close()

    @property
    def engine(self) -> bed.Dockerd:
        if self._engine is None:
            self._engine, _disk = self.stack.enter_context(bed.engine_on_disk(self.dir("shared-engine"), 1024))
        return self._engine

    @property
    def registry(self) -> bed.Registry:
        if self._registry is None:
            self._registry = bed.Registry(self.dir("registry")).start()
            self.stack.callback(self._registry.stop)
        return self._registry

    @property
    def moto(self) -> bed.MotoProxy:
        if self._moto is None:
            self._moto = bed.MotoProxy(CACHE).start()
            self.stack.callback(self._moto.stop)
        return self._moto

    def aws(self) -> dict[str, str]:
        """An environment whose AWS is moto (its STS caller is a user, as on a laptop with access keys)."""
        return self.moto.env()

    def dir(self, name: str) -> Path:
        path = self.workdir / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def image(self, tag: str, daemon: bed.Dockerd | None = None, **build) -> str:
        """`tag` built once per engine (the build cache makes a rebuild cheap anyway)."""
        daemon = daemon or self.engine
        if (daemon.host, tag) not in self.built:
            with daemon.client() as client:
                self.factory.build(client, tag, **build)
            self.built.add((daemon.host, tag))
        return tag

    def engine_with(self, name: str, size_mb: int = 1024, extra_args: tuple[str, ...] = ()) -> bed.Dockerd:
        """A case's own engine (a small disk, a memory limit), stopped at `close()`."""
        disk = bed.LoopDisk(self.dir(name), "disk", size_mb).mount()
        self.stack.callback(disk.unmount)
        daemon = bed.Dockerd(disk.path / "docker", extra_args=extra_args)
        self.stack.callback(daemon.cleanup)
        return daemon.start()

    def path_without(self, name: str, *tools: str) -> str:
        """A PATH that has every program of this machine but `tools` (Debian's /bin is /usr/bin, so a PATH
        cannot simply leave a directory out): one directory of links."""
        links = self.dir(name)
        for directory in reversed(os.environ.get("PATH", "/usr/bin").split(os.pathsep)):
            with contextlib.suppress(OSError):
                for entry in os.scandir(directory):
                    target = links / entry.name
                    if entry.name not in tools and not target.is_symlink():
                        target.symlink_to(entry.path)
        return str(links)

    def compose_plugin(self, name: str, version: str) -> str:
        """A DOCKER_CONFIG whose `docker compose` is the stand-in of TESTBED.md: Compose v2+ at its real
        interface (a CLI plugin), reporting `version`, running docker-compose 1.29 for everything else."""
        config = self.dir(name)
        plugin = config / "cli-plugins" / "docker-compose"
        plugin.parent.mkdir(exist_ok=True)
        metadata = {"SchemaVersion": "0.1.0", "Vendor": "smdiag test bed", "Version": version,
                    "ShortDescription": "Docker Compose"}  # fmt: skip
        plugin.write_text(
            "#!/bin/sh\n"
            f"[ \"$1\" = docker-cli-plugin-metadata ] && {{ echo '{json.dumps(metadata)}'; exit 0; }}\n"
            "shift\n"
            f'[ "$1" = version ] && {{ echo "Docker Compose version {version}"; exit 0; }}\n'
            'exec /usr/bin/docker-compose "$@"\n'
        )
        plugin.chmod(0o755)
        return str(config)

    def run_user(self, case: str, spec: dict, env: dict | None = None, uid: int | None = None) -> Outcome:
        """The user program in its own interpreter, with a state dir of its own (the case's report only);
        with `uid`, as that ordinary user, with the system's Python and the SDK from USER_PACKAGES."""
        home, prefix, python = self.dir(f"cases/{case}"), [], sys.executable
        if uid is not None:
            home = bed.short_tempdir("smcase-")  # the test's own directories are root's alone
            self.stack.callback(shutil.rmtree, home, ignore_errors=True)
            os.chown(home, uid, uid)
            prefix = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
            python = str(user_venv(home / "venv") / "bin" / "python")
        program = home / "user_program.py"
        program.write_text(USER_PROGRAM)
        result = home / "result.json"
        result.unlink(missing_ok=True)
        full_env = {
            **bed.hermetic_environment(home),
            "DOCKER_HOST": self.engine.host,
            "AWS_DEFAULT_REGION": REGION,
            "SAGEMAKER_SUPPRESS_V2_WARNING": "1",
            "HOME": str(home),
            **(env or {}),
        }
        done = subprocess.run(
            [*prefix, python, str(program), json.dumps(spec), str(result)],
            env=full_env, capture_output=True, text=True, timeout=USER_PROGRAM_TIMEOUT_S, cwd=home,
        )  # fmt: skip
        raised = json.loads(result.read_text()) if result.exists() else {"type": "crashed", "stderr": done.stderr}
        reports = sorted((home / "state" / "failures").glob("*/report.json"))
        report = json.loads(reports[-1].read_text()) if reports else None
        latency = None
        if reports and raised.get("raised_at"):
            latency = reports[-1].stat().st_mtime - raised["raised_at"]
        return Outcome(raised, report, latency, done.stdout + done.stderr)


def user_venv(path: Path) -> Path:
    """A virtual environment of the system's Python that sees the SDK and smdiag through a path entry, not
    PYTHONPATH: the SDK's `docker-compose` (Debian's, in Python) must not import our docker-py."""
    subprocess.run(["/usr/bin/python3.11", "-m", "venv", "--without-pip", str(path)], check=True)
    site = next(path.glob("lib/python3.*/site-packages"))
    (site / "user-packages.pth").write_text(f"{bed.cached_packages_dir(CACHE, USER_PACKAGES)}\n{REPO}\n")
    return path


# ------------------------------------------------------------------------------------------------ cases


def pull_nospace(b: Bed) -> Outcome:
    ref = f"{b.registry.address}/failures/big:1"
    if ("pushed", ref) not in b.built:
        b.image(ref, size_mb=100, scripts={"train": "echo hi"})
        with b.engine.client() as client:
            for line in client.api.push(ref.rsplit(":", 1)[0], tag="1", stream=True, decode=True):
                assert "error" not in line, line
        b.built.add(("pushed", ref))
    small = b.engine_with("small-root", size_mb=150)
    return b.run_user("pull-nospace", {"kind": "fit", "image": ref}, {"DOCKER_HOST": small.host})


LARGE_RESPONSE_MB = 80
HTTP_HANDLER = r"""read -r method path version
length=0
while read -r line; do
    line=$(printf %s "$line" | tr -d '\r')
    [ -z "$line" ] && break
    case "$line" in [Cc]ontent-[Ll]ength:*) length=${line#*: } ;; esac
done
[ "$length" -gt 0 ] && head -c "$length" >/dev/null
reply() { printf 'HTTP/1.1 %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n' "$1" "$2"; }
case "$path" in
    /ping) reply "200 OK" 0 ;;
    /invocations) reply "200 OK" SIZE; head -c SIZE /dev/zero ;;
    *) reply "404 Not Found" 0 ;;
esac
""".replace("SIZE", str(LARGE_RESPONSE_MB * 1024 * 1024))
"""A model server in busybox sh (one process per connection of `nc -ll`) whose every prediction is large."""


def transform_nospace(b: Bed) -> Outcome:
    """The predictions fill `container_root`, where local batch transform writes them: a 64 MB disk."""
    scripts = {"serve": "exec nc -ll -p 8080 -e /usr/local/bin/handle-request", "handle-request": HTTP_HANDLER}
    image = b.image("smdiag-cases/large-predictions:1", scripts=scripts)
    home = b.dir("cases/transform-nospace")
    root = bed.LoopDisk(b.dir("transform-root"), "root", 64).mount()
    b.stack.callback(root.unmount)
    data = home / "data"
    data.mkdir(exist_ok=True)
    (data / "input.csv").write_text("1,2,3\n")
    spec = {"kind": "transform", "image": image, "model": str(bed.model_tarball(home)), "data": str(data),
            "output": str(home / "output"),
            "local": {"container_root": str(root.path), "serving_port": bed.free_port()}}  # fmt: skip
    return b.run_user("transform-nospace", spec)


def studio_no_docker_cli(b: Bed) -> Outcome:
    home = b.dir("cases/studio-no-docker-cli")
    env = {"PATH": b.path_without("path-no-docker", "docker", "docker-compose"),
           "DOCKER_HOST": f"unix://{home}/docker.sock"}  # fmt: skip
    return b.run_user("studio-no-docker-cli", {"kind": "fit", "image": "smdiag-cases/any:1"}, env)


def engine_down(b: Bed) -> Outcome:
    home = b.dir("cases/engine-down")
    image = "smdiag-cases/any:1"
    return b.run_user("engine-down", {"kind": "fit", "image": image}, {"DOCKER_HOST": f"unix://{home}/docker.sock"})


def without_compose(b: Bed, plugin_version: str | None = None) -> dict:
    env = {"PATH": b.path_without("path-no-compose", "docker-compose")}
    if plugin_version is not None:
        env["DOCKER_CONFIG"] = b.compose_plugin(f"compose-{plugin_version}", plugin_version)
    else:
        env["DOCKER_CONFIG"] = str(b.dir("docker-config-empty"))
    return env


def compose_plugin_only(b: Bed) -> Outcome:
    image = b.image("smdiag-cases/fine:1", scripts={"train": "echo ok"})
    code = b.dir("cases/compose-plugin-only") / "x.sh"
    code.write_text("echo processing\n")
    spec = {"kind": "process", "image": image, "code": str(code)}
    return b.run_user("compose-plugin-only", spec, {**without_compose(b), **b.aws()})  # run() uploads the code


def compose_v5(b: Bed) -> Outcome:
    image = b.image("smdiag-cases/fine:1", scripts={"train": "echo ok"})
    return b.run_user("compose-v5", {"kind": "fit", "image": image}, without_compose(b, "v5.0.1"))


def compose_no_v(b: Bed) -> Outcome:
    image = b.image("smdiag-cases/fine:1", scripts={"train": "echo ok"})
    return b.run_user("compose-no-v", {"kind": "fit", "image": image}, without_compose(b, "2.21.0"))


def compose_missing_deploy(b: Bed) -> Outcome:
    image = b.image("smdiag-cases/fine:1", scripts={"train": "echo ok"})
    model = bed.model_tarball(b.dir("cases/compose-missing-deploy"))
    return b.run_user("compose-missing-deploy", {"kind": "deploy", "image": image, "model": str(model)},
                      without_compose(b))  # fmt: skip


TRAINING_IMAGE_SERVE = """echo "Traceback (most recent call last):" >&2
echo '  File "/usr/local/bin/serve", line 8, in <module>' >&2
echo "    from sagemaker_pytorch_container.serving import main" >&2
echo "ModuleNotFoundError: No module named 'sagemaker_pytorch_container.serving'" >&2
exit 1
"""


def training_image_served(b: Bed) -> Outcome:
    image = b.image("smdiag-cases/training-only:1", scripts={"train": "echo ok", "serve": TRAINING_IMAGE_SERVE})
    model = bed.model_tarball(b.dir("cases/training-image-served"))
    spec = {"kind": "deploy", "image": image, "model": str(model), "local": {"serving_port": bed.free_port()}}
    return b.run_user("training-image-served", spec)


def oom(b: Bed) -> Outcome:
    """Every container of the engine shares 64 MB, as on a Docker Desktop VM too small for the job."""
    group = bed.MemoryLimitedCgroup(64).create()
    b.stack.callback(group.remove)  # after the engine's cleanup (the stack unwinds in reverse)
    daemon = b.engine_with("oom-engine", extra_args=(f"--cgroup-parent=/{group.name}",))
    allocate = 'echo "loading the data set"; x=$(head -c 200000000 /dev/zero | tr "\\0" a); echo done'
    image = b.image("smdiag-cases/hungry:1", daemon=daemon, scripts={"train": allocate})
    return b.run_user("oom", {"kind": "fit", "image": image}, {"DOCKER_HOST": daemon.host})


def ecr_pull_denied(b: Bed) -> Outcome:
    workdir = b.dir("auth-registry")
    htpasswd = workdir / "htpasswd"
    htpasswd.write_text(f"owner:{crypt.crypt('owner-password', crypt.mksalt(crypt.METHOD_BLOWFISH))}\n")
    registry = bed.Registry(workdir, htpasswd=htpasswd).start()
    b.stack.callback(registry.stop)
    return b.run_user("ecr-pull-denied", {"kind": "fit", "image": f"{registry.address}/linear-learner:1"})


IN_CONTAINER_403 = """echo "Downloading sourcedir.tar.gz from s3://my-bucket/job/source/sourcedir.tar.gz"
echo "Traceback (most recent call last):" >&2
echo '  File "/usr/local/lib/python3.6/dist-packages/sagemaker_containers/_files.py", line 117, in s3_download' >&2
echo "    s3.Bucket(bucket).download_file(key, dst)" >&2
echo '  File "/usr/local/lib/python3.6/dist-packages/botocore/client.py", line 661, in _make_api_call' >&2
echo "    raise error_class(parsed_response, operation_name)" >&2
echo "botocore.exceptions.ClientError: An error occurred (403) when calling the HeadObject operation: Forbidden" >&2
exit 1
"""


def in_container_403(b: Bed) -> Outcome:
    image = b.image("smdiag-cases/forbidden:1", scripts={"train": IN_CONTAINER_403})
    return b.run_user("in-container-403", {"kind": "fit", "image": image})


REQUIREMENTS_INSTALL = """echo "Installing module with the following command:"
echo "/usr/bin/python -m pip install -U . -r requirements.txt"
echo "Traceback (most recent call last):" >&2
echo '  File "/usr/local/lib/python3.6/dist-packages/sagemaker_containers/_modules.py", line 101, in install' >&2
echo "    _process.check_error(cmd, _errors.InstallModuleError, cwd=path)" >&2
echo 'sagemaker_containers._errors.InstallModuleError: InstallModuleError:' >&2
echo 'Command "/usr/bin/python -m pip install -U . -r requirements.txt"' >&2
exit 1
"""


def requirements_install(b: Bed) -> Outcome:
    image = b.image("smdiag-cases/requirements:1", scripts={"train": REQUIREMENTS_INSTALL})
    return b.run_user("requirements-install", {"kind": "fit", "image": image})


def exec_format(b: Bed) -> Outcome:
    image = b.image("smdiag-cases/arm64:1", binaries={"train": arm64_busybox()})
    return b.run_user("exec-format", {"kind": "fit", "image": image})


def arm64_busybox() -> Path:
    """Debian's busybox-static for arm64, unpacked (no binfmt here: the kernel cannot run it), kept in the
    test cache; the same version as this machine's amd64 package."""
    version = bed.run("dpkg-query", "-W", "-f", "${Version}", "busybox-static").stdout.split(":", 1)[-1]
    target = CACHE / f"busybox-arm64-{version}"
    if not target.exists():
        deb = f"busybox-static_{version}_arm64.deb"
        work = Path(bed.short_tempdir("smbb-"))
        try:
            with urllib.request.urlopen(f"http://deb.debian.org/debian/pool/main/b/busybox/{deb}", timeout=60) as r:
                (work / deb).write_bytes(r.read())
            bed.run("dpkg-deb", "-x", str(work / deb), str(work / "root"))
            CACHE.mkdir(parents=True, exist_ok=True)
            shutil.copy(work / "root" / "bin" / "busybox", str(target) + ".part")
            os.replace(str(target) + ".part", target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return target


def execution_role(b: Bed) -> Outcome:
    return b.run_user("execution-role", {"kind": "execution_role"}, b.aws())


ROOT_ONLY_OUTPUT = """echo "saving the model"
mkdir -p /opt/ml/model/checkpoints && echo weights > /opt/ml/model/checkpoints/model.pt
chmod 600 /opt/ml/model/checkpoints/model.pt && chmod 700 /opt/ml/model/checkpoints
"""


def cleanup_permission(b: Bed) -> Outcome:
    """The SDK runs as uid 1000 (a notebook's user), the container as root: its 0700 output is not the user's."""
    image = b.image("smdiag-cases/root-output:1", scripts={"train": ROOT_ONLY_OUTPUT})
    b.engine.exec_root.chmod(0o711)  # the engine's socket, open to the user as the docker group would make it
    b.engine.socket.chmod(0o666)
    return b.run_user("cleanup-permission", {"kind": "fit", "image": image, "local": {"container_root": "$HOME"}},
                      uid=USER_UID)  # fmt: skip


USER_SCRIPT = """echo "Invoking user training script."
echo "Traceback (most recent call last):" >&2
echo '  File "train-coach.py", line 12, in <module>' >&2
echo "    graph_manager.improve()" >&2
echo "tensorflow.python.framework.errors_impl.InvalidArgumentError: Cannot assign a device for operation" >&2
echo 'sagemaker_containers._errors.ExecuteUserScriptError: ExecuteUserScriptError:' >&2
echo 'Command "/usr/bin/python train-coach.py --RLCOACH_PRESET preset-cartpole-clippedppo"' >&2
exit 255
"""


def user_script(b: Bed) -> Outcome:
    image = b.image("smdiag-cases/user-script:1", scripts={"train": USER_SCRIPT})
    return b.run_user("user-script", {"kind": "fit", "image": image})


CASES = [
    Case("pull-nospace", "sagemaker-python-sdk#1105", "the engine's data-root disk is full", "disk_full",
         "no space left on device", "bootstrap", pull_nospace),
    Case("transform-nospace", "amazon-sagemaker-local-mode#14", "container_root's disk filled by the model's copy",
         "container_root_full", "no space left on device", "container_root", transform_nospace),
    Case("studio-no-docker-cli", "amazon-sagemaker-mlflow-fargate#3", "no Docker CLI or engine here",
         "docker_missing", "'docker'", "enable Docker access", studio_no_docker_cli),
    Case("engine-down", "sagemaker-python-sdk#137", "the Docker engine is not running", "daemon_down",
         "docker.sock", "start", engine_down),
    Case("compose-plugin-only", "sagemaker-python-sdk#3225", "no Docker Compose installed", "compose_missing",
         "Compose", "docker-compose", compose_plugin_only),
    Case("compose-v5", "sagemaker-python-sdk#5739", 'SDK v2 wants "v2" in the Compose plugin\'s version',
         "compose_unrecognised", "v5.0.1", "docker-compose", compose_v5),
    Case("compose-no-v", "sagemaker-python-sdk#4137", 'SDK v2 wants "v2" in the Compose plugin\'s version',
         "compose_unrecognised", "2.21.0", "docker-compose", compose_no_v),
    Case("compose-missing-deploy", "amazon-sagemaker-local-mode#32", "no Docker Compose installed",
         "compose_missing", "Compose", "docker-compose", compose_missing_deploy),
    Case("training-image-served", "sagemaker-pytorch-training-toolkit#139", "a training image used for serving",
         "training_image_served", "sagemaker_pytorch_container.serving", "inference", training_image_served),
    Case("oom", "sagemaker-python-sdk#1876", "the container ran out of memory", "oom_killed", "137", "memory", oom),
    Case("ecr-pull-denied", "amazon-sagemaker-examples#858", "no permission to pull the image", "pull_auth",
         "basic auth", "login", ecr_pull_denied),
    Case("in-container-403", "sagemaker-python-sdk#442", "the container's credentials cannot read the bucket",
         "container_credentials", "(403)", "credentials", in_container_403),
    Case("requirements-install", "sagemaker-training-toolkit#19", "the requirements failed to install",
         "requirements_failed", "pip install", "requirements", requirements_install),
    Case("cleanup-permission", "sagemaker-python-sdk#2647", "root-owned files the SDK (a user) cannot copy or delete",
         "host_permission", "Permission denied", "chmod", cleanup_permission),
    Case("exec-format", "deep-learning-containers#2144", "an image for another CPU architecture",
         "wrong_architecture", "exec format error", "architecture", exec_format),
    Case("execution-role", "sagemaker-python-sdk#300", "get_execution_role() off SageMaker compute",
         "sdk_config", "not a role", "pass the role ARN", execution_role),
    Case("user-script", "amazon-sagemaker-examples#622", "the user's training script failed", "script_error",
         "train-coach.py", "line", user_script),
]  # fmt: skip


def judge(case: Case, outcome: Outcome) -> list[str]:
    """What a user would notice is wrong with the diagnosis (empty: right)."""
    report = outcome.report
    if report is None:
        return [f"no report (the call raised {outcome.raised.get('type')})"]
    problems = []
    if report.get("category") != case.category:
        problems.append(f"category {report.get('category')}, expected {case.category}")
    if case.evidence.lower() not in (report.get("summary") or "").lower():
        problems.append(f"the summary does not quote {case.evidence!r}")
    if case.fix.lower() not in (report.get("hint") or "").lower():
        problems.append(f"the hint does not name {case.fix!r}")
    return problems
