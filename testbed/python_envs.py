"""Python environments for the SDKs and the users' kernels: venvs that see the host's packages or an SDK's,
and SDK installs built once per machine and kept (under a lock: concurrent runs wait for one build)."""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path


def host_packages_venv(path: Path) -> Path:
    """A bare virtual environment that sees the host's packages (the SDK) through a plain path entry, not
    smdiag itself (its editable install needs its own .pth processed): a user's environment beside ours."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    site = next(path.glob("lib/python3.*/site-packages"))
    (site / "host-packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return path


SDK_V3_REQUIREMENT = "sagemaker>=3.27,<4"
SDK_BUILD_TIMEOUT_S = 1800


def built_once(cache: Path, kind: str, inputs: str, build) -> Path:
    """`build(path)` run once per machine for these `inputs`, its result kept under `cache`: keyed by the
    inputs, built under a lock (a concurrent run waits, then uses it), and complete only once its marker is
    written (a build killed midway is redone by the next run, under the same lock)."""
    key = hashlib.sha256(inputs.encode()).hexdigest()[:12]
    path = cache / f"{kind}-{key}"
    marker = path / "smdiag-test-complete"
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / f"{kind}-{key}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists():
            return path
        if path.exists():
            shutil.rmtree(path)  # under the lock: a build of this key that a killed run left unfinished
        print(f"\nbed: building {kind} for {inputs!r} in {path} (once per machine)", file=sys.stderr)
        build(path)
        marker.write_text(inputs + "\n")
    return path


def cached_sdk_venv(cache: Path, requirement: str) -> Path:
    """A virtual environment with `requirement` installed, built once per machine and kept."""

    def build(path: Path) -> None:
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
        subprocess.run(
            [str(path / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", requirement],
            check=True, timeout=SDK_BUILD_TIMEOUT_S,
        )  # fmt: skip

    return built_once(cache, "sdk-venv", requirement, build)


def packages_venv(path: Path, site_packages: str) -> Path:
    """A bare virtual environment that sees `site_packages` (an SDK) through a plain path entry."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    site = next(path.glob("lib/python3.*/site-packages"))
    (site / "sdk-packages.pth").write_text(site_packages + "\n")
    return path


def site_packages_of(venv: Path) -> str:
    return str(next(venv.glob("lib/python3.*/site-packages")))


def cached_packages_dir(cache: Path, requirements: tuple[str, ...]) -> Path:
    """`requirements` installed with pip's `--target` into a directory under `cache` that every user can read,
    for a program run as an ordinary user with the system's interpreter (this machine's Python lives under
    /root, which uid 1000 cannot read). Built once per machine and kept."""

    def build(path: Path) -> None:
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--target", str(path),
             *requirements],
            check=True, timeout=SDK_BUILD_TIMEOUT_S,
        )  # fmt: skip
        for directory in [path, *(p for p in path.rglob("*") if p.is_dir())]:
            directory.chmod(0o755)

    return built_once(cache, "packages", "\n".join(requirements), build)
