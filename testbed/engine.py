"""Private dockerd engines on loop-mounted ext4 disks (real disks that really fill), and a memory-limited
cgroup for an engine's containers. Everything started is stopped by pid and unmounted, even after a failed
test."""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import docker
import psutil

from testbed.machine import (
    START_TIMEOUT_S,
    STOP_TIMEOUT_S,
    BedUnavailable,
    dies_with_this_process,
    run,
    short_tempdir,
)


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


EXEC_ROOT_PREFIX = "smdd-"
"""A bed engine's exec-root is /tmp/smdd-*: how a dockerd the bed did not start is told from its own."""


class AddressPool:
    """A 10.N.0.0/16 of this engine's own, for its networks' /24s. Every engine on the host routes its networks'
    subnets through the host's routing table, where the first route to a subnet wins: two engines (this run's,
    another run's, or the bridges a killed run left) on one subnet send the proxy of a published port to the
    wrong bridge, and a local endpoint answers /ping with resets. So a pool is reserved machine-wide (a lock file
    held while the engine lives), never one that any route on the host overlaps."""

    LOCKS = Path("/run/lock/smdiag-test")

    def __init__(self, second_octets: Iterable[int] = range(160, 255)) -> None:
        self.second_octets = second_octets
        self._lock = None
        self.network: ipaddress.IPv4Network | None = None

    def reserve(self) -> str:
        """`base=...,size=24` for `--default-address-pool`; the same for this pool's life."""
        if self.network is None:
            self.LOCKS.mkdir(parents=True, exist_ok=True)
            for octet in self.second_octets:
                network = ipaddress.ip_network(f"10.{octet}.0.0/16")
                path = self.LOCKS / f"pool-{network.network_address}.lock"
                had_owner = path.exists()
                lock = open(path, "a")
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    lock.close()
                    continue
                if had_owner:  # an engine of a run that ended had it: what is still here of it is a leftover
                    stop_daemons_of_pool(f"base={network},size=24")
                    # Unless a Docker not the bed's runs here, and might have chosen a subnet in this pool.
                    if not foreign_daemons_running():
                        for device in routed_devices(network):
                            if device.startswith("br-"):
                                subprocess.run(["ip", "link", "delete", device], capture_output=True)
                if routed_devices(network):
                    lock.close()
                    continue
                self._lock, self.network = lock, network
                break
            else:
                raise BedUnavailable("no 10.N.0.0/16 left for an engine's networks: every one is routed or in use")
        return f"base={self.network},size=24"

    def release(self) -> None:
        if self._lock is not None:
            self._lock.close()
        self._lock = self.network = None


def stop_daemons_of_pool(pool: str) -> None:
    """Stop the dockerds a killed run left on `pool` (its argv names it), then their containerd and shims: one
    started as a service manager would (`Dockerd.start_command`) is no child of the run, so it outlived it."""
    leftovers = []
    for proc in psutil.process_iter(["cmdline"]):
        argv = proc.info["cmdline"] or []
        if argv[:1] == ["dockerd"] and pool in argv and "--exec-root" in argv:
            leftovers.append((proc, argv[argv.index("--exec-root") + 1]))
    for proc, _exec_root in leftovers:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    psutil.wait_procs([proc for proc, _ in leftovers], timeout=STOP_TIMEOUT_S)
    if leftovers:
        kill_processes_using(*(exec_root for _, exec_root in leftovers))


def foreign_daemons_running() -> bool:
    """Whether a dockerd runs that the bed did not start (the bed's have their exec-root in a short_tempdir)."""
    for proc in psutil.process_iter(["cmdline"]):
        argv = proc.info["cmdline"] or []
        if argv[:1] == ["dockerd"] and not any(arg.startswith(f"/tmp/{EXEC_ROOT_PREFIX}") for arg in argv):
            return True
    return False


def routed_devices(network: ipaddress.IPv4Network) -> set[str]:
    """The interfaces of the host's IPv4 routes that overlap `network` (the default route aside)."""
    devices = set()
    with open("/proc/net/route") as table:
        next(table)
        for line in table:
            fields = line.split()
            destination, mask = (ipaddress.IPv4Address(int(f, 16).to_bytes(4, "little")) for f in fields[1:8:6])
            if int(mask) and ipaddress.ip_network(f"{destination}/{mask}", strict=False).overlaps(network):
                devices.add(fields[0])
    return devices


class Dockerd:
    """A private Docker engine: its own data-root, exec-root, socket and address pool, no bridge, no iptables."""

    def __init__(
        self,
        data_root: Path | None,
        config_file: Path | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.data_root = data_root
        self.exec_root = short_tempdir(EXEC_ROOT_PREFIX)
        self.socket = self.exec_root / "d.sock"
        self.pidfile = self.exec_root / "d.pid"
        self.log_path = self.exec_root / "dockerd.log"
        self.config_file = config_file
        self.extra_args = extra_args
        self.proc: subprocess.Popen | None = None
        self.pool = AddressPool()
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
            "--default-address-pool", self.pool.reserve(),
        ]  # fmt: skip
        if self.data_root is not None:
            args += ["--data-root", str(self.data_root)]
        if self.config_file is not None:
            args += ["--config-file", str(self.config_file)]
        return args + list(self.extra_args)

    def start(self) -> Dockerd:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            self.argv(), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=dies_with_this_process(),
        )  # fmt: skip
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
        self.pool.release()
        shutil.rmtree(self.exec_root, ignore_errors=True)


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


def bed_answers(daemon: Dockerd) -> bool:
    with contextlib.suppress(Exception), daemon.client(timeout=3) as client:
        return client.ping()
    return False


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
