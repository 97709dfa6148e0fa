"""`Engine(host)` against a real engine: one client, facts, answers, waiting for it, its events, its failures,
and the Docker service that holds one."""

from __future__ import annotations

import pytest

from agent.engine import Engine
from agent.errors import BadInput, Failed
from agent.service import detect_service


def test_one_engine_serves_a_command_across_a_restart_and_says_why_when_it_is_down(make_engine, tmp_path):
    daemon, disk = make_engine()
    with Engine(daemon.host) as engine:
        assert engine.answers()
        client = engine.client
        facts = engine.describe()
        assert facts.host == daemon.host and facts.root_dir == str(disk.path / "docker")
        assert engine.client is client  # made once: every use of the command shares it

        stream = engine.events({"type": ["volume"]})
        volume = client.volumes.create("engine-test")
        try:
            event = next(stream)
            assert (event["Type"], event["Action"], event["Actor"]["ID"]) == ("volume", "create", "engine-test")
        finally:
            stream.close()
            volume.remove()

        daemon.stop()
        assert not engine.answers()  # the bed's stop waits for the daemon to exit
        with pytest.raises(Failed) as down:
            engine.describe()
        assert down.value.problem.startswith(f"cannot reach the Docker engine at {daemon.host}: ")
        assert "start Docker" in down.value.fix
        with pytest.raises(Failed):
            engine.events()

        service = detect_service(daemon.stop_command(), daemon.start_command(), tmp_path / "no-systemd", engine)
        service.start()  # the service it holds is what it waits on
        assert engine.answers() and service.daemon_seconds > 0
        assert engine.describe().root_dir == facts.root_dir and engine.client is client  # no new client needed
        service.stop()
        assert not engine.answers()
    assert "client" not in vars(engine)  # closed with the block


def test_a_host_docker_cannot_use_is_bad_input_at_first_use_and_never_answers():
    engine = Engine("bogus://nowhere")  # building one attempts nothing
    assert not engine.answers()
    with pytest.raises(BadInput) as bad:
        engine.describe()
    assert "invalid docker host 'bogus://nowhere'" in bad.value.problem
