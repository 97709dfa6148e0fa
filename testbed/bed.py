"""The real test bed: private dockerd engines on loop-mounted ext4 disks, a local registry, busybox images.

Everything here starts real processes and mounts real filesystems (see ../shared/TESTBED.md), and
everything it starts it stops by pid and unmounts, even after a failed test.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path

import docker
import psutil

REQUIRED_TOOLS = ("dockerd", "docker-registry", "mkfs.ext4", "mount", "umount", "busybox", "setpriv")
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30
BROKEN_TRAIN_SCRIPT = """echo "Starting training"
echo "Traceback (most recent call last):" >&2
echo '  File "/opt/ml/code/train.py", line 3, in <module>' >&2
echo "    from numpy.random import seeds" >&2
echo "ImportError: cannot import name 'seeds' from 'numpy.random' (/usr/lib/python3/numpy/random/__init__.py)" >&2
exit 1
"""
"""A `train` that fails as the seed chapter's TensorFlow script does, for a busybox image."""


class BedUnavailable(RuntimeError):
    """The machine cannot host the bed (not root, a tool missing, loop devices refused)."""


def check_prerequisites() -> None:
    if os.geteuid() != 0:
        raise BedUnavailable("the test bed needs root (dockerd, mount -o loop)")
    missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
    if missing:
        raise BedUnavailable(f"missing {', '.join(missing)}: run tests/install-bed.sh")


def run(*argv: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, check=True, capture_output=True, text=True, **kwargs)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def short_tempdir(prefix: str) -> Path:
    """A directory under /tmp with a short path: unix socket paths are limited to ~100 bytes."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


class LoopDisk:
    """An ext4 filesystem of a chosen size in a sparse file, loop-mounted: a real disk that really fills."""

    def __init__(self, workdir: Path, name: str, size_mb: int, mkfs_args: tuple[str, ...] = ()) -> None:
        self.image = workdir / f"{name}.img"
        self.path = workdir / name
        self.size_mb = size_mb
        self.mkfs_args = mkfs_args
        self.mounted = False

    def mount(self) -> LoopDisk:
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.image, "wb") as f:
            f.truncate(self.size_mb * 1024 * 1024)
        run("mkfs.ext4", "-q", "-F", *self.mkfs_args, str(self.image))
        try:
            run("mount", "-o", "loop", str(self.image), str(self.path))
        except subprocess.CalledProcessError as exc:
            raise BedUnavailable(f"cannot loop-mount an ext4 image: {exc.stderr.strip()}") from None
        self.mounted = True
        return self

    def fill(self, leave_mb: float, name: str = "filler.bin") -> Path:
        """Write a file that leaves about `leave_mb` MiB available."""
        free = shutil.disk_usage(self.path).free
        size = max(0, free - int(leave_mb * 1024 * 1024))
        target = self.path / name
        with open(target, "wb") as f:
            if size:
                os.posix_fallocate(f.fileno(), 0, size)
        return target

    def unmount(self) -> None:
        if not self.mounted:
            return
        kill_processes_using(self.path)
        for point in mounts_under(self.path):  # e.g. a killed daemon's bind mount of its data-root
            subprocess.run(["umount", "-l", point], capture_output=True)
        for _ in range(20):
            if subprocess.run(["umount", str(self.path)], capture_output=True).returncode == 0:
                break
            time.sleep(0.25)
        else:
            subprocess.run(["umount", "-l", str(self.path)], capture_output=True)
        self.mounted = False
        self.image.unlink(missing_ok=True)


def mounts_under(top: Path) -> list[str]:
    """Mount points strictly below `top`, deepest first."""
    prefix = str(top).rstrip("/") + "/"
    with open("/proc/self/mountinfo") as mounts:
        points = {line.split()[4] for line in mounts}
    return sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True)


def host_bridges() -> set[str]:
    """The br-<network id> interfaces present on the host, any daemon's."""
    return {name for name in os.listdir("/sys/class/net") if name.startswith("br-")}


def kill_processes_using(*markers: Path | str) -> None:
    """Kill leftover processes (a SIGKILLed daemon's containerd or shims) whose command line or open
    files name one of the markers, so their mounts can be released."""
    needles = [str(m) for m in markers]
    for proc in psutil.process_iter(["pid", "cmdline"]):
        if proc.pid == os.getpid():
            continue
        with contextlib.suppress(psutil.Error):
            cmdline = " ".join(proc.info["cmdline"] or [])
            if any(n in cmdline for n in needles):
                proc.kill()
                proc.wait(5)


class Dockerd:
    """A private Docker engine: its own data-root, exec-root and socket, no bridge, no iptables."""

    def __init__(
        self,
        data_root: Path | None,
        config_file: Path | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.data_root = data_root
        self.exec_root = short_tempdir("smdd-")
        self.socket = self.exec_root / "d.sock"
        self.pidfile = self.exec_root / "d.pid"
        self.log_path = self.exec_root / "dockerd.log"
        self.config_file = config_file
        self.extra_args = extra_args
        self.proc: subprocess.Popen | None = None
        self.own_bridges: set[str] = set()
        """The br-<network id> interfaces of networks this daemon made: the only ones cleanup deletes."""

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    def argv(self) -> list[str]:
        args = [
            "dockerd",
            "--exec-root", str(self.exec_root),
            "-H", self.host,
            "--pidfile", str(self.pidfile),
            "--bridge=none",
            "--iptables=false",
            # User-defined networks (compose's, SageMaker's sagemaker-local) take subnets from here: /24s
            # rather than the default /16s, of which a host has only about thirty.
            "--default-address-pool", "base=10.222.0.0/16,size=24",
        ]  # fmt: skip
        if self.data_root is not None:
            args += ["--data-root", str(self.data_root)]
        if self.config_file is not None:
            args += ["--config-file", str(self.config_file)]
        return args + list(self.extra_args)

    def start(self) -> Dockerd:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BedUnavailable(f"dockerd exited with {self.proc.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(Exception), self.client(timeout=2) as c:
                c.ping()
                return self
            time.sleep(0.2)
        self.stop()
        raise BedUnavailable(f"dockerd did not answer within {START_TIMEOUT_S}s:\n{self.log_tail()}")

    def start_command(self) -> str:
        """A shell command that starts this daemon detached, as a service manager would."""
        return f"setsid {shlex.join(self.argv())} >>{shlex.quote(str(self.log_path))} 2>&1 </dev/null &"

    def stop_command(self) -> str:
        """A shell command that stops this daemon and returns once it has exited (it removes its pidfile)."""
        pidfile = shlex.quote(str(self.pidfile))
        return f"kill $(cat {pidfile}) && while [ -e {pidfile} ]; do sleep 0.1; done"

    def client(self, timeout: int = 120) -> contextlib.closing[docker.DockerClient]:
        """`with daemon.client() as client:` a docker-py client of this engine, closed afterwards."""
        return contextlib.closing(docker.DockerClient(base_url=self.host, timeout=timeout))

    def pid(self) -> int | None:
        try:
            return int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return self.proc.pid if self.proc and self.proc.poll() is None else None

    def remember_bridges(self) -> None:
        """Note the bridges of this daemon's user-defined networks while it still answers: a stopped daemon
        leaves them on the host, and other test runs' bridges must never be taken for them."""
        with contextlib.suppress(Exception), self.client(timeout=5) as client:
            for network in client.networks.list():
                if network.attrs.get("Driver") == "bridge":
                    name = (network.attrs.get("Options") or {}).get("com.docker.network.bridge.name")
                    self.own_bridges.add(name or f"br-{network.id[:12]}")

    def kill(self) -> None:
        """SIGKILL the daemon (a crash): its socket file stays behind, refusing connections."""
        self.remember_bridges()
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        """Stop by pid (never by name), wait for the exit, then reap anything it left running."""
        self.remember_bridges()
        pid = self.pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).wait(STOP_TIMEOUT_S)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(5)
        kill_processes_using(self.exec_root)

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def cleanup(self) -> None:
        self.stop()
        # A stopped daemon leaves the bridge interfaces of its networks on the host, holding their subnets.
        for bridge in self.own_bridges & host_bridges():
            subprocess.run(["ip", "link", "delete", bridge], capture_output=True)
        shutil.rmtree(self.exec_root, ignore_errors=True)


class Registry:
    """A real `docker-registry` (distribution) on a free 127.0.0.1 port, storing to a directory."""

    def __init__(self, workdir: Path, htpasswd: Path | None = None) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.htpasswd = htpasswd
        """With an htpasswd file every request needs basic auth: what an ECR repository without a login is."""

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Registry:
        storage = self.workdir / "data"
        storage.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "registry.yml"
        config.write_text(
            "version: 0.1\n"
            f"storage: {{filesystem: {{rootdirectory: {storage}}}, delete: {{enabled: true}}}}\n"
            f"http: {{addr: {self.address}}}\n"
        )
        if self.htpasswd is not None:
            with open(config, "a") as f:
                f.write(f"auth: {{htpasswd: {{realm: smdiag-test, path: {self.htpasswd}}}}}\n")
        log = open(self.workdir / "registry.log", "ab")
        self.proc = subprocess.Popen(
            ["docker-registry", "serve", str(config)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BedUnavailable(f"docker-registry exited with {self.proc.returncode}")
            if http_answers(f"http://{self.address}/v2/"):
                return self
            time.sleep(0.1)
        self.stop()
        raise BedUnavailable("docker-registry did not answer")

    def manifest(self, repository: str, tag: str) -> dict:
        request = urllib.request.Request(
            f"http://{self.address}/v2/{repository}/manifests/{tag}",
            headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class ImageFactory:
    """Builds busybox images locally (no registry): a chosen size, chosen executables, a chosen CMD."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.busybox = _static_busybox()
        self._count = 0

    def build(
        self,
        client: docker.DockerClient,
        tag: str,
        size_mb: float = 0,
        scripts: Mapping[str, str] | None = None,
        cmd: list[str] | None = None,
        binaries: Mapping[str, Path] | None = None,
    ):
        """An image whose padding is `size_mb` MiB of random bytes (a registry cannot compress it away),
        whose `scripts` (name -> shell text) and `binaries` (name -> a file to copy) are executables on
        PATH, and which runs `cmd`."""
        self._count += 1
        ctx = self.workdir / f"ctx{self._count}"
        (ctx / "bin").mkdir(parents=True)
        shutil.copy2(self.busybox, ctx / "busybox")
        lines = [
            "FROM scratch",
            "COPY busybox /bin/busybox",
            'RUN ["/bin/busybox", "--install", "-s", "/bin"]',
            "ENV PATH=/usr/local/bin:/bin",
            f'LABEL smdiag.test.image="{tag}"',
        ]
        if size_mb:
            with open(ctx / "pad.bin", "wb") as f:
                remaining = int(size_mb * 1024 * 1024)
                while remaining:
                    chunk = min(remaining, 8 * 1024 * 1024)
                    f.write(os.urandom(chunk))
                    remaining -= chunk
            lines.append("COPY pad.bin /pad.bin")
        for name, text in (scripts or {}).items():
            script = ctx / "bin" / name
            script.write_text(text if text.startswith("#!") else "#!/bin/sh\n" + text)
            script.chmod(0o755)
        for name, source in (binaries or {}).items():
            shutil.copy(source, ctx / "bin" / name)
            (ctx / "bin" / name).chmod(0o755)
        if scripts or binaries:
            lines.append("COPY bin/ /usr/local/bin/")
        if cmd:
            lines.append(f"CMD {json.dumps(cmd)}")
        (ctx / "Dockerfile").write_text("\n".join(lines) + "\n")
        image, _ = client.images.build(path=str(ctx), tag=tag, rm=True)
        shutil.rmtree(ctx)
        return image


def _static_busybox() -> str:
    path = shutil.which("busybox")
    if path is None:
        raise BedUnavailable("busybox is missing: run tests/install-bed.sh (busybox-static)")
    # A dynamically linked busybox cannot run in a FROM-scratch image.
    if b"ld-linux" in Path(path).read_bytes()[:4096]:
        raise BedUnavailable(f"{path} is dynamically linked: install busybox-static")
    return path


@contextlib.contextmanager
def engine_on_disk(workdir: Path, size_mb: int, config: dict | None = None) -> Iterator[tuple[Dockerd, LoopDisk]]:
    """A daemon whose data-root is on its own loop disk of `size_mb` MiB; torn down on exit."""
    disk = LoopDisk(workdir, "disk", size_mb)
    daemon = None
    try:
        disk.mount()
        config_file = None
        if config is not None:
            config_file = workdir / "daemon.json"
            config_file.write_text(json.dumps(config))
        daemon = Dockerd(disk.path / "docker", config_file=config_file).start()
        yield daemon, disk
    finally:
        if daemon is not None:
            daemon.cleanup()
        disk.unmount()


NVIDIA = {"nvidia": {"path": "nvidia-container-runtime", "runtimeArgs": []}}


class NotebookHost:
    """A notebook-like host: root volume, EBS volume, a daemon configured by daemon.json and restarted through
    stop/start commands, sysconfig, systemd dir, SDK config."""

    def __init__(self, tmp_path: Path, root_disk: LoopDisk, ebs_disk: LoopDisk) -> None:
        self.root_disk, self.ebs_disk = root_disk, ebs_disk
        self.old_root = root_disk.path / "docker"
        self.target = ebs_disk.path / "docker"
        self.daemon_json = tmp_path / "etc" / "daemon.json"
        self.sysconfig = tmp_path / "etc" / "sysconfig-docker"
        self.systemd_dir = tmp_path / "etc" / "systemd"
        self.systemd_run_dir = tmp_path / "run" / "systemd" / "system"
        """Present: this host models one where systemd runs Docker (AL2023), so the drop-in is written."""
        self.sagemaker_config = tmp_path / "home" / ".sagemaker" / "config.yaml"
        self.systemd_dir.mkdir(parents=True)
        self.systemd_run_dir.mkdir(parents=True)
        self.sagemaker_config.parent.parent.mkdir()  # the notebook user's home
        self.original_config = {"data-root": str(self.old_root), "runtimes": NVIDIA, "log-opts": {"max-size": "10m"}}
        self.daemon_json.write_text(json.dumps(self.original_config, indent=2))
        self.sysconfig.write_text('DAEMON_MAXFILES=1048576\nOPTIONS="--default-ulimit nofile=1024:4096"\n')
        self.daemon = Dockerd(None, config_file=self.daemon_json)

    def env(self) -> dict[str, str]:
        return {
            "SMDIAG_EBS_MOUNT": str(self.ebs_disk.path),
            "SMDIAG_DOCKER_CONFIG": str(self.daemon_json),
            "SMDIAG_SYSCONFIG": str(self.sysconfig),
            "SMDIAG_SYSTEMD_DIR": str(self.systemd_dir),
            "SMDIAG_SYSTEMD_RUN_DIR": str(self.systemd_run_dir),
            "SMDIAG_SAGEMAKER_CONFIG": str(self.sagemaker_config),
            "DOCKER_HOST": self.daemon.host,
        }

    def argv(self, *extra: str, start_cmd: str | None = None) -> list[str]:
        return [
            "bootstrap",
            "--stop-cmd", self.daemon.stop_command(),
            "--start-cmd", start_cmd or self.daemon.start_command(),
            "--json",
            *extra,
        ]  # fmt: skip

    def root_dir(self) -> str:
        with self.daemon.client() as client:
            return client.info()["DockerRootDir"]

    def reboot(self) -> None:
        """What a notebook restart does: /etc and /var/lib/docker come back fresh, the EBS volume stays."""
        subprocess.run(["sh", "-c", self.daemon.stop_command()], check=True, timeout=60)
        self.daemon_json.write_text(json.dumps(self.original_config, indent=2))
        shutil.rmtree(self.old_root)
        for dropin in self.systemd_dir.rglob("*.conf"):
            dropin.unlink()
        subprocess.run(["sh", "-c", self.daemon.start_command()], check=True, timeout=60)
        wait_for(lambda: bed_answers(self.daemon))


def host_packages_venv(path: Path) -> Path:
    """A bare virtual environment that sees the host's packages (the SDK) through a plain path entry, not
    smdiag itself (its editable install needs its own .pth processed): a user's environment beside ours."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    site = next(path.glob("lib/python3.*/site-packages"))
    (site / "host-packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return path


SDK_V3_REQUIREMENT = "sagemaker>=3.27,<4"
SDK_BUILD_TIMEOUT_S = 1800


def built_once(cache: Path, kind: str, inputs: str, build) -> Path:
    """`build(path)` run once per machine for these `inputs`, its result kept under `cache`: keyed by the
    inputs, built under a lock (a concurrent run waits, then uses it), and complete only once its marker is
    written (a build killed midway is redone by the next run, under the same lock)."""
    key = hashlib.sha256(inputs.encode()).hexdigest()[:12]
    path = cache / f"{kind}-{key}"
    marker = path / "smdiag-test-complete"
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / f"{kind}-{key}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists():
            return path
        if path.exists():
            shutil.rmtree(path)  # under the lock: a build of this key that a killed run left unfinished
        print(f"\nbed: building {kind} for {inputs!r} in {path} (once per machine)", file=sys.stderr)
        build(path)
        marker.write_text(inputs + "\n")
    return path


def cached_sdk_venv(cache: Path, requirement: str) -> Path:
    """A virtual environment with `requirement` installed, built once per machine and kept."""

    def build(path: Path) -> None:
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
        subprocess.run(
            [str(path / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", requirement],
            check=True, timeout=SDK_BUILD_TIMEOUT_S,
        )  # fmt: skip

    return built_once(cache, "sdk-venv", requirement, build)


def packages_venv(path: Path, site_packages: str) -> Path:
    """A bare virtual environment that sees `site_packages` (an SDK) through a plain path entry."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    site = next(path.glob("lib/python3.*/site-packages"))
    (site / "sdk-packages.pth").write_text(site_packages + "\n")
    return path


def site_packages_of(venv: Path) -> str:
    return str(next(venv.glob("lib/python3.*/site-packages")))


def wait_for(condition, timeout: float = 60, every: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(every)


def bed_answers(daemon: Dockerd) -> bool:
    with contextlib.suppress(Exception), daemon.client(timeout=3) as client:
        return client.ping()
    return False


def model_tarball(directory: Path) -> Path:
    """A model.tar.gz for a local-mode Model(model_data="file://..."): one small file."""
    weights = directory / "model.bin"
    weights.write_bytes(b"weights")
    archive = directory / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(weights, arcname="model.bin")
    return archive


def http_answers(url: str) -> bool:
    """True when `url` answers HTTP at all (an error status is an answer: a registry asking for a login)."""
    try:
        urllib.request.urlopen(url, timeout=2).close()
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
    return True


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """AWS (S3, STS, SageMaker...) for the SDK's own calls: moto in server mode on a free port; its URL."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: http_answers(endpoint), timeout=60)
        yield endpoint
    finally:
        server.terminate()
        server.wait(10)


def hermetic_environment(directory: Path) -> dict[str, str]:
    """The environment of a user with no AWS setup, no instance metadata, no engine, and a private state
    dir under `directory` (the `hermetic_env` fixture's, for code that runs outside a test: the benches)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SMDIAG_", "DOCKER_"))}
    env.update(
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=str(directory / "aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(directory / "aws-credentials"),
        SMDIAG_STATE_DIR=str(directory / "state"),
        SMDIAG_EBS_MOUNT=str(directory / "no-ebs-here"),
        SMDIAG_NOTEBOOK_CONFIG=str(directory / "no-notebook-config.json"),
        SMDIAG_NOTEBOOK_METADATA=str(directory / "no-notebook-metadata.json"),
        SMDIAG_DOCKER_CONFIG=str(directory / "no-daemon.json"),
        DOCKER_HOST=f"unix://{directory}/no-docker.sock",
    )
    return env


class MotoProxy:
    """moto as an HTTPS proxy on a free 127.0.0.1 port, answering every AWS endpoint (the SDK names some
    itself, such as STS's regional one, so AWS_ENDPOINT_URL cannot redirect them). `env()` points a
    program at it: the proxy, its CA, and access keys (moto's caller is then an IAM user)."""

    def __init__(self, cache: Path) -> None:
        self.cache = cache
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    def env(self) -> dict[str, str]:
        import moto

        return {
            "HTTPS_PROXY": f"http://127.0.0.1:{self.port}",
            "AWS_CA_BUNDLE": str(Path(moto.__file__).parent / "moto_proxy" / "ca.crt"),
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }

    def start(self) -> MotoProxy:
        multipart = cached_packages_dir(self.cache, ("python-multipart",))  # moto's proxy needs it
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.proxy", "-H", "127.0.0.1", "-p", str(self.port)],
            env={**os.environ, "PYTHONPATH": str(multipart)},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        wait_for(lambda: self.proc.poll() is not None or _listens(self.port), timeout=START_TIMEOUT_S)
        if self.proc.poll() is not None:
            raise BedUnavailable(f"moto's proxy exited with {self.proc.returncode}")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(STOP_TIMEOUT_S)


def _listens(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


class MemoryLimitedCgroup:
    """A cgroup v1 memory group with a limit, for a daemon's `--cgroup-parent`: every container of that
    engine shares the limit, as every container of Docker Desktop shares its VM's memory."""

    ROOT = Path("/sys/fs/cgroup/memory")

    def __init__(self, limit_mb: int) -> None:
        self.name = f"smdiag-test-{os.getpid()}-{os.urandom(3).hex()}"
        self.path = self.ROOT / self.name
        self.limit_mb = limit_mb

    def create(self) -> MemoryLimitedCgroup:
        if not (self.ROOT / "memory.limit_in_bytes").exists():
            raise BedUnavailable("no cgroup v1 memory controller at /sys/fs/cgroup/memory")
        self.path.mkdir()
        (self.path / "memory.limit_in_bytes").write_text(str(self.limit_mb * 1024 * 1024))
        return self

    def remove(self) -> None:
        """After its daemon stopped: the containers' groups below it go first (rmdir of empty groups)."""
        for child in sorted((p for p in self.path.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                child.rmdir()
        with contextlib.suppress(OSError):
            self.path.rmdir()


def cached_packages_dir(cache: Path, requirements: tuple[str, ...]) -> Path:
    """`requirements` installed with pip's `--target` into a directory under `cache` that every user can read,
    for a program run as an ordinary user with the system's interpreter (this machine's Python lives under
    /root, which uid 1000 cannot read). Built once per machine and kept."""

    def build(path: Path) -> None:
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--target", str(path),
             *requirements],
            check=True, timeout=SDK_BUILD_TIMEOUT_S,
        )  # fmt: skip
        for directory in [path, *(p for p in path.rglob("*") if p.is_dir())]:
            directory.chmod(0o755)

    return built_once(cache, "packages", "\n".join(requirements), build)
