"""``live --http``: refused off loopback without a token, a bad address or a taken port is one line,
before anything starts."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.conftest import free_endpoint
from tests.helpers import run_cli
from tests.integration.test_cli_checks import one_line_error

pytestmark = pytest.mark.timeout(60)


def live(tmp_path: Path, *args: str, env: dict[str, str] | None = None):
    return run_cli("live", "--feed", "external", "--db", str(tmp_path / "x.db"), "--duration", "5",
                   "--ingress", free_endpoint(), "--control", free_endpoint(), "--events", free_endpoint(), *args,
                   env=env)


def test_http_off_loopback_without_a_token_refuses_to_start(tmp_path: Path) -> None:
    port = free_endpoint().rsplit(":", 1)[1]
    result = live(tmp_path, "--http", f"0.0.0.0:{port}")
    one_line_error(result, 1, f"cannot start: refusing to serve HTTP on 0.0.0.0:{port}", "TRADING_HTTP_TOKEN")
    assert not (tmp_path / "x.db").exists()


def test_a_token_too_short_is_one_line_naming_the_key(tmp_path: Path) -> None:
    port = free_endpoint().rsplit(":", 1)[1]
    result = live(tmp_path, "--http", f"0.0.0.0:{port}", env={"TRADING_HTTP_TOKEN": "short"})
    one_line_error(result, 1, "'http.token' must be at least 16 characters")
    assert not (tmp_path / "x.db").exists()


@pytest.mark.parametrize("value", ["8780", "tcp://127.0.0.1:8780", "127.0.0.1:0", "*:8780"])
def test_a_malformed_http_address_is_one_line(value: str, tmp_path: Path) -> None:
    one_line_error(live(tmp_path, "--http", value), 2, "--http", repr(value))
    assert not (tmp_path / "x.db").exists()


def test_a_taken_http_port_is_named_before_anything_starts(tmp_path: Path) -> None:
    host, port = free_endpoint().removeprefix("tcp://").split(":")
    with socket.socket() as holder:
        holder.bind((host, int(port)))
        holder.listen()
        result = live(tmp_path, "--http", f"{host}:{port}")
    one_line_error(result, 1, f"http endpoint tcp://{host}:{port} is in use")
    assert not (tmp_path / "x.db").exists()
