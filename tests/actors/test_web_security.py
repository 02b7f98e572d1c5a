"""Who may use the HTTP server, and the settings that say where it listens."""

from __future__ import annotations

import pytest

from actors.web.security import authorized, http_access
from settings import SettingsError, check_listen, is_loopback_host, load_settings

pytestmark = pytest.mark.timeout(10)

TOKEN = "s3cret-token-0123456789"


@pytest.mark.parametrize("host, loopback", [("127.0.0.1", True), ("127.5.6.7", True), ("::1", True),
                                            ("localhost", True), ("0.0.0.0", False), ("::", False),
                                            ("192.168.1.10", False), ("example.org", False)])
def test_loopback_hosts_are_told_from_exposed_ones(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


def test_an_exposed_address_needs_a_token_and_loopback_does_not() -> None:
    assert http_access("127.0.0.1:8780", "") == ("127.0.0.1", 8780)
    assert http_access("[::1]:8780", "") == ("::1", 8780)
    assert http_access("0.0.0.0:8780", TOKEN) == ("0.0.0.0", 8780)
    assert http_access("off", "") is None
    with pytest.raises(ValueError, match=r"refusing to serve HTTP on 0\.0\.0\.0:8780: .* requires a token"):
        http_access("0.0.0.0:8780", "")


@pytest.mark.parametrize("header, query, ok", [
    (None, None, False), ("Bearer " + TOKEN, None, True), ("bearer " + TOKEN, None, True), (None, TOKEN, True),
    ("Bearer wrong-token-0123456789", None, False), (None, "wrong", False), ("Basic " + TOKEN, None, False),
    ("Bearer ", None, False), (None, "", False), ("Bearer wrong", TOKEN, False),
])
def test_a_request_passes_only_with_the_token(header: str | None, query: str | None, ok: bool) -> None:
    assert authorized(TOKEN, header, query) is ok


def test_without_a_token_configured_every_request_passes() -> None:
    assert authorized("", None, None)


@pytest.mark.parametrize("text, expected", [("127.0.0.1:8780", ("127.0.0.1", 8780)), ("localhost:1", ("localhost", 1)),
                                            ("[::1]:65535", ("::1", 65535)), ("off", None), ("OFF", None)])
def test_listen_addresses_are_host_and_port_or_off(text: str, expected: tuple[str, int] | None) -> None:
    assert check_listen(text) == expected


@pytest.mark.parametrize("text", ["8780", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000", "*:8780", ":8780",
                                  "tcp://127.0.0.1:8780", "127.0.0.1:http"])
def test_bad_listen_addresses_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="port|HOST:PORT"):
        check_listen(text)


def test_http_settings_are_validated_naming_the_key() -> None:
    assert load_settings(env={}).http.listen == "127.0.0.1:8780"
    assert load_settings(env={"TRADING_HTTP_TOKEN": TOKEN}).http.token == TOKEN
    with pytest.raises(SettingsError, match="'http.listen'"):
        load_settings(env={"TRADING_HTTP_LISTEN": "8780"})
    with pytest.raises(SettingsError, match="'http.token' must be at least 16 characters"):
        load_settings(env={"TRADING_HTTP_TOKEN": "short"})
    with pytest.raises(SettingsError, match="'http.token' must be printable"):
        load_settings(overrides={"http.token": "with a space in it 0123"}, env={})
    with pytest.raises(SettingsError, match="'http.push_s'"):
        load_settings(overrides={"http.push_s": 0}, env={})
