"""The journal on real files: undo registered before each change, one replay for rollback and recovery."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from agent.host import kernels
from agent.journal import Journal, append_line, read_lines, restore_inline, signals_blocked
from agent.statedir import StateDir


def test_replay_restores_files_then_runs_commands_then_removes_what_was_created(tmp_path):
    config, backup = tmp_path / "daemon.json", tmp_path / "daemon.json.bak"
    config.write_text("old\n")
    backup.write_text("old\n")
    made, staging = tmp_path / "made.txt", tmp_path / "staging"
    journal = Journal(tmp_path / "journal.json")
    journal.begin(what="test")
    journal.will("created", path=str(staging))
    staging.mkdir()
    (staging / "half").write_text("x")
    journal.will("command", action="restart", root="/old")
    journal.will("restore", path=str(config), backup=str(backup))
    config.write_text("new\n")
    journal.will("restore", path=str(made), backup=None)
    made.write_text("new\n")
    seen = []

    def restart(step):
        seen.append((step["root"], config.read_text(), staging.exists()))  # files back, staging not yet gone
        return "restarted"

    done = journal.replay({"restart": restart})
    assert seen == [("/old", "old\n", True)]
    assert config.read_text() == "old\n" and not made.exists() and not staging.exists()
    assert done == [f"restored {made} (removed)", f"restored {config} from {backup}", "restarted", f"removed {staging}"]
    assert not journal.path.exists()


def test_a_created_file_that_is_no_longer_ours_is_left_alone(tmp_path):
    shim = tmp_path / "docker-compose"
    journal = Journal(tmp_path / "journal.json")
    journal.begin()
    journal.will("created", path=str(shim), mark="# ours")
    shim.write_text("someone else's\n")
    assert journal.replay() == [] and shim.read_text() == "someone else's\n"


def test_a_command_step_without_its_handler_is_refused_before_anything_is_undone(tmp_path):
    target = tmp_path / "f"
    journal = Journal(tmp_path / "journal.json")
    journal.begin()
    journal.will("restore", **restore_inline(target))
    target.write_text("new")
    journal.will("command", action="restart")
    with pytest.raises(ValueError, match="restart"):
        journal.replay({})
    assert target.exists() and journal.path.exists()


def test_a_process_killed_mid_transaction_is_undone_by_the_next_load_and_replay(tmp_path):
    kept = tmp_path / "kept.py"
    kept.write_bytes(b"\xffold bytes\n")
    kept.chmod(0o640)
    made = tmp_path / "made"
    child = textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        from agent.journal import Journal, restore_inline
        j = Journal(Path({str(tmp_path / "journal.json")!r}))
        j.begin(command="test")
        j.will("restore", **restore_inline(Path({str(kept)!r})))
        Path({str(kept)!r}).write_text("new")
        j.will("created", path={str(made)!r})
        Path({str(made)!r}).mkdir()
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    done = subprocess.run([sys.executable, "-c", child], capture_output=True)
    assert done.returncode == -signal.SIGKILL, done.stderr
    journal = Journal(tmp_path / "journal.json")
    assert journal.load()["command"] == "test"
    journal.replay()
    assert kept.read_bytes() == b"\xffold bytes\n" and kept.stat().st_mode & 0o777 == 0o640
    assert not made.exists() and journal.load() is None


def test_a_kernels_enable_killed_half_way_is_undone_by_the_next_one(tmp_path):
    """The killed run wrote a .pth into an environment the next run is not asked about: the next run's
    recovery removes it, so what a killed enable did never outlives it unseen."""
    env = tmp_path / "envs" / "old"
    site = env / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    (env / "bin").mkdir()
    (env / "bin" / "python").symlink_to(sys.executable)
    state = StateDir(tmp_path / "state")
    child = textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        from agent.host import kernels
        from agent.journal import Journal
        j = Journal(Path({str(state.kernels / "journal.json")!r}))
        j.begin(command="kernels enable")
        kernels._write(j, Path({str(site / kernels.PTH_NAME)!r}), "import os\\n")
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    assert subprocess.run([sys.executable, "-c", child]).returncode == -signal.SIGKILL
    assert (site / kernels.PTH_NAME).exists()
    result = kernels.enable(state.root, [str(tmp_path / "none" / "*")], Path(sys.executable))
    assert result["ok"] and result["environments"] == []
    assert not (site / kernels.PTH_NAME).exists() and (state.kernel_hook / "config.json").exists()
    assert not (state.kernels / "journal.json").exists()


def test_a_history_line_torn_by_a_kill_is_skipped(tmp_path):
    history = tmp_path / "journal.jsonl"
    append_line(history, {"run": "a", "undo": []})
    with open(history, "a") as handle:
        handle.write('{"run": "b", "und')
    assert [r["run"] for r in read_lines(history)] == ["a"]


def test_a_fix_killed_after_writing_its_shim_is_taken_back_by_fix_undo(tmp_path, hermetic_env, smdiag):
    """A killed fix is not undone behind the user's back (a failed one is not either): `smdiag fix --undo`
    finds it and replays its undo, as for a fix that finished."""
    shim = tmp_path / "bin" / "docker-compose"
    child = textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        from agent.engine import Engine
        from agent.fix.history import open_journal
        from agent.fix.registry import REMEDIES
        from agent.fix.remedy import Action, Context, FixOptions, Step
        from agent.settings import Settings
        settings = Settings.load()
        journal = open_journal(settings)
        journal.begin(run="killed", report=None, remedy="compose_shim", actions=[])
        action = Action("write_shim", {str(shim)!r}, "write the shim")
        options = FixOptions(bin_dir=Path({str(shim.parent)!r}))
        context = Context(settings, Engine(settings.docker_host), options)
        REMEDIES["compose_shim"].act(context, action, Step(journal, action))
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    assert subprocess.run([sys.executable, "-c", child], env=hermetic_env).returncode == -signal.SIGKILL
    assert shim.exists()
    undone = smdiag("fix", "--undo", "--json")
    assert undone.returncode == 0, undone.stderr
    assert json.loads(undone.stdout)["undone"] == [f"removed {shim}"] and not shim.exists()
    again = smdiag("fix", "--undo", "--json")
    assert again.returncode == 1 and "no fix to undo" in again.stderr


def test_a_child_started_while_signals_are_held_still_ends_on_sigterm():
    """A rollback restarts Docker inside the block: that daemon must still stop when asked."""
    with signals_blocked():
        child = subprocess.Popen(["sleep", "600"])
    try:
        child.terminate()
        assert child.wait(timeout=60) == -signal.SIGTERM
    finally:
        child.kill()
        child.wait()


def test_a_signal_held_by_the_block_is_delivered_when_it_ends(tmp_path):
    program = textwrap.dedent(
        """
        import os, signal, sys
        from agent.journal import signals_blocked
        signal.signal(signal.SIGTERM, lambda *_: print("SIGTERM handled", flush=True))
        with signals_blocked():
            os.kill(os.getpid(), signal.SIGTERM)
            print("block finished", flush=True)
        print("after the block", flush=True)
        """
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["block finished", "SIGTERM handled", "after the block"]
