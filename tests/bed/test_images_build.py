"""`smdiag images build` in stages, in a private engine with the tests' build cache (the debootstrap base
and pip's installs, as a machine that ran the tests has them): each stage is said as it runs and listed
in the report, and an smdiag upgrade that changes only the contract rebuilds only the contract's layer
over the engine's packages image. The upgrade is a changed copy of the contract in the test's directory,
handed to the build as the contract it ships."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from agent import images
from agent.engine import Engine

pytestmark = pytest.mark.bed

CACHE = Path(os.environ.get("SMDIAG_TEST_CACHE", "/var/cache/smdiag-test")) / "build"
REGION = "us-east-1"


def upgraded_contract(tmp_path: Path, mark: str) -> Path:
    """The shipped contract plus a module-level name that only the upgrade has."""
    changed = tmp_path / "upgrade" / "smdiag_container.py"
    changed.parent.mkdir(parents=True, exist_ok=True)
    changed.write_text(images.CONTRACT.read_text() + f"\nUPGRADE_MARK = {mark!r}\n")
    return changed


def test_a_contract_upgrade_reuses_the_packages_and_the_image_runs_the_new_contract(
    make_engine, smdiag, tmp_path, monkeypatch
):
    monkeypatch.setenv("SAGEMAKER_SUPPRESS_V2_WARNING", "1")  # the build in this process resolves the URIs
    daemon, _disk = make_engine(size_mb=2048)
    env = {"DOCKER_HOST": daemon.host, "AWS_DEFAULT_REGION": REGION, "SMDIAG_CACHE_DIR": str(CACHE)}
    first = smdiag("images", "build", "--framework", "sklearn", "--json", env=env, timeout=900)
    assert first.returncode == 0, first.stderr
    built = json.loads(first.stdout)
    stages = {(s["framework"], s["stage"]): s for s in built["stages"]}
    assert not stages[("sklearn", "packages layer")]["reused"]  # a new engine has no packages image
    for said in ("sklearn: packages layer done in", "sklearn: contract layer done in", "sklearn: tag done in"):
        assert f"images build: {said}" in first.stderr  # progress while it runs
    [uri] = built["images"][0]["uris"]

    packages = images.packages_tag("sklearn")
    stale = packages.rsplit(":", 1)[0] + ":older-packages"
    with daemon.client() as client:  # a packages image of other inputs, as an earlier smdiag left it
        client.images.get(packages).tag(*stale.rsplit(":", 1))

    progress: list[str] = []
    with Engine(daemon.host, timeout=images.ENGINE_TIMEOUT_S) as engine:
        upgraded = images.build(
            engine,
            ["sklearn"],
            REGION,
            CACHE / "images",
            step=progress.append,
            contract=upgraded_contract(tmp_path, "v-next"),
        )
    report = images.format_result(upgraded)
    assert upgraded["images"][0]["action"] == "built", report
    assert f"packages layer   reused: {packages} in the engine" in report
    assert [(s["stage"], s["reused"]) for s in upgraded["stages"]] == [
        ("SDK's URIs", True),  # the first build's answer, for this SDK version
        ("packages layer", True),
        ("contract layer", False),
        ("tag", False),
    ], report  # no debootstrap, no pip, no packages layer
    assert any(line.startswith("sklearn: packages layer reused (") for line in progress), progress
    with daemon.client() as client:
        ran = client.containers.run(
            uri, ["python3", "-c", "import smdiag_container; print(smdiag_container.UPGRADE_MARK)"], remove=True
        )
        assert ran.decode().strip() == "v-next"
        tags = {tag for image in client.images.list() for tag in image.tags}
        assert built["images"][0]["image"] not in {image.id for image in client.images.list()}  # the old build is gone
        assert packages in tags and stale not in tags

    memory = tmp_path / "fresh-cache"  # a cache without the URIs: the SDK is asked, and again if unreadable
    for _ in range(2):
        with Engine(daemon.host, timeout=images.ENGINE_TIMEOUT_S) as engine:
            again = images.build(
                engine, ["sklearn"], REGION, memory, contract=upgraded_contract(tmp_path / "again", "v-next")
            )
        assert again["images"][0]["action"] == "current"
        assert [(s["stage"], s["reused"]) for s in again["stages"]] == [("SDK's URIs", False)]
        [remembered] = memory.glob("uris-sklearn-*.json")
        assert json.loads(remembered.read_text()) == [uri]
        remembered.write_text("{not json")


@contextlib.contextmanager
def unreadable_file(path: Path):
    """A file that even root cannot open for reading: a write-only sysfs attribute bound over it."""
    [attribute, *_] = sorted(Path("/sys/bus").glob("*/drivers/*/bind")) or [None]
    assert attribute is not None, "this test needs a write-only sysfs attribute (/sys/bus/*/drivers/*/bind)"
    path.touch()
    subprocess.run(["mount", "--bind", str(attribute), str(path)], check=True)
    try:
        yield
    finally:
        subprocess.run(["umount", str(path)], check=True)


def test_packages_that_cannot_be_read_fail_the_build_and_nothing_is_tagged(make_engine, smdiag, tmp_path):
    """A packages layer short of a file would be a broken image that looks built: tar's error is the
    build's, and the image made from the short context is not kept."""
    daemon, _disk = make_engine()
    cache = tmp_path / "cache" / "images"
    site = images.packages_dir(cache, "sklearn") / "site"
    site.mkdir(parents=True)
    (site.parent / "site.done").touch()
    base = CACHE / "images" / f"base-{images.base_fingerprint()}.tar"
    if base.exists():  # else this build makes it (debootstrap, a minute)
        os.link(base, cache / base.name)
    env = {"DOCKER_HOST": daemon.host, "AWS_DEFAULT_REGION": REGION, "SMDIAG_CACHE_DIR": str(cache.parent)}
    with unreadable_file(site / "broken.py"):
        done = smdiag("images", "build", "--framework", "sklearn", env=env, timeout=600)
    assert done.returncode == 1, done.stderr
    assert (
        f"reading the packages in {site} failed: tar: site/broken.py: Cannot open: Permission denied" in done.stderr
    ), done.stderr
    with daemon.client() as client:
        assert [image.tags for image in client.images.list()] == [
            [f"{images.BASE_REPOSITORY}:{images.base_fingerprint()}"]
        ]
