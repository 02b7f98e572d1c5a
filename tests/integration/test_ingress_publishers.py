"""The bound on connected publishers (``ingress.max_publishers``), over real sockets."""

from __future__ import annotations

import dataclasses
import time

import pytest

from actors.feed.actor import IngressSocket
from actors.feed.publisher import Publisher
from messages.market import Tick
from settings import Settings, SettingsError, load_settings
from supervisors.deps import Deps
from supervisors.system import System
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
        wait_until(lambda: counters()["publishers_refused"] == 1, 10, "the third publisher refused")
        with pytest.raises(TimeoutError):
            third.wait_for_subscriber(timeout=0.5)  # refused: no subscription ever reaches it
        third.send_tick(tick(ts + 2, 3))  # goes nowhere
        second.send_tick(tick(ts + 3, 4))
        after = received(3)
        assert after["ticks_received"] == 3 and after["publishers_refused"] == 1

        first.socket.close(0)
        publishers.remove(first)
        wait_until(lambda: ctl(control, "health")["publishers"] == {"ingress": 1}, 10, "the first one gone")
        fourth = Publisher(endpoint)
        publishers.append(fourth)
        fourth.wait_for_subscriber()
        fourth.send_tick(tick(ts + 4, 5))
        final = received(4)
        assert final["ticks_received"] == final["ticks_accepted"] == 4
        assert final["publishers_refused"] == 1
        assert wait_until(lambda: ctl(control, "health")["publishers"] == {"ingress": 2}, 10, "2 publishers again")
    finally:
        for publisher in publishers:
            publisher.socket.close(0)
        system.stop()


def test_max_publishers_is_validated() -> None:
    with pytest.raises(SettingsError, match="ingress.max_publishers"):
        load_settings(env={}, overrides={"ingress.max_publishers": "0"})
    assert load_settings(env={}, overrides={}).ingress.max_publishers == 16
