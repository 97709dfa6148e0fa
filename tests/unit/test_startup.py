"""Start-up: the commands a user runs on a busy notebook load only what they use (bench/startup.py measures
the CPU time), and logging is still there for the commands that log."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.failures.classify import classify
from agent.failures.store import save
from agent.failures.types import Evidence, Report

LOGGING_LIBRARIES = {"structlog", "rich"}
"""What logging loads at the first event (structlog, and the rich its console renderer uses)."""


def modules_loaded(args: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess, set[str]]:
    """The command's run, and every module its interpreter imported (-X importtime lists each once)."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "agent", *args], env=env, capture_output=True,
                          text=True)  # fmt: skip
    lines = [line for line in done.stderr.splitlines() if line.startswith("import time:")]
    return done, {line.split("|")[-1].strip() for line in lines}


@pytest.fixture
def one_report(hermetic_env) -> dict:
    """The state dir holds one report, stored as the recorder stores it; that report."""
    evidence = Evidence.from_dict({
        "call": {"kind": "fit", "class_name": "Estimator", "instance_type": "local"},
        "exception": {"type": "RuntimeError", "message": "Failed to run: [...]. Process exited with code: 1"},
        "containers": [{"name": "abc-algo-1-x", "exit_code": 1, "logs": ["OSError: [Errno 28] No space left"]}],
    })  # fmt: skip
    state_dir = Path(hermetic_env["SMDIAG_STATE_DIR"])
    return save(Report(time.time(), evidence, classify(evidence)), {}, state_dir)[1]


@pytest.mark.parametrize("args", [["--help"], ["last-failure"], ["failures", "list"], ["last-failure", "--json"]])
def test_reading_reports_and_help_do_not_load_the_logging_libraries(args, hermetic_env, one_report):
    done, loaded = modules_loaded(args, hermetic_env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "agent.cli.app" in loaded
    if args != ["--help"]:
        assert one_report["category"] in done.stdout and "agent.failures.store" in loaded and "agent.log" in loaded
    assert {name.split(".")[0] for name in loaded} & LOGGING_LIBRARIES == set()


def test_a_logger_loads_structlog_at_its_first_event_and_logs_as_before(tmp_path):
    program = """
import sys
from pathlib import Path
from agent import log

events = log.get_logger("startup-test")
log.configure(Path(sys.argv[1]), verbose=True)
print("configured:", sorted(sys.modules.keys() & {"structlog", "rich"}))
events.info("startup.event", answer=42, password="hunter2-is-secret")
try:
    raise ValueError("boom")
except ValueError:
    events.exception("startup.crashed")
"""
    log_file = tmp_path / "logs" / "agent.log"
    done = subprocess.run([sys.executable, "-c", program, str(log_file)], capture_output=True, text=True, check=True)
    assert done.stdout == "configured: []\n"
    info, crashed = (json.loads(line) for line in log_file.read_text().splitlines())
    assert info["event"] == "startup.event" and info["answer"] == 42 and info["level"] == "info"
    assert info["logger"] == "smdiag.startup-test" and info["timestamp"].endswith("Z")
    assert info["password"] == "[redacted]" and "hunter2" not in done.stderr
    assert crashed["level"] == "error" and "Traceback (most recent call last)" in crashed["exception"]
    assert "startup.event" in done.stderr and "answer=42" in done.stderr  # --verbose: readable, on stderr
    assert "startup.crashed" not in done.stderr and "Traceback" not in done.stderr  # a traceback: the file only
