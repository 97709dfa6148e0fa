"""Benchmark of `smdiag bootstrap` on the real bed (root; see tests/install-bed.sh).

Prints, on one data-root of >= 2 GiB and >= 50,000 files:
- the first migration's copy throughput as a ratio to `cp -a` of the same stopped data-root (cold page
  cache for both; goal >= 0.9);
- Docker's downtime during a first migration that stops Docker for the whole copy (the anchor) and one
  that copies while Docker runs, then stops it for a final pass over what changed (goal: <= 5 s plus that
  pass), side by side as a ratio;
- the re-point time of a later boot, the agent's own part (total minus dockerd's stop and start).

    python3 -m bench.bootstrap [--image-mb 2048] [--small-files 50000]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from agent.bootstrap import Options, run_bootstrap
from agent.dataroot import allocated_bytes, copy_tree
from agent.disks import human_bytes
from agent.settings import Settings
from testbed import bed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-mb", type=int, default=2048, help="random bytes in image layers")
    parser.add_argument("--small-files", type=int, default=50000, help="small files in one layer (site-packages)")
    args = parser.parse_args()
    bed.check_prerequisites()
    work = Path(tempfile.mkdtemp(prefix="smdiag-bench-"))
    size_mb = args.image_mb * 3 + 1500
    root_disk, ebs_disk = bed.LoopDisk(work, "rootvol", size_mb), bed.LoopDisk(work, "ebs", size_mb * 2)
    daemon = None
    try:
        root_disk.mount()
        ebs_disk.mount()
        config = work / "daemon.json"
        original = {"data-root": str(root_disk.path / "docker")}
        config.write_text(json.dumps(original))
        daemon = bed.Dockerd(None, config_file=config).start()
        populate(daemon, work, args.image_mb, args.small_files)
        source = root_disk.path / "docker"

        stop(daemon)
        drop_caches()
        started = time.monotonic()
        subprocess.run(["cp", "-a", f"{source}/.", str(ebs_disk.path / "cp-baseline")], check=True)
        sync()
        cp_seconds = time.monotonic() - started
        shutil.rmtree(ebs_disk.path / "cp-baseline")
        drop_caches()
        total = allocated_bytes(source)
        started = time.monotonic()
        copy_tree(source, ebs_disk.path / "copy-probe", total, None)
        sync()
        ours_seconds = time.monotonic() - started
        shutil.rmtree(ebs_disk.path / "copy-probe")
        start(daemon)

        settings = Settings.load(
            env={},
            ebs_mount=ebs_disk.path,
            state_dir=work / "state",
            docker_host=daemon.host,
            daemon_config=config,
            sysconfig=work / "no-sysconfig",
            systemd_dir=work / "no-systemd",
            sagemaker_config=work / "sagemaker.yaml",
        )
        options = Options(stop_cmd=daemon.stop_command(), start_cmd=daemon.start_command())
        drop_caches()
        stopped_first = run_bootstrap(settings, replace(options, live_copy=False))
        move_back(daemon, config, original, ebs_disk.path / "docker")
        drop_caches()
        migrated = run_bootstrap(settings, options)
        stop(daemon)
        config.write_text(json.dumps(original))
        shutil.rmtree(source)
        start(daemon)
        repointed = run_bootstrap(settings, options)
        actions = [r["action"] for r in (stopped_first, migrated, repointed)]
        assert actions == ["migrated", "migrated", "repointed"], actions

        print(f"data-root: {human_bytes(total)}, {args.small_files} small files + {args.image_mb} MiB of layers")
        print(f"copy, cp -a:            {cp_seconds:6.2f} s  {total / cp_seconds / 2**20:7.1f} MiB/s")
        print(f"copy, smdiag (rsync):   {ours_seconds:6.2f} s  {total / ours_seconds / 2**20:7.1f} MiB/s")
        print(f"throughput ratio smdiag/cp -a: {cp_seconds / ours_seconds:.2f}  (goal >= 0.9)")
        print("first migration          whole run   Docker down   copy while down   dockerd stop+start")
        for name, run in (("stop, copy, start", stopped_first), ("live copy, final pass", migrated)):
            print(
                f"  {name:22} {run['seconds']:8.2f} s  {run['downtime_seconds']:10.2f} s  "
                f"{run['stopped_copy_seconds']:14.2f} s  {run['daemon_seconds']:17.2f} s"
            )
        print(
            f"downtime ratio live/stop-first: {migrated['downtime_seconds'] / stopped_first['downtime_seconds']:.3f}; "
            f"live downtime minus its final pass: "
            f"{migrated['downtime_seconds'] - migrated['stopped_copy_seconds']:.2f} s (goal <= 5 s)"
        )
        own = repointed["seconds"] - repointed["daemon_seconds"]
        print(
            f"re-point (later boot): agent's own {own:.2f} s; total {repointed['seconds']:.2f} s "
            f"with dockerd stop+start {repointed['daemon_seconds']:.2f} s"
        )
    finally:
        if daemon is not None:
            daemon.cleanup()
        ebs_disk.unmount()
        root_disk.unmount()
        shutil.rmtree(work, ignore_errors=True)


def populate(daemon: bed.Dockerd, work: Path, image_mb: int, small_files: int) -> None:
    """Framework-like images: big random layers, and one layer of many small files like site-packages."""
    factory = bed.ImageFactory(work / "images")
    (work / "images").mkdir()
    with daemon.client(timeout=600) as client:
        for index in range(3):
            factory.build(client, f"bench/layers:{index}", size_mb=image_mb / 3)
        context = work / "smallfiles"
        context.mkdir()
        shutil.copy2(shutil.which("busybox"), context / "busybox")
        (context / "Dockerfile").write_text(
            "FROM scratch\nCOPY busybox /bin/busybox\n"
            f'RUN ["/bin/busybox", "sh", "-c", "/bin/busybox mkdir -p /pkg && cd /pkg && '
            f'for i in $(/bin/busybox seq 1 {small_files}); do echo module $i > m$i.py; done"]\n'
        )
        client.images.build(path=str(context), tag="bench/smallfiles:1", rm=True)


def move_back(daemon: bed.Dockerd, config: Path, original: dict, copy: Path) -> None:
    """Undo a migration by hand, so the next one starts from the same data-root."""
    stop(daemon)
    config.write_text(json.dumps(original))
    shutil.rmtree(copy)
    start(daemon)


def stop(daemon: bed.Dockerd) -> None:
    subprocess.run(["sh", "-c", daemon.stop_command()], check=True, timeout=120)


def start(daemon: bed.Dockerd) -> None:
    subprocess.run(["sh", "-c", daemon.start_command()], check=True, timeout=60)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with daemon.client(timeout=3) as client:
                client.ping()
                return
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.2)
    raise RuntimeError("dockerd did not come back")


def sync() -> None:
    subprocess.run(["sync"], check=True)


def drop_caches() -> None:
    """Cold page cache, so neither copy reads what the other one just read."""
    sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


if __name__ == "__main__":
    main()
