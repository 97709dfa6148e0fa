"""The fault suite's short form (bench/faults.py --short) on the bed: SIGKILLs of bootstrap at several
phases followed by use and a rerun, a target that fills up or runs out of inodes, a truncated daemon.json,
an engine that dies on the new root, diskguard racing container starts, planted secrets. No object lost,
no secret leaked, and every fault really produced."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.bed

REPO = Path(__file__).resolve().parents[2]


def test_short_fault_suite_loses_nothing_and_leaks_nothing(bed_ready):
    done = subprocess.run(
        [sys.executable, "-m", "bench.faults", "--short", "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    assert done.stdout.strip(), done.stderr[-4000:]
    report = json.loads(done.stdout)
    figures = report["figures"]
    table = done.stderr[-6000:]
    assert (report["lost"], report["leaked"]) == (0, 0), table
    assert report["failures"] == [] and done.returncode == 0, table

    killed = figures["sigkill"]
    assert killed["runs"] >= 2 and killed["missed_kills"] == 0
    assert set(killed["phases_hit"]) & {"config_written", "starting", "verifying"}, killed["phases_hit"]
    assert killed["lost_objects"] == 0 and killed["intact"] == killed["runs"], table
    for name in ("enospc", "inodes", "truncated", "engine_killed"):
        assert figures[name]["fault_hit"] == figures[name]["runs"] == figures[name]["clean"], (name, table)
    assert figures["diskguard"]["images_removed_by_guard"] > 0 and figures["diskguard"]["in_use_images_lost"] == 0
    assert figures["secrets"]["canary_seen_in"] and figures["secrets"]["leaked"] == 0
