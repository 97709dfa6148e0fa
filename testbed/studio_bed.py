"""A SageMaker Studio space, shaped from real parts: the bed's dockerd (Debian 12's 20.10 speaks Engine API
1.41, Studio's only version) behind a small proxy on a unix socket that behaves, where smdiag and the SDKs
can tell, as Studio's does; a `sagemaker` network; resource-metadata.json under a temporary root; a home.

The proxy (run as `python studio_bed.py PROXY_SOCKET ENGINE_SOCKET`, one process) refuses with the real
proxy's error texts, as users reported them (agent/host/studio.py REFUSALS):
- unversioned API paths: HTTP 301 (the real proxy redirects them; where to is not documented, so no
  Location is sent and a client that does not pin a version breaks, as docker-py's default does there).
  The docker CLI's unversioned `/_ping` passes: the CLI works in Studio, and it pings before negotiating.
- container create with `Privileged`, or a network other than `sagemaker`; network create; exec;
  a build whose network is not `sagemaker`.
Its 403 bodies are JSON sent as text/plain, which is why the docker CLI prints them raw
(`Error response from daemon: {"message":"Forbidden. Reason: ..."}`), as seen in Studio.

The `sagemaker` network, at the interface the space sees: both SDK majors run the serving container on it
with no published ports and reach it at `localhost:8080` (sagemaker/local/image.py and utils.get_docker_host
in v2, sagemaker-core's local/image.py in v3), because in a space that network's containers are reachable on
the space's localhost. A plain bridge on the bed is not, so the proxy creates a container that asks for
`sagemaker` on the engine's host network instead (its ports on the machine's localhost, as the space's), and
labels it `smdiag.bed.network=sagemaker` to show what it asked for. Two such containers would share the
host's ports: local mode runs one at a time, as health runs its frameworks one after another.

What the space cannot see of the host (the engine's data-root, its disk) the bed hides where a test asks
(`without_data_root`): smdiag on Studio must not look there, and the tests check what it reports instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import socketserver
import subprocess
import sys
import threading
from pathlib import Path

API_PATH = re.compile(rb"^/v\d+\.\d+(/.*)$")
PRIVILEGED = (
    "Forbidden. Reason: [ContainerCreate] SageMaker Studio Docker Usage does not allow privileged mode execution"
)
NETWORK = "Forbidden. Reason: [ContainerCreate] SageMaker Studio Docker Usage only allows 'sagemaker' as network input"
BUILD_NETWORK = "Forbidden. Reason: [ImageBuild] 'sagemaker' is the only user allowed network input"
NOT_ALLOWED = "The request for current resource is not allowed on SageMaker Studio."
STAND_IN_COMPOSE = """#!/bin/sh
# Stand-in for the Docker Compose v2 plugin a Studio user installs (Debian 12 packages none), at Docker's
# CLI plugin interface. Compose v2 negotiates the API version through /_ping; v1, which does the work
# here, would ask unversioned /version, so it is pinned to Studio's 1.41 as v2's negotiation ends up.
if [ "$1" = docker-cli-plugin-metadata ]; then
    echo '{"SchemaVersion":"0.1.0","Vendor":"smdiag tests","Version":"v2.29.2","ShortDescription":"Docker Compose"}'
    exit 0
fi
shift
if [ "$1" = version ]; then echo "Docker Compose version v2.29.2"; exit 0; fi
COMPOSE_API_VERSION=1.41 exec /usr/bin/docker-compose "$@"
"""


def refusal(method: bytes, path: bytes, body: bytes) -> tuple[int, str] | None:
    """(status, message) for a request Studio's proxy refuses, None for one it passes. Pure."""
    if path.split(b"?")[0] == b"/_ping":
        return None
    versioned = API_PATH.match(path)
    if not versioned:
        return 301, ""
    route, _, query = versioned.group(1).partition(b"?")
    if method == b"POST" and route == b"/containers/create":
        config = json.loads(body or b"{}")
        host = config.get("HostConfig") or {}
        if host.get("Privileged"):
            return 403, PRIVILEGED
        networks = set((config.get("NetworkingConfig") or {}).get("EndpointsConfig") or {})
        if host.get("NetworkMode") != "sagemaker" or networks - {"sagemaker"}:
            return 403, NETWORK
    if method == b"POST" and (route == b"/networks/create" or re.fullmatch(rb"/containers/[^/]+/exec", route)):
        return 403, NOT_ALLOWED
    if method == b"POST" and route == b"/build":
        fields = dict(part.split(b"=", 1) for part in query.split(b"&") if b"=" in part)
        if fields.get(b"networkmode", b"default") != b"sagemaker":
            return 403, BUILD_NETWORK
    return None


class _Handler(socketserver.BaseRequestHandler):
    engine: str = ""

    def handle(self) -> None:
        client: socket.socket = self.request
        head, rest = _read_head(client)
        if not head:
            return
        lines = head.split(b"\r\n")
        method, path, _ = (lines[0].split(b" ") + [b"", b""])[:3]
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(b":") for line in lines[1:])}
        length = int(headers.get(b"content-length", b"0") or 0)
        body = rest
        if method == b"POST" and b"/containers/create" in path:
            while len(body) < length:
                chunk = client.recv(65536)
                if not chunk:
                    break
                body += chunk
        refused = refusal(method, path, body[:length] if length else body)
        if not refused and method == b"POST" and b"/containers/create" in path:
            lines, body = _on_the_spaces_network(lines, body)
            head = b"\r\n".join(lines)
        if refused:
            status, message = refused
            text = json.dumps({"message": message}, separators=(",", ":")).encode() if message else b""
            reason = b"Moved Permanently" if status == 301 else b"Forbidden"
            client.sendall(
                b"HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n"
                b"Connection: close\r\n\r\n%s" % (status, reason, len(text), text)
            )
            _linger(client)
            return
        upgrade = b"upgrade" in headers.get(b"connection", b"").lower()
        if not upgrade:  # one request per connection, so that each is seen here
            kept = [line for line in lines[1:] if line.split(b":")[0].strip().lower() not in (b"connection",)]
            head = b"\r\n".join([lines[0], *kept, b"Connection: close"])
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            upstream.connect(self.engine)
            upstream.sendall(head + b"\r\n\r\n" + body)
            sender = threading.Thread(target=_pipe, args=(client, upstream), daemon=True)
            sender.start()
            _pipe(upstream, client)
        finally:
            upstream.close()


def _on_the_spaces_network(lines: list[bytes], body: bytes) -> tuple[list[bytes], bytes]:
    """A create that passed (its network is `sagemaker`) rewritten to the engine's host network, with its
    Content-Length: where the space's localhost reaches the container's ports (the module's docstring)."""
    config = json.loads(body or b"{}")
    config["HostConfig"]["NetworkMode"] = "host"
    config.pop("NetworkingConfig", None)
    config["Labels"] = {**(config.get("Labels") or {}), "smdiag.bed.network": "sagemaker"}
    body = json.dumps(config).encode()
    kept = [line for line in lines[1:] if line.split(b":")[0].strip().lower() != b"content-length"]
    return [lines[0], *kept, b"Content-Length: %d" % len(body)], body


def _read_head(conn: socket.socket) -> tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return b"", b""
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    """Copy until the source ends, then tell the sink no more comes (half-close: attach streams need it)."""
    try:
        while chunk := source.recv(65536):
            sink.sendall(chunk)
    except OSError:
        pass
    finally:
        try:
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def serve(listen: str, engine: str) -> None:
    _Handler.engine = engine
    with _Server(listen, _Handler) as server:
        signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
        server.serve_forever()


def _linger(client: socket.socket) -> None:
    """Read what the client still sends (a refused request's body) until it hangs up: closing a unix socket
    with unread data resets the peer, whose read of the refusal then fails with ECONNRESET instead."""
    client.shutdown(socket.SHUT_WR)
    client.settimeout(30)
    with contextlib.suppress(OSError):
        while client.recv(65536):
            pass


class Proxy:
    """The proxy as its own process, stopped by its pid."""

    def __init__(self, listen: Path, engine_host: str) -> None:
        self.listen = listen
        self.engine = engine_host.removeprefix("unix://")
        self.process: subprocess.Popen | None = None

    @property
    def host(self) -> str:
        return f"unix://{self.listen}"

    def start(self) -> Proxy:
        # Not at the top: the proxy's own process runs this file by path, where the testbed package is not importable.
        from testbed.machine import dies_with_this_process, wait_for

        self.process = subprocess.Popen(
            [sys.executable, __file__, str(self.listen), self.engine], preexec_fn=dies_with_this_process()
        )
        wait_for(lambda: self._accepts() or self.process.poll() is not None, timeout=30)
        if self.process.poll() is not None:
            raise RuntimeError(f"the Studio proxy exited with {self.process.returncode}")
        return self

    def _accepts(self) -> bool:
        """Listening, not just bound: the socket file appears before listen(), and a connect then is refused."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(str(self.listen))
            except OSError:
                return False
        return True

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)
        self.listen.unlink(missing_ok=True)


class StudioSpace:
    """The space: its root (for /opt/ml/metadata), its home (the EBS volume), its Docker config, and the
    engine behind the proxy with the `sagemaker` network made."""

    def __init__(self, tmp_path: Path, daemon, sock_dir: Path, app_type: str = "JupyterLab") -> None:
        self.daemon = daemon
        self.root = tmp_path / "space-root"
        self.metadata = self.root / "opt" / "ml" / "metadata" / "resource-metadata.json"
        self.home = tmp_path / "home" / "sagemaker-user"
        self.home.mkdir(parents=True)
        self.docker_config = tmp_path / "docker-config"
        plugin = self.docker_config / "cli-plugins" / "docker-compose"
        plugin.parent.mkdir(parents=True)
        plugin.write_text(STAND_IN_COMPOSE)
        plugin.chmod(0o755)
        self.write_metadata(app_type)
        self.proxy = Proxy(sock_dir / "proxy.sock", daemon.host)
        with daemon.client() as client:
            # A cached engine keeps it between runs; the engine's name filter matches `sagemaker-local` too.
            if "sagemaker" not in {network.name for network in client.networks.list(names=["sagemaker"])}:
                client.networks.create("sagemaker", driver="bridge")

    def write_metadata(self, app_type: str | None) -> None:
        """What Studio writes in a space (ARNs shortened); with app_type None, a notebook instance's file."""
        self.metadata.parent.mkdir(parents=True, exist_ok=True)
        fields = {"ResourceArn": "arn:aws:sagemaker:us-east-1:111111111111:notebook-instance/nb", "ResourceName": "nb"}
        if app_type:
            fields = {
                "AppType": app_type,
                "DomainId": "d-bedbedbedbed",
                "SpaceName": "bed-space",
                "UserProfileName": "bed-user",
                "ResourceArn": f"arn:aws:sagemaker:us-east-1:111111111111:app/d-bedbedbedbed/bed-space/{app_type}/x",
                "ResourceName": "default",
            }
        self.metadata.write_text(json.dumps(fields))

    def env(self) -> dict[str, str]:
        """What smdiag and the SDK see in the space's terminal."""
        return {
            "DOCKER_HOST": self.proxy.host,
            "DOCKER_CONFIG": str(self.docker_config),
            "HOME": str(self.home),
            "SMDIAG_NOTEBOOK_METADATA": str(self.metadata),
        }

    def in_space(self, *argv: str) -> list[str]:
        """argv run where /opt/ml/metadata is the space's, as the SDKs read it from that fixed path: in a
        private mount namespace, with the space root's /opt bound over the machine's (never touched)."""
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                'mount --bind "$0" /opt && exec "$@"', str(self.root / "opt"), *argv]  # fmt: skip

    def without_data_root(self) -> tuple[str, ...]:
        """A prefix that runs argv where the engine's data-root is not visible, as in a space (the host's disk
        is not mounted there): an empty tmpfs over it in a private mount namespace; the engine keeps its own."""
        return ("unshare", "--mount", "--propagation", "private", "sh", "-c",
                'mount -t tmpfs smdiag-hidden "$0" && exec "$@"', str(self.daemon.data_root))  # fmt: skip


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2])
