"""A notebook-like host for bootstrap: a root volume and an EBS volume (loop disks), a daemon configured by
daemon.json and restarted through stop/start commands, sysconfig, a systemd directory and the SDK's config."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from testbed.engine import Dockerd, LoopDisk, bed_answers
from testbed.machine import wait_for

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
