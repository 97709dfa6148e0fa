"""Images for the bed's engines: a real `docker-registry` on 127.0.0.1, busybox images of a chosen size and
content built locally, and a model tarball for local-mode serving."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path

import docker

from testbed.machine import (
    START_TIMEOUT_S,
    STOP_TIMEOUT_S,
    BedUnavailable,
    dies_with_this_process,
    free_port,
    http_answers,
)

BROKEN_TRAIN_SCRIPT = """echo "Starting training"
echo "Traceback (most recent call last):" >&2
echo '  File "/opt/ml/code/train.py", line 3, in <module>' >&2
echo "    from numpy.random import seeds" >&2
echo "ImportError: cannot import name 'seeds' from 'numpy.random' (/usr/lib/python3/numpy/random/__init__.py)" >&2
exit 1
"""
"""A `train` that fails as the seed chapter's TensorFlow script does, for a busybox image."""


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
            ["docker-registry", "serve", str(config)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=dies_with_this_process(),
        )  # fmt: skip
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


def model_tarball(directory: Path) -> Path:
    """A model.tar.gz for a local-mode Model(model_data="file://..."): one small file."""
    weights = directory / "model.bin"
    weights.write_bytes(b"weights")
    archive = directory / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(weights, arcname="model.bin")
    return archive
