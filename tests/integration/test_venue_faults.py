"""Faults of a venue seen end to end: ``run.py live --venue binance`` as a subprocess against the loopback
Binance double (tests/doubles/binance_trading.py), driven through ccxt itself.

The circuit breaker opens when the venue fails ``venue.breaker_failures`` requests in a row (HTTP 500s or
429s injected on the double): orders are rejected with the reason and never sent, ``health`` is degraded,
an event says so; once the venue answers again it closes, with an event, and an order reaches the venue
once. A balance changed by hand on the double with no order or trade behind it is adopted, with an event,
in a symbol we had no order in; in a symbol with an order of ours it halts new orders on that symbol only,
``health`` degraded with the symbol under ``risk.symbols_halted``, and an event.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq

from actors.venue.session import venue_client_id
from messages.codec import unpackb
from tests.doubles.binance_trading import TradingBinance
from tests.helpers import ctl, wait_until
from tests.integration.test_venue import KEY, SECRET, SETTINGS, Live

pytestmark = pytest.mark.timeout(90)

BREAKER_SETTINGS = SETTINGS.replace("retries = 2\n", "retries = 0\nbreaker_failures = 3\n")
# every signed endpoint a poll or a reconciliation reads: the venue is down for all of them
POLLED = ("/api/v3/myTrades", "/api/v3/openOrders", "/api/v3/account", "/api/v3/ticker/24hr")


class Events:
    """A SUB socket on the events endpoint, subscribed to ``health.venue``."""

    def __init__(self, endpoint: str) -> None:
        self.socket = zmq.Context.instance().socket(zmq.SUB)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.SUBSCRIBE, b"health.venue")
        self.socket.connect(endpoint)
        self.seen: list[dict[str, Any]] = []

    def wait(self, change: str, timeout_s: float = 20.0, **fields: Any) -> dict[str, Any]:
        """The first event (seen before or arriving within ``timeout_s``) with this ``change`` and fields."""
        def matches(event: dict[str, Any]) -> bool:
            return event.get("change") == change and all(event.get(k) == v for k, v in fields.items())
        for event in self.seen:
            if matches(event):
                return event
        waited = 0
        while waited < timeout_s * 1000:
            if self.socket.poll(200):
                event = unpackb(self.socket.recv_multipart()[1])
                self.seen.append(event)
                if matches(event):
                    return event
            else:
                waited += 200
        raise AssertionError(f"no {change} event {fields} within {timeout_s}s; seen: {self.seen}")

    def drain(self) -> None:
        """Take in the events already arrived."""
        while self.socket.poll(0):
            self.seen.append(unpackb(self.socket.recv_multipart()[1]))

    def close(self) -> None:
        self.socket.close(0)


def _reconciled_twice(venue: TradingBinance) -> None:
    """Wait for two more balance reads (two reconciliations): a subscription made before is in place."""
    seen = venue.count("/api/v3/account", status=200)
    wait_until(lambda: venue.count("/api/v3/account", status=200) >= seen + 2, 20, "two more reconciliations")


def _health(live: Live) -> dict[str, Any]:
    return ctl(live.control, "health")


def _brief(health: dict[str, Any]) -> dict[str, Any]:
    return {k: health.get(k) for k in ("status", "risk", "stale", "late", "overload", "venue")}


@pytest.mark.parametrize("status", [500, 429])
def test_the_breaker_opens_after_consecutive_failures_rejects_orders_and_closes_when_the_venue_answers(
        tmp_path: Path, status: int) -> None:
    with TradingBinance(symbols=("BTC/USDT",), keys={KEY: SECRET}, balances={"USDT": 10_000.0},
                        prices={"BTC/USDT": 100.0}) as venue:
        live = Live(tmp_path, venue, settings=BREAKER_SETTINGS).start()
        events = Events(live.events)
        try:
            _reconciled_twice(venue)
            assert _health(live)["venue"]["breaker_open"] is False
            for path in POLLED:
                venue.fail(path, status, times=100_000)
            opened = events.wait("breaker_open")
            assert opened["detail"].startswith("binance: ") and "failed after 1 tries" in opened["detail"], opened
            health = wait_until(lambda: (h := _health(live))["venue"]["breaker_open"] and h, 10, "breaker in health")
            assert health["status"] == "degraded", _brief(health)
            assert health["venue"]["failures"] >= 3

            refused = ctl(live.control, "submit", symbol="BTC/USDT", side="buy", qty=0.5, type="market")
            client_id = refused["client_id"]
            wait_until(lambda: live.order(client_id).get("status") == "rejected", 20, "the order rejected")
            assert "circuit breaker open" in live.order(client_id)["reason"]
            assert venue.posts() == 0 and not venue.orders_with_client_id(venue_client_id(client_id))

            for path in POLLED:
                venue.heal(path)
            events.wait("breaker_closed")
            health = wait_until(lambda: (h := _health(live))["status"] == "healthy" and h, 10, "healthy again")
            assert health["venue"]["breaker_open"] is False and health["venue"]["failures"] == 0, _brief(health)

            sent = ctl(live.control, "submit", symbol="BTC/USDT", side="buy", qty=0.5, type="market")
            assert sent["ok"], sent
            wait_until(lambda: live.held() == pytest.approx(0.5), 20, "the fill in the position")
            _reconciled_twice(venue)
            assert len(venue.orders_with_client_id(venue_client_id(sent["client_id"]))) == 1
            assert venue.posts() == 1
            assert live.order(sent["client_id"])["status"] == "filled"
            assert not live.order(client_id).get("venue")  # the rejected one never reached the venue
        finally:
            events.close()
            live.stop()


@pytest.fixture
def venue() -> Iterator[TradingBinance]:
    """The double: BTC/USDT at 100 and ETH/USDT at 10, 10,000 USDT."""
    with TradingBinance(symbols=("BTC/USDT", "ETH/USDT"), keys={KEY: SECRET}, balances={"USDT": 10_000.0},
                        prices={"BTC/USDT": 100.0, "ETH/USDT": 10.0}) as double:
        yield double


def test_a_balance_change_nothing_explains_halts_that_symbol_and_one_in_an_untraded_symbol_is_adopted(
        tmp_path: Path, venue: TradingBinance) -> None:
    live = Live(tmp_path, venue, symbols="BTC/USDT,ETH/USDT").start()
    events = Events(live.events)
    try:
        bought = ctl(live.control, "submit", symbol="BTC/USDT", side="buy", qty=0.5, type="market")
        wait_until(lambda: live.held() == pytest.approx(0.5), 20, "the BTC position")
        resting = ctl(live.control, "submit", symbol="BTC/USDT", side="buy", qty=1, type="limit", price=50)
        assert resting["ok"], resting
        wait_until(lambda: [o.status for o in venue.orders_with_client_id(venue_client_id(resting["client_id"]))]
                   == ["NEW"], 20, "an order of ours resting on BTC/USDT")
        _reconciled_twice(venue)

        # a deposit of ETH: no order of ours there, adopted with an event, nothing halted; one of BNB, a
        # currency of no traded symbol, read in the same balances, is outside the account: nothing at all
        venue.set_balance("BNB", 7.0)
        venue.set_balance("ETH", 3.0)
        adopted = events.wait("balance_adopted")
        assert "ETH/USDT" in adopted["detail"], adopted
        wait_until(lambda: live.held("ETH/USDT") == pytest.approx(3.0), 20, "the ETH deposit in the account")
        health = _health(live)
        assert health["status"] == "healthy" and health["risk"]["symbols_halted"] == {}, _brief(health)
        positions = ctl(live.control, "positions")
        assert sorted(positions["positions"]) == ["BTC/USDT", "ETH/USDT"]
        assert positions["cash"] == pytest.approx(venue.balance("USDT"))

        # BTC changes under an order of ours with no trade behind it: halted there, nowhere else
        venue.set_balance("BTC", 0.8)
        unexplained = events.wait("unexplained", symbol="BTC/USDT")
        assert "0.8" in unexplained["detail"] and "0.5" in unexplained["detail"], unexplained
        health = wait_until(lambda: (h := _health(live))["risk"]["symbols_halted"] and h, 10, "the halt in health")
        assert health["status"] == "degraded", _brief(health)
        assert list(health["risk"]["symbols_halted"]) == ["BTC/USDT"]
        assert "BTC/USDT" in health["risk"]["symbols_halted"]["BTC/USDT"]
        assert live.held() == pytest.approx(0.5)  # the account keeps its own figure there

        posts = venue.posts()
        refused = ctl(live.control, "submit", symbol="BTC/USDT", side="buy", qty=0.1, type="market")
        assert not refused["ok"] and "halted on BTC/USDT" in refused["error"], refused
        eth = ctl(live.control, "submit", symbol="ETH/USDT", side="buy", qty=2, type="market")
        assert eth["ok"], eth
        wait_until(lambda: live.held("ETH/USDT") == pytest.approx(5.0), 20, "the ETH fill")
        assert venue.posts() == posts + 1
        assert len(venue.orders_with_client_id(venue_client_id(eth["client_id"]))) == 1
        assert not [o for o in venue.book.values() if o.client_id == venue_client_id(bought["client_id"])
                    and o.status != "FILLED"]
        events.drain()
        assert [e for e in events.seen if e["change"] == "unexplained"] == [unexplained]  # published once
        assert [e["change"] for e in events.seen if e.get("change") in ("balance_adopted", "adopted")] == \
            ["balance_adopted"] and not [e for e in events.seen if "BNB" in str(e)], events.seen
    finally:
        events.close()
        live.stop()
