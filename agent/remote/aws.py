"""AWS access for smdiag's own reads: the user's credential chain (environment, profile, container or
instance role; nothing stored), every call bounded by one shared time budget, and failures turned into one
line that names the permission a refusal lacks. boto3 is imported at the first client, never on import, so
that `python -m agent.record` and the CLI start lean."""

from __future__ import annotations

import queue
import re
import threading
import time
from collections.abc import Callable

from agent.errors import BadInput, SmdiagError
from agent.redact import process_redactor

CALL_TIMEOUT_S = 5.0
"""The longest one attempt may wait to connect, and then for each read."""
PARALLEL_CALLS = 8
"""Calls made at once by `in_parallel` (one client serves them all: boto3's clients are thread-safe)."""
MAX_LINE = 400
"""A why_not line is cut here: it is one row of a report or a table."""

ACCESS_DENIED_CODES = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedAccess", "NotAuthorized"}
)
_TAG = re.compile(r"<[^>]*>")
REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")
"""An AWS region's name: us-east-1, ap-southeast-2, us-gov-west-1 (the number may reach two digits)."""
_ACTION_IN_MESSAGE = re.compile(r"not authorized to perform:? ([a-z0-9-]+:[A-Za-z0-9*]+)")


class AwsUnavailable(SmdiagError):
    """AWS cannot be asked at all: no credentials, no region, no answer in time. Exit 1, one line."""

    exit_code = 1


def check_region(region: str | None) -> None:
    """BadInput unless `region` (a --region given; None: the AWS config's) looks like an AWS region's name. The
    one check of a region smdiag's commands make, before any AWS call."""
    if region is not None and not REGION.fullmatch(region):
        raise BadInput(f"--region {region!r} is not an AWS region name", "write it like us-east-1 or eu-west-2")


class Deadline:
    """A time budget shared by one gathering: a clock, nothing more. `client` sizes a client's timeouts from
    what is left when the client is made; `in_parallel(..., deadline=)` stops starting calls and stops waiting
    once it is spent; a loop of calls checks `left()` before each. A call already sent is ended only by its
    client's timeouts."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    def left(self) -> float:
        return max(0.0, self._end - time.monotonic())


def client(service: str, region: str | None, deadline: Deadline, at_most: float = CALL_TIMEOUT_S):
    """A boto3 client for `service`: connect and read timeouts of min(at_most, CALL_TIMEOUT_S, what is left of
    `deadline` now), a second attempt only when what is left holds two. The deadline is read once, here: it
    does not end the calls made later with the client (a caller that loops checks `deadline.left()` itself,
    and a call may end up to one timeout after the deadline). `region` None: the default chain's (AWS_REGION /
    AWS_DEFAULT_REGION, the profile). Raises AwsUnavailable when there is no time left, no region or no
    credentials, before any request."""
    left = deadline.left()
    if left < 0.05:
        raise AwsUnavailable(f"no time left to ask {service} (budget {deadline.seconds:g} s spent)")
    import boto3  # lazily: a second of import the recorder and the CLI pay only for a remote call
    from botocore.config import Config

    timeout = min(CALL_TIMEOUT_S, at_most, left)
    attempts = 2 if left >= 2 * timeout + 1 else 1
    session = boto3.session.Session(region_name=region)
    if session.region_name is None:
        raise AwsUnavailable("no AWS region configured", "pass --region, or set AWS_REGION / AWS_DEFAULT_REGION")
    if session.get_credentials() is None:
        raise AwsUnavailable(
            "no AWS credentials found (environment, profile, container or instance role)",
            "set AWS_PROFILE or AWS credentials in the environment, or run where a role is attached",
        )
    config = Config(
        connect_timeout=timeout,
        read_timeout=timeout,
        retries={"total_max_attempts": attempts, "mode": "standard"},
        user_agent_extra="smdiag",
    )
    return session.client(service, config=config)


def error_code(error: BaseException) -> str | None:
    """The service's error code of a botocore ClientError ("AccessDeniedException"), else None."""
    return _service_error(error)[0]


def error_message(error: BaseException) -> str:
    return _service_error(error)[1]


_XML_ERROR = re.compile(r"<Code>(?P<code>[^<]+)</Code>\s*<Message>(?P<message>[^<]*)</Message>")
"""An XML error body where botocore expected JSON (a proxy's, or moto's IAM refusal): its code and message."""


def _service_error(error: BaseException) -> tuple[str | None, str]:
    response = getattr(error, "response", None)
    if not isinstance(response, dict):
        return None, str(error)
    found = response.get("Error") or {}
    code, message = found.get("Code"), str(found.get("Message") or error)
    framed = _XML_ERROR.search(message)
    if framed is not None:
        code, message = framed["code"], framed["message"]
    return code or None, message


def is_unavailable(error: BaseException) -> bool:
    """AWS gave no answer at all (credentials, region, connection, timeout), as opposed to a refusal."""
    if isinstance(error, AwsUnavailable):
        return True
    names = {cls.__name__ for cls in type(error).__mro__}
    return bool(names & {"NoCredentialsError", "NoRegionError", "EndpointConnectionError", "ConnectTimeoutError",
                         "ReadTimeoutError", "ConnectionClosedError", "PartialCredentialsError"})  # fmt: skip


def why_not(error: BaseException, action: str) -> str:
    """One redacted line saying why `action` (an IAM action, "logs:GetLogEvents") could not be done: a
    refusal names the permission it lacks ("AccessDeniedException: ... (needs logs:GetLogEvents)"), a
    silence names the endpoint ("no answer from https://logs.us-east-1.amazonaws.com in the time allowed")."""
    code = error_code(error)
    if isinstance(error, AwsUnavailable):
        line = error.one_line()
    elif code is not None:
        message = _TAG.sub(" ", error_message(error))  # an HTTP error page where the API's answer was due
        line = f"{code}: {message}"
        if code in ACCESS_DENIED_CODES or "not authorized" in message:
            named = _ACTION_IN_MESSAGE.search(message)
            line += f" (needs {named.group(1) if named else action})"
        else:
            line += f" (asking {action})"
    elif is_unavailable(error):
        endpoint = getattr(error, "kwargs", {}).get("endpoint_url") or action.partition(":")[0]
        name = type(error).__name__
        if name in {"ReadTimeoutError", "ConnectTimeoutError"}:
            line = f"no answer from {endpoint} in the time allowed ({name}, asking {action})"
        else:
            line = f"{name}: {error} (asking {action})"
    else:
        line = f"{type(error).__name__}: {error} (asking {action})"
    line = " ".join(line.split())
    return process_redactor().text(line if len(line) <= MAX_LINE else line[: MAX_LINE - 1] + "…")


def asked(action: str, call: Callable, **params):
    """`call(**params)`; an error it raises carries `action`, the IAM action the caller then names."""
    try:
        return call(**params)
    except Exception as exc:
        exc.action = action
        raise


def in_parallel(read: Callable, items: list, deadline: Deadline | None = None, late: Callable | None = None) -> list:
    """`read(item)` for every item, PARALLEL_CALLS at a time, in daemon threads (a stalled call never holds the
    process's exit), results in the items' order. Without a deadline: every call is waited for, and the first
    error raised once all are done. With `deadline` (and `late`): no call starts once it is spent, the wait
    ends then, and each item not read by then is `late(item)`; an error is still raised (a `read` that must
    not fail catches its own)."""
    results: list = [None] * len(items)
    pending = queue.SimpleQueue()
    for entry in enumerate(items):
        pending.put(entry)
    failures: list[Exception] = []
    done: set[int] = set()
    lock = threading.Lock()
    closed = threading.Event()

    def work() -> None:
        while not closed.is_set() and (deadline is None or deadline.left() > 0):
            try:
                index, item = pending.get_nowait()
            except queue.Empty:
                return
            try:
                value = read(item)
            except Exception as exc:  # noqa: BLE001 - raised below, in the caller's thread
                failures.append(exc)
                continue
            with lock:
                if not closed.is_set():
                    results[index] = value
                    done.add(index)

    workers = [threading.Thread(target=work, daemon=True) for _ in range(min(PARALLEL_CALLS, len(items)))]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(None if deadline is None else deadline.left())
    with lock:
        closed.set()
        missing = [index for index in range(len(items)) if index not in done]
    if failures:
        raise failures[0]
    if missing and deadline is not None and late is not None:
        for index in missing:
            results[index] = late(items[index])
    return results
