"""CURVE on the control socket, events for health changes, and the exposure rule."""

from __future__ import annotations

from pathlib import Path

import pytest
import zmq

from actors.control.client import request
from actors.control.security import control_security, generate_keypair, load_curve
from actors.feed.actor import IngressSocket
from messages.codec import unpackb
from messages.system import Crash
from settings import Settings
from supervisors.deps import Deps
from supervisors.system import System
from tests.conftest import free_endpoint
from tests.helpers import run_cli, start_cli, wait_until

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Path]:
    server_public, server_secret = generate_keypair(tmp_path / "server", "server")
    _, client_secret = generate_keypair(tmp_path / "clients", "alice")
    _, stranger_secret = generate_keypair(tmp_path / "strangers", "mallory")
    return {"server_public": server_public, "server_secret": server_secret, "clients": tmp_path / "clients",
            "client_secret": client_secret, "stranger_secret": stranger_secret}


def test_a_known_key_is_answered_and_an_unknown_key_gets_nothing(live_settings: Settings, keys) -> None:
    curve = load_curve(str(keys["server_secret"]), str(keys["clients"]))
    system = System(live_settings, "live", Deps.of(live_settings, "live", curve=curve,
                                                         ingress=IngressSocket(live_settings.ingress.endpoint, 1000)))
    system.start()
    try:
        endpoint = live_settings.control.endpoint
        reply = request(endpoint, {"cmd": "ping"}, 5.0, str(keys["server_public"]), str(keys["client_secret"]))
        assert reply == {"ok": True, "pong": True}
        with pytest.raises(TimeoutError):
            request(endpoint, {"cmd": "ping"}, 1.0, str(keys["server_public"]), str(keys["stranger_secret"]))
        with pytest.raises(TimeoutError):
            request(endpoint, {"cmd": "ping"}, 1.0)  # no CURVE at all
        assert request(endpoint, {"cmd": "health"}, 5.0, str(keys["server_public"]),
                       str(keys["client_secret"]))["status"] == "healthy"
    finally:
        system.stop()


def test_exposed_endpoints_need_curve(keys) -> None:
    with pytest.raises(ValueError, match="refusing to bind tcp://0.0.0.0:1: a non-loopback"):
        control_security(("tcp://0.0.0.0:1", "tcp://127.0.0.1:2"), "", "")
    with pytest.raises(ValueError, match="needs both"):
        control_security(("tcp://127.0.0.1:1",), str(keys["server_secret"]), "")
    with pytest.raises(ValueError, match="no secret key"):
        control_security(("tcp://0.0.0.0:1",), str(keys["server_public"]), str(keys["clients"]))
    assert control_security(("tcp://127.0.0.1:1", "ipc:///tmp/x"), "", "") is None
    assert control_security(("tcp://0.0.0.0:1",), str(keys["server_secret"]), str(keys["clients"])) is not None


def test_live_on_an_exposed_address_refuses_without_curve_and_starts_with_it(keys, tmp_path: Path) -> None:
    port = free_endpoint().rsplit(":", 1)[1]
    args = ("live", "--feed", "external", "--control", f"tcp://0.0.0.0:{port}", "--events", free_endpoint(),
            "--ingress", free_endpoint(), "--db", str(tmp_path / "x.db"))
    refused = run_cli(*args, "--duration", "5")
    assert refused.returncode == 1
    assert "refusing to bind tcp://0.0.0.0:" in refused.stderr and "Traceback" not in refused.stderr
    settings = tmp_path / "secure.toml"
    settings.write_text(f'[control]\ncurve_secret_key = "{keys["server_secret"]}"\ncurve_clients = "{keys["clients"]}"\n')
    process = start_cli(*args, "--settings", str(settings))
    try:
        endpoint = f"tcp://127.0.0.1:{port}"

        def answered() -> bool:
            try:
                return request(endpoint, {"cmd": "ping"}, 0.5, str(keys["server_public"]), str(keys["client_secret"]))["ok"]
            except TimeoutError:
                assert process.poll() is None, process.stderr.read()
                return False
        wait_until(answered, 20, "the secured control socket")
        cli = run_cli("ctl", "shutdown", "--control", endpoint, "--server-key", str(keys["server_public"]),
                      "--client-key", str(keys["client_secret"]))
        assert cli.returncode == 0, cli.stderr
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_keys_command_writes_a_pair_and_never_overwrites(tmp_path: Path) -> None:
    first = run_cli("keys", str(tmp_path), "--name", "ops")
    assert first.returncode == 0
    assert (tmp_path / "ops.key").exists() and (tmp_path / "ops.key_secret").exists()
    assert (tmp_path / "ops.key_secret").stat().st_mode & 0o077 == 0
    again = run_cli("keys", str(tmp_path), "--name", "ops")
    assert again.returncode == 1 and "already exists" in again.stderr


def test_health_changes_are_published_on_the_events_socket(live_settings: Settings) -> None:
    system = System(live_settings, "live", Deps.of(live_settings, "live",
                                                         ingress=IngressSocket(live_settings.ingress.endpoint, 1000)))
    system.start()
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"health.")
    sub.connect(live_settings.control.events)
    try:
        events: list[dict] = []

        def restarted_and_running() -> bool:
            # re-crash until the subscription is live (PUB drops what is sent before it joins)
            if not events:
                system.registry.tell("feature", Crash("events test"))
            while sub.poll(50):
                topic, body = sub.recv_multipart()
                events.append({"topic": topic.decode(), **unpackb(body)})
            return any(e.get("change") == "restarted" for e in events) and any(
                e["topic"] == "health.feature" and e.get("state") == "running" and e.get("from") == "restarting"
                for e in events)

        wait_until(restarted_and_running, 20, "health events for the feature restart")
        assert any(e["topic"] == "health.feature" and e.get("state") == "restarting" for e in events)
    finally:
        sub.close()
        system.stop()
