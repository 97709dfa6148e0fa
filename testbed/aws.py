"""AWS as the bed has it, unreachable for real: moto over HTTP (a server, or an HTTPS proxy answering every
endpoint) and the environment of a user with no AWS setup at all."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from testbed.machine import (
    START_TIMEOUT_S,
    STOP_TIMEOUT_S,
    BedUnavailable,
    dies_with_this_process,
    free_port,
    http_answers,
    listens,
    wait_for,
)
from testbed.python_envs import cached_packages_dir


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """AWS (S3, STS, SageMaker...) for the SDK's own calls: moto in server mode on a free port; its URL."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              preexec_fn=dies_with_this_process())  # fmt: skip
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
        import moto  # only for its CA's path: moto takes most of a second to import

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
            preexec_fn=dies_with_this_process(),
        )  # fmt: skip
        wait_for(lambda: self.proc.poll() is not None or listens(self.port), timeout=START_TIMEOUT_S)
        if self.proc.poll() is not None:
            raise BedUnavailable(f"moto's proxy exited with {self.proc.returncode}")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(STOP_TIMEOUT_S)
