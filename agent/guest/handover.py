"""The hand-over to the recorder: a failed call's facts go to `python -m agent.record` in a subprocess of
the agent's interpreter, which gathers the evidence, stores the report and answers with its diagnosis;
the user gets it as a note on their exception and a short summary on stderr.

What is called here was bound when the guest was installed (`from subprocess import run`): a user's test
that patches `subprocess.run` around a failing local call sees only the SDK's calls in its mock.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
from subprocess import run

from .capture import Capture
from .config import AGENT, log_error
from .facts import FailureFacts, RaisedException

CREDENTIAL_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
"""A profile given by name wins over these in boto3 (they would win over AWS_PROFILE alone)."""
RECORD_TIMEOUT_S = 180
"""Evidence collection bounds each of its steps; this bounds the whole."""


def report(capture: Capture, exc: BaseException) -> None:
    """Write the report and tell the user (called guarded: our trouble never replaces their exception)."""
    facts = capture.facts(RaisedException.of(exc), exc)
    answer = _recorded(facts)
    if answer is None:
        return
    repair = "; to repair it, run `smdiag fix`" if answer.get("remedy") else ""
    note = f"smdiag: {answer['category']}: {answer['summary']} (details: smdiag last-failure{repair})"
    with contextlib.suppress(AttributeError):
        exc.add_note(note)
    print(
        f"\nsmdiag: {what_failed(facts)} [{answer['category']}]\n"
        f"  {one_line(answer['summary'])}\n"
        f"  hint: {answer['hint']}\n"
        f"  report: {answer['path']} (run `smdiag last-failure`)",
        file=sys.stderr,
    )


def report_answered_elsewhere(capture: Capture, port: int, holders: list[str]) -> None:
    """A deploy the SDK calls a success, on another endpoint: the one case where the guest adds to a call that
    raised nothing (the SDK is wrong there). The report, and one line on stderr."""
    holder = ", ".join(holders) or "a process outside the engine"
    said = f"deploy() returned, but /ping on port {port} was answered by {holder}: this call's container did not start"
    facts = capture.facts(RaisedException(type="", message=said))
    facts.answered_by = holders
    answer = _recorded(facts)
    line = f"smdiag: the endpoint answering on port {port} is not the one just deployed ({holder})"
    if answer:
        line += f" [{answer['category']}] report: {answer['path']} (run `smdiag last-failure`)"
    print(line, file=sys.stderr)


def what_failed(facts: FailureFacts) -> str:
    """The call, as the summary's first line names it: `local-mode fit failed`, `managed training job NAME
    failed`, `managed endpoint NAME failed`."""
    remote = facts.remote
    if remote is None:
        step = f" at step {facts.call.step!r}" if facts.call.step else ""
        return f"local-mode {facts.call.kind} failed{step}"
    resource = remote.resource if remote.resource == "endpoint" else f"{remote.resource} job"
    return " ".join(["managed", resource, *([remote.name] if remote.name else []), "failed"])


def _recorded(facts: FailureFacts) -> dict | None:
    """The recorder's answer; None when it failed (logged, and the user learns why no report follows)."""
    if facts.remote is None:  # a managed job's containers are not this machine's
        facts.container_root = facts.container_root or sdk_container_root()
    try:
        return record(facts)
    except Exception as problem:  # noqa: BLE001 - logged; the user learns why no report follows
        log_error("record", problem)
        print(f"smdiag: no failure report: {type(problem).__name__} (logged; see `smdiag doctor`)", file=sys.stderr)
        return None


def record(facts: FailureFacts) -> dict:
    """The recorder's answer (see agent.failures.record): it runs in the agent's interpreter, so that this
    process (a user's kernel) needs nothing beyond the standard library."""
    done = run(
        [AGENT.python, "-m", "agent.record"],
        input=facts.to_json(),
        capture_output=True,
        text=True,
        env=recorder_env(facts, os.environ),
        timeout=RECORD_TIMEOUT_S,
    )
    if done.returncode != 0:
        raise RuntimeError((done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1])
    return json.loads(done.stdout)


def recorder_env(facts: FailureFacts, environ) -> dict[str, str]:
    """The recorder's environment: this process's, its state dir, and for a managed call the identity the SDK
    used: a profile the SDK's session named wins, as boto3 lets a named profile win over credentials in the
    environment."""
    env = dict(environ)
    if AGENT.state_dir:
        env.setdefault("SMDIAG_STATE_DIR", AGENT.state_dir)
    if facts.remote is not None and facts.remote.profile:
        env["AWS_PROFILE"] = facts.remote.profile
        for variable in CREDENTIAL_VARIABLES:
            env.pop(variable, None)
    return env


def one_line(text: str, limit: int = 300) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def sdk_container_root() -> str | None:
    """The SDK's local-mode container_root, from its config file, without importing the SDK."""
    with contextlib.suppress(Exception):
        # Lazy: PyYAML is the SDK's dependency, there whenever a call is local; the guest loads without it.
        import yaml

        path = os.path.join(os.path.expanduser("~"), ".sagemaker", "config.yaml")
        with open(path) as f:
            return (yaml.safe_load(f) or {}).get("local", {}).get("container_root")
    return None
