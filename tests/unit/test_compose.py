import shutil

import pytest

from agent.host.compose import choose_compose, probe_compose

DOCKER = "/usr/bin/docker"


@pytest.mark.parametrize(
    "plugin_version, standalone, expected",
    [
        ("Docker Compose version v2.27.0", None, ["docker", "compose"]),
        ("Docker Compose version v2.27.0", "/usr/bin/docker-compose", ["docker", "compose"]),
        # A v5 plugin's version line lacks "v2": SDK v2 ignores it and needs the standalone binary.
        ("Docker Compose version v5.0.1", "/usr/bin/docker-compose", ["docker-compose"]),
        ("Docker Compose version v5.0.1", None, None),
        (None, "/usr/bin/docker-compose", ["docker-compose"]),
        (None, None, None),
    ],
)
def test_compose_choice_mirrors_sdk_v2(plugin_version, standalone, expected):
    assert choose_compose(DOCKER, plugin_version, standalone).command == expected


def test_without_a_docker_cli_nothing_can_be_run():
    assert choose_compose(None, None, "/usr/bin/docker-compose").command is None


def test_probe_finds_what_is_really_on_path(tmp_path, monkeypatch):
    """Only the standalone docker-compose on PATH: the probe must fall back to it, as SDK v2 does."""
    real = shutil.which("docker-compose", path="/usr/bin")
    assert real, "docker-compose is missing: run tests/install-bed.sh"
    (tmp_path / "docker-compose").symlink_to(real)
    monkeypatch.setenv("PATH", str(tmp_path))
    found = probe_compose()
    assert found.docker_cli is None and found.standalone == str(tmp_path / "docker-compose")
    assert found.command is None  # the SDK's `docker compose version` call dies first (FileNotFoundError)
