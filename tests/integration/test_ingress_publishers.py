"""The bound on connected publishers (``ingress.max_publishers``), over real sockets."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest
import zmq

from actors.control.security import generate_keypair, load_curve, secure_client
from actors.feed.actor import IngressSocket
from actors.feed.publisher import Publisher
from messages.market import Tick
from settings import Settings, SettingsError, load_settings
from supervisors.deps import Deps
from supervisors.system import System
from tests.conftest import free_endpoint
from tests.helpers import ctl, wait_until

pytestmark = pytest.mark.timeout(60)

MINUTE = 60_000_000_000


def tick(ts: int, seq: int) -> Tick:
    return Tick("BTCUSD", ts, 100.0, 100.02, 100.01, 1.0, "p", seq)


def test_publishers_over_the_bound_are_refused_and_counted_until_one_leaves(live_settings: Settings) -> None:
    settings = dataclasses.replace(live_settings, ingress=dataclasses.replace(live_settings.ingress,
                                                                              max_publishers=2))
    endpoint, control = settings.ingress.endpoint, settings.control.endpoint
    ingress = IngressSocket(endpoint, 1000, None, settings.ingress.max_publishers)
    system = System(settings, "live", Deps.of(settings, "live", ingress=ingress))
    system.start()
    publishers: list[Publisher] = []
    ts = time.time_ns() - MINUTE

    def counters() -> dict:
        return ctl(control, "metrics")["counters"]

    def received(count: int) -> dict:
        return wait_until(lambda: (c := counters())["ticks_received"] >= count and c, 20, f"{count} ticks received")

    try:
        first, second = Publisher(endpoint), Publisher(endpoint)
        publishers += [first, second]
        for publisher in (first, second):
            publisher.wait_for_subscriber()  # its handshake was let through
        first.send_tick(tick(ts, 1))
        second.send_tick(tick(ts + 1, 2))
        assert received(2)["ticks_accepted"] == 2
        assert wait_until(lambda: ctl(control, "health")["publishers"] == {"ingress": 2}, 10, "2 publishers shown")

        third = Publisher(endpoint)
        publishers.append(third)
        wait_until(lambda: counters()["publishers_refused"] >= 1, 10, "the third publisher refused")
        with pytest.raises(TimeoutError):
            third.wait_for_subscriber(timeout=0.5)  # refused: no subscription ever reaches it
        third.send_tick(tick(ts + 2, 3))  # goes nowhere
        second.send_tick(tick(ts + 3, 4))
        after = received(3)
        assert after["ticks_received"] == 3  # the third's tick never arrived

        for gone in (third, first):  # the third stops retrying (every retry is refused and counted), the first leaves
            gone.socket.close(0)
            publishers.remove(gone)
        wait_until(lambda: ctl(control, "health")["publishers"] == {"ingress": 1}, 10, "the first one gone")
        fourth = Publisher(endpoint)
        publishers.append(fourth)
        fourth.wait_for_subscriber()
        fourth.send_tick(tick(ts + 4, 5))
        final = received(4)
        assert final["ticks_received"] == final["ticks_accepted"] == 4
        assert final["publishers_refused"] >= 1
        assert wait_until(lambda: ctl(control, "health")["publishers"] == {"ingress": 2}, 10, "2 publishers again")
    finally:
        for publisher in publishers:
            publisher.socket.close(0)
        system.stop()


def test_max_publishers_is_validated() -> None:
    with pytest.raises(SettingsError, match="ingress.max_publishers"):
        load_settings(env={}, overrides={"ingress.max_publishers": "0"})
    assert load_settings(env={}, overrides={}).ingress.max_publishers == 16


def test_a_curve_ingress_lets_in_authorised_keys_only_and_bounds_them(tmp_path: Path) -> None:
    server_public, server_secret = generate_keypair(tmp_path / "server", "server")
    _, known_secret = generate_keypair(tmp_path / "clients", "feeder")
    _, stranger_secret = generate_keypair(tmp_path / "others", "stranger")
    endpoint = free_endpoint()
    ingress = IngressSocket(endpoint, 1000, load_curve(str(server_secret), str(tmp_path / "clients")), 1)
    sub = ingress.socket()
    clients = []

    def client(secret: Path) -> zmq.Socket:
        sock = zmq.Context.instance().socket(zmq.XPUB)
        sock.setsockopt(zmq.LINGER, 0)
        secure_client(sock, str(server_public), str(secret))
        sock.connect(endpoint)
        clients.append(sock)
        return sock

    def subscribed(sock: zmq.Socket, seconds: float) -> bool:
        """Whether the ingress's subscription reaches ``sock`` within ``seconds`` (the ingress, read by
        no feed here, is polled meanwhile: it sends its subscription to a new peer when it runs)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            sub.poll(10)
            if sock.poll(10):
                sock.recv()
                return True
        return False

    try:
        assert not subscribed(client(stranger_secret), 0.5)  # an unknown key: refused, never subscribed to
        assert ingress.publishers()[1] == 0  # not a refusal for the bound
        known = client(known_secret)
        assert subscribed(known, 10)
        known.send_multipart([b"t", b"x"])
        assert sub.poll(10_000) and sub.recv_multipart() == [b"t", b"x"]
        assert not subscribed(client(known_secret), 0.5)  # a second one, over max_publishers=1
        assert wait_until(lambda: ingress.publishers()[1], 10, "the refusal counted") >= 1
    finally:
        for sock in clients:
            sock.close(0)
        ingress.close()
