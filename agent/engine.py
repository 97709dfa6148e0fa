"""The Docker engine edge: connect through docker-py and describe the engine, or say exactly why not.

`Engine(host)` is the one object a command builds for its engine and passes down: one client (made once,
through `connect`'s validation and error translation), its facts, whether it answers now, and its event
stream. docker-py (and requests) are imported when the engine is first used, not when this module is: a
command that may never use its engine (`health` run natively) builds one anyway, and must still give its
own answer where docker-py is not installed; and `smdiag last-failure` must start in well under a second.
"""

from __future__ import annotations

import errno
import re
from dataclasses import asdict, dataclass
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING

from agent import platform
from agent.errors import BadInput, Failed

if TYPE_CHECKING:
    import docker
    import docker.types

    from agent.settings import Settings

CONNECT_TIMEOUT_S = 10
PROBE_TIMEOUT_S = 3
"""How long `answers` waits: a probe while the daemon stops or starts, where a hung call means "not yet"."""


@dataclass(frozen=True)
class EngineFacts:
    host: str
    version: str
    api_version: str
    root_dir: str
    storage_driver: str
    d_type: bool | None
    """Whether the backing filesystem supports d_type (overlay2 needs it); None when not reported."""
    containerd_image_store: bool
    """Images then live under containerd's root, which Docker's data-root does not move."""

    def to_dict(self) -> dict:
        return asdict(self)


class Engine:
    """The Docker engine at `host`. Nothing is attempted until it is used, so building one costs nothing;
    the client is made once and kept, so one command talks to its engine through one connection pool."""

    def __init__(self, host: str, timeout: float = CONNECT_TIMEOUT_S, version: str | None = None) -> None:
        self.host = host
        self.timeout = timeout
        self.version = version
        """The API version to pin (Studio's proxy refuses unversioned calls); None asks the engine."""

    @classmethod
    def for_settings(cls, settings: Settings, timeout: float = CONNECT_TIMEOUT_S) -> Engine:
        """The engine the settings name, pinned to the API version its platform needs."""
        return cls(settings.docker_host, timeout, platform.detect(settings).api_version)

    def __repr__(self) -> str:
        return f"Engine({self.host!r})"

    @cached_property
    def client(self) -> docker.DockerClient:
        """A client whose engine answered when it was made; `BadInput` or `Failed` (root cause and fix)
        otherwise, and then the next use tries again."""
        return connect(self.host, self.timeout, self.version)

    def describe(self) -> EngineFacts:
        return describe(self.client, self.host)

    def answers(self, timeout: float = PROBE_TIMEOUT_S) -> bool:
        """Whether the engine answers a ping now. A fresh connection each time: a daemon that restarted
        since the last call must be asked, not remembered."""
        # lazily: see the module docstring
        import docker
        import requests

        try:
            probe = docker.DockerClient(base_url=self.host, timeout=timeout, version=self.version)
        except docker.errors.DockerException:
            return False
        try:
            return bool(probe.ping())
        except (docker.errors.DockerException, requests.RequestException):
            return False
        finally:
            probe.close()

    def events(self, filters: dict | None = None) -> docker.types.CancellableStream:
        """The engine's events as dicts, until the stream is closed or the engine goes away (the caller
        reconnects: a restarted engine needs a new stream, not a new client)."""
        # lazily: see the module docstring
        import docker.errors
        import requests

        try:
            return self.client.events(decode=True, filters=filters)
        except (docker.errors.DockerException, requests.RequestException) as exc:
            raise unreachable(self.host, exc, self.timeout) from None

    def close(self) -> None:
        """Close the client if one was made; the next use makes a new one."""
        client = self.__dict__.pop("client", None)
        if client is not None:
            client.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def validate_host(host: str) -> None:
    """Reject a docker host URL docker-py cannot use, before anything is attempted."""
    # lazily: see the module docstring
    import docker.errors
    import docker.utils

    try:
        docker.utils.parse_host(host, is_win32=False, tls=False)
    except docker.errors.DockerException as exc:
        raise BadInput(
            f"invalid docker host {host!r} (from --docker-host or DOCKER_HOST): {exc}",
            "use unix:///path/to/docker.sock or tcp://HOST:PORT",
        ) from None


def connect(host: str, timeout: float = CONNECT_TIMEOUT_S, version: str | None = None) -> docker.DockerClient:
    """A client whose engine has answered; `Failed` with the root cause and a fix otherwise. `version` pins
    the API version (Studio's proxy needs 1.41: agent.platform); None asks the engine first."""
    # lazily: see the module docstring
    import docker
    import requests

    validate_host(host)
    try:
        client = docker.DockerClient(base_url=host, timeout=timeout, version=version)
        client.ping()
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise unreachable(host, exc, timeout) from None
    return client


def describe(client: docker.DockerClient, host: str) -> EngineFacts:
    # lazily: see the module docstring
    import docker.errors
    import requests

    try:
        version = client.version()
        info = client.info()
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise unreachable(host, exc) from None
    driver_status = dict(tuple(pair) for pair in info.get("DriverStatus") or [] if len(pair) == 2)
    d_type = driver_status.get("Supports d_type")
    return EngineFacts(
        host=host,
        version=version.get("Version", ""),
        api_version=version.get("ApiVersion", ""),
        root_dir=info.get("DockerRootDir", ""),
        storage_driver=info.get("Driver", ""),
        d_type=None if d_type is None else d_type == "true",
        containerd_image_store=driver_status.get("driver-type") == "io.containerd.snapshotter.v1",
    )


def unreachable(host: str, exc: BaseException, timeout: float = CONNECT_TIMEOUT_S) -> Failed:
    """Turn docker-py's nested connection errors into one line naming the root cause, and the fix."""
    # lazily: see the module docstring
    import requests

    chain = list(_exception_chain(exc))
    os_error = next((e for e in reversed(chain) if isinstance(e, OSError) and e.errno is not None), None)
    if any(isinstance(e, (requests.Timeout, TimeoutError)) for e in chain):
        reason = f"the engine did not answer within {timeout:g}s"
        fix = "dockerd is hung or overloaded: check it (sudo systemctl status docker) and restart it"
    elif os_error is not None and os_error.errno in (errno.ENOENT, errno.ECONNREFUSED):
        reason = os_error.strerror or str(os_error)
        fix = (
            "start Docker (sudo systemctl start docker, or sudo service docker start) "
            "or point DOCKER_HOST at its socket"
        )
    elif os_error is not None and os_error.errno == errno.EACCES:
        reason = os_error.strerror or str(os_error)
        fix = "run with sudo, or add your user to the docker group"
    else:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        fix = "check that Docker is running and DOCKER_HOST is right"
    return Failed(f"cannot reach the Docker engine at {host}: {reason}", fix)


def _exception_chain(exc: BaseException):
    """Every exception behind docker-py / requests / urllib3 wrappers, outermost first (they nest the
    real cause in args, `reason`, __cause__ or __context__)."""
    seen: set[int] = set()
    queue: list[object] = [exc]
    while queue:
        item = queue.pop(0)
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        queue.extend([item.__cause__, item.__context__, *item.args, getattr(item, "reason", None)])


def docker_time(text: str | None) -> float | None:
    """The engine's RFC 3339 times (nanoseconds, Z or an offset) as epoch seconds; None for the zero time."""
    if not text or text.startswith("0001-"):
        return None
    match = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)", text)
    if not match:
        return None
    zone = "+00:00" if match.group(3) == "Z" else match.group(3)
    return datetime.fromisoformat(match.group(1) + zone).timestamp() + float(match.group(2) or 0)
