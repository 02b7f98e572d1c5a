"""Settings of the ingress and control sockets: flow-control bounds and endpoints are validated, naming the key."""

from __future__ import annotations

import pytest

from settings import SettingsError, check_endpoint, load_settings

pytestmark = pytest.mark.timeout(10)


def test_flow_control_defaults() -> None:
    ingress = load_settings(env={}).ingress
    assert (ingress.max_in_flight, ingress.max_store_backlog, ingress.rcvhwm) == (20_000, 64, 250_000)


@pytest.mark.parametrize(("key", "value"), [("max_in_flight", "1"), ("max_store_backlog", "0"), ("rcvhwm", "0")])
def test_flow_control_bounds_are_checked(key: str, value: str) -> None:
    with pytest.raises(SettingsError, match=f"'ingress.{key}'"):
        load_settings(env={f"TRADING_INGRESS_{key.upper()}": value})


@pytest.mark.parametrize("key", ["ingress.endpoint", "ingress.cryptofeed", "control.endpoint", "control.events"])
def test_a_malformed_endpoint_names_its_key(key: str) -> None:
    with pytest.raises(SettingsError, match=f"'{key}'.*localhost:47399"):
        load_settings(env={}, overrides={key: "localhost:47399"})


def test_an_empty_cryptofeed_endpoint_switches_it_off() -> None:
    assert load_settings(env={}, overrides={"ingress.cryptofeed": ""}).ingress.cryptofeed == ""


@pytest.mark.parametrize("good", ["tcp://127.0.0.1:5555", "tcp://*:1", "tcp://[::1]:65535", "tcp://lo:5555",
                                  "tcp://example.com:80", "ipc:///tmp/ingress"])
def test_good_endpoints_pass(good: str) -> None:
    assert check_endpoint(good) == good


@pytest.mark.parametrize(("bad", "says"), [
    ("localhost:47399", "not an endpoint like"), ("tcp://host:port", "port must be a number"),
    ("tcp://127.0.0.1:70000", "port must be a number"), ("udp://127.0.0.1:5", "scheme must be"),
    ("tcp://:5555", "not an endpoint like"), ("ipc://", "no path"), ("", "not an endpoint like"),
])
def test_bad_endpoints_say_what_is_expected(bad: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        check_endpoint(bad)
