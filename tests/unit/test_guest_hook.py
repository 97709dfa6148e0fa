"""`smdiag kernels enable` copies the guest package into the hook directory, on real files and a real
virtual environment: an older hook's one-module layout is upgraded (or put back when the enable fails), the
copy loads with the standard library alone, and `kernels disable` leaves nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from agent.host import kernels
from agent.statedir import StateDir

OLD_HOOK = b"import sys\n# the one-module hook of an older smdiag\n"
OLD_WRAPPER = b"# smdiag_autowrap: the older one-module wrapper\n"


@pytest.fixture
def env(tmp_path) -> Path:
    path = tmp_path / "envs" / "user"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    return path


def old_layout(state: StateDir) -> dict[Path, bytes]:
    """What an older `kernels enable` left: the hook beside its one-module wrapper, and that one's bytecode."""
    hook_dir = state.kernel_hook
    (hook_dir / "__pycache__").mkdir(parents=True)
    files = {
        hook_dir / "smdiag_kernel_hook.py": OLD_HOOK,
        hook_dir / "smdiag_autowrap.py": OLD_WRAPPER,
        hook_dir / "__pycache__" / "smdiag_autowrap.cpython-311.pyc": b"compiled",
    }
    for path, data in files.items():
        path.write_bytes(data)
    return files


def test_an_older_hook_is_upgraded_by_enable_and_removed_by_disable(tmp_path, env):
    state = StateDir(tmp_path / "state")
    old_layout(state)
    result = kernels.enable(state.root, [str(env)], Path(sys.executable))
    assert result["ok"] and result["environments"][0]["hook_loaded"], result
    hook_dir = state.kernel_hook
    assert not (hook_dir / "smdiag_autowrap.py").exists()
    assert not list(hook_dir.glob("__pycache__/smdiag_autowrap.*"))
    copied = sorted(str(p.relative_to(hook_dir)) for p in hook_dir.rglob("*.py") if "__pycache__" not in p.parts)
    assert copied == sorted(kernels.hook_files())
    assert "smdiag_agent/guest/install.py" in copied and "smdiag_agent/container_logs.py" in copied
    assert (hook_dir / "smdiag_kernel_hook.py").read_bytes() != OLD_HOOK

    disabled = kernels.disable(state.root, [str(env)])
    assert disabled["ok"] and not hook_dir.exists()
    assert not list(env.glob(f"lib/python3.*/site-packages/{kernels.PTH_NAME}"))


def test_an_enable_that_fails_puts_the_older_hook_back_as_it_was(tmp_path, env):
    state = StateDir(tmp_path / "state")
    files = old_layout(state)
    (state.kernel_hook / "config.json").mkdir()  # the config cannot be written: the enable fails after the copy
    with pytest.raises(OSError):
        kernels.enable(state.root, [str(env)], Path(sys.executable))
    for path, data in files.items():
        assert path.suffix == ".pyc" or path.read_bytes() == data  # bytecode is not kept: Python compiles it again
    assert not (state.kernel_hook / kernels.PACKAGE).exists()
    assert not (state.kernels / "journal.json").exists()


def test_the_copied_guest_loads_and_installs_with_the_standard_library_alone(tmp_path, env):
    """`-I -S`: no site-packages (so no docker-py, urllib3, PyYAML, SDK or smdiag), no PYTHONPATH."""
    state = StateDir(tmp_path / "state")
    assert kernels.enable(state.root, [str(env)], Path(sys.executable))["ok"]
    probe = f"""
import json, sys
sys.path.append({str(state.kernel_hook)!r})
before = list(sys.meta_path)
import smdiag_kernel_hook
imported_alone = sys.meta_path == before
smdiag_kernel_hook.watch()
from smdiag_agent.guest import install
installed = install.install()
outside = sorted(m for m in sys.modules if m.partition(".")[0] not in {*sys.stdlib_module_names, "__main__"}
                 and not m.startswith(("smdiag_agent", "smdiag_kernel_hook")))
print(json.dumps([imported_alone, type(sys.meta_path[0]).__name__, installed, outside]))
"""
    done = subprocess.run([sys.executable, "-I", "-S", "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [True, "PatchOnImport", True, []]
