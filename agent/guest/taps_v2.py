"""Taps on the SDK's compose-based local mode: SDK v2's `sagemaker.local` (and ModelTrainer's local
container), which v3 keeps as `sagemaker.core.local`. Inside a captured call only, each keeps a bounded copy
of what the SDK loses, and otherwise behaves as the SDK's own step:
- `_stream_output` runs on a tee of compose's output (same lines, decoding, end and exception);
- `_pull_image` runs the same `docker pull`, its stderr copied to ours as it arrives (the SDK leaves it to
  the terminal, and its exception does not say why);
- `_HostingContainer.start` marks the serving thread as the call's own, and `_wait_for_serving_container`
  polls as the SDK does but gives up as soon as that thread (its container) has ended; when /ping answers
  although this call's container is not running (an earlier endpoint holds the port), it waits for that
  container's end and reports that the endpoint answering is another.
"""

from __future__ import annotations

import functools
import inspect
import os
import subprocess
import sys
import threading
from subprocess import CalledProcessError, Popen, check_output, run

from . import handover
from .capture import SERVING, Capture, Run, capture_here, compose_file
from .config import guarded, log_error
from .local import instance_dict

KEPT_PULL_ERROR_BYTES = 16384
PING_TIMEOUT_S = 5.0
"""Bounds each /ping of a captured deploy: whatever holds the port may accept and never answer."""
DOCKER_PS_TIMEOUT_S = 10


def stream_output(original):
    @functools.wraps(original)
    def _stream_output(process):
        """The SDK's `_stream_output` on a tee of the process: same lines, decoding, end and exception."""
        capture = capture_here()
        teed = capture and guarded("stream", _TeedProcess, process, capture)
        if teed is None:
            return original(process)
        try:
            return original(teed)
        except RuntimeError:
            guarded("stream", teed.run.keep_what_is_in, process.stdout)  # what the SDK drops after the exit
            raise

    return _stream_output


class _TeedProcess:
    """The process as the SDK's streamer sees it, whose stdout keeps a bounded copy of each line read."""

    def __init__(self, process, capture: Capture) -> None:
        self.run = Run(process.args)
        capture.runs.append(self.run)
        self.process = process
        self.stdout = _TeedStream(process.stdout, self.run)

    def __getattr__(self, name):
        return getattr(self.process, name)


class _TeedStream:
    def __init__(self, stream, run: Run) -> None:
        self.stream = stream
        self.run = run

    def readline(self, *args):
        raw = self.stream.readline(*args)
        guarded("stream", self.run.keep, raw)
        return raw

    def __getattr__(self, name):
        return getattr(self.stream, name)


def pull_image(original):
    @functools.wraps(original)
    def _pull_image(image):
        """The SDK's `docker pull`; inside a captured call its stderr is teed, not left to the void. Where the
        user mocks the subprocess module, the SDK's own step runs (so their mock sees its call)."""
        capture = capture_here()
        logger = capture and getattr(sys.modules.get(original.__module__), "logger", None)
        if logger is None or subprocess.Popen is not Popen or subprocess.check_output is not check_output:
            return original(image)
        return _teed_pull(logger, image, capture)

    return _pull_image


def _teed_pull(logger, image, capture: Capture) -> None:
    """As the SDK's `check_output(["docker", "pull", image])`: stdout held for the exception, stderr
    reaching our stderr (fd 2, as the child's would) as it arrives, with a bounded copy kept."""
    command = ("docker pull %s" % image).strip()
    logger.info("docker command: %s", command)
    with Popen(command.split(), stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        kept = bytearray()
        tee = threading.Thread(target=guarded, args=("pull", _tee_to_stderr, process.stderr, kept), daemon=True)
        tee.start()
        try:
            output = process.stdout.read()
        except BaseException:
            process.kill()
            raise
        finally:
            tee.join()
        code = process.wait()
    if code:
        capture.note_pull_error(image, bytes(kept).decode("utf-8", errors="replace").strip())
        raise CalledProcessError(code, process.args, output=output)
    logger.info("image pulled: %s", image)


def _tee_to_stderr(stream, kept: bytearray) -> None:
    fd, writable = stream.fileno(), True
    while chunk := os.read(fd, 65536):
        kept += chunk
        del kept[:-KEPT_PULL_ERROR_BYTES]
        view = memoryview(chunk)
        while writable and view:
            try:
                view = view[os.write(2, view) :]
            except OSError as exc:  # the engine's own write to a closed stderr is lost too; keep draining
                writable = False
                log_error("pull", exc)


def serving_start(original):
    @functools.wraps(original)
    def start(self):
        """Thread.start of the SDK's serving container, remembered as the captured call's own."""
        capture = capture_here()
        if capture is not None:
            guarded("serving", SERVING.__setitem__, self, capture)
            capture.serving = self
        return original(self)

    return start


def wait_for_serving(module, original):
    @functools.wraps(original)
    def _wait_for_serving_container(serving_port, *args, **kwargs):
        """The SDK's wait for /ping, which also gives up as soon as this call's serving container exited."""
        capture = capture_here()
        ping = None
        if capture is not None and capture.serving is not None:
            ping = guarded("serving", _Ping, module, original, serving_port, args, kwargs)
        if ping is None:
            return original(serving_port, *args, **kwargs)
        return _wait_for_own_container(ping, capture)

    return _wait_for_serving_container


class _Ping:
    """What the SDK's wait uses, read before waiting (a change in the SDK means its own wait runs), with
    each request bounded."""

    def __init__(self, module, original, serving_port: int, args: tuple, kwargs: dict) -> None:
        # Lazy: urllib3 is the SDK's dependency (its local mode pings with it); the guest loads without it.
        import urllib3

        bound = inspect.signature(original).bind(serving_port, *args, **kwargs)
        self.limit = bound.arguments.get("timeout", module.HEALTH_CHECK_TIMEOUT_LIMIT)  # v3 takes a timeout
        self.logger = module.logger
        self.perform = module._perform_request
        self.http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=PING_TIMEOUT_S, read=PING_TIMEOUT_S))
        self.url = "http://%s:%d/ping" % (module.get_docker_host(), serving_port)
        self.port = serving_port


def _wait_for_own_container(ping: _Ping, capture: Capture) -> None:
    """The SDK's loop (same pings, log lines and pace), its sleep ended early by this call's container's end."""
    attempt = 0
    while True:
        attempt += 5
        if attempt >= ping.limit or not capture.serving.is_alive():
            capture.serving_failed = True
            raise RuntimeError("Giving up, endpoint didn't launch correctly")
        ping.logger.info("Checking if serving container is up, attempt: %s", attempt)
        _, code = ping.perform(ping.url, ping.http)
        if code == 200:
            guarded("serving", _confirm_own_endpoint, ping, capture, attempt)
            return
        ping.logger.info("Container still not up, got: %s", code)
        capture.serving.join(5)


def _confirm_own_endpoint(ping: _Ping, capture: Capture, waited: int) -> None:
    """/ping answered: this call's container, unless it is not running and others hold the serving port (an
    earlier endpoint still serving). Then this call's container cannot bind the port: once its compose gave up
    (within the SDK's own limit), the report and one line on stderr say that the endpoint answering is another."""
    ours = _own_containers(capture.serving)
    running = _running_containers()
    if not ours or running is None or ours & set(running):
        return
    holders = [name for name, ports in running.items() if f":{ping.port}->" in ports]
    capture.serving.join(max(ping.limit - waited, 0))
    if not capture.serving.is_alive():
        capture.serving_failed = True
        handover.report_answered_elsewhere(capture, ping.port, holders)


def _own_containers(serving) -> set[str]:
    """The container names in the compose file the SDK's serving thread runs."""
    # Lazy: PyYAML is the SDK's dependency (its local mode writes the file with it); the guest loads without it.
    import yaml

    path = compose_file(instance_dict(serving).get("command"))
    if path is None:
        return set()
    with open(path, encoding="utf-8") as handle:
        services = (yaml.safe_load(handle) or {}).get("services") or {}
    return {service["container_name"] for service in services.values() if service.get("container_name")}


def _running_containers() -> dict[str, str] | None:
    """The engine's running containers and the ports each publishes, as the docker CLI the SDK drives tells
    them; None when it cannot (then the SDK's answer stands)."""
    try:
        listing = ["docker", "ps", "--format", "{{.Names}}\t{{.Ports}}"]
        done = run(listing, capture_output=True, text=True, timeout=DOCKER_PS_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return dict(line.partition("\t")[::2] for line in done.stdout.splitlines() if line)
