"""The venue feed's logic: ccxt tickers into ticks, each once; the link's outages and backoff."""

from __future__ import annotations

import math
import random

import pytest

from actors.feed.venue import Link, TickerTicks
from actors.store.exchange import Retry
from messages.market import Tick

pytestmark = pytest.mark.timeout(10)

MS = 1_000_000


def ticker(symbol: str, ts: int | None, bid: float | None = 99.0, ask: float | None = 101.0,
           last: float | None = 100.0) -> dict:
    return {"symbol": symbol, "timestamp": ts, "bid": bid, "ask": ask, "last": last, "baseVolume": 5000.0}


def test_a_ticker_becomes_a_tick_at_the_venues_time_in_ns_with_src_and_seq() -> None:
    ticks = TickerTicks(["BTC/USDT", "ETH/USDT"], "venue:binance")
    out = ticks.ticks([ticker("BTC/USDT", 1_700_000_000_123), ticker("ETH/USDT", 1_700_000_000_200, last=50.0)], 0)
    assert out == [Tick("BTC/USDT", 1_700_000_000_123 * MS, 99.0, 101.0, 100.0, 0.0, "venue:binance", 1),
                   Tick("ETH/USDT", 1_700_000_000_200 * MS, 99.0, 101.0, 50.0, 0.0, "venue:binance", 2)]


def test_a_ticker_not_newer_than_the_last_sent_for_its_symbol_is_not_sent_again() -> None:
    ticks = TickerTicks(["BTC/USDT", "ETH/USDT"], "v")
    assert len(ticks.ticks([ticker("BTC/USDT", 1000), ticker("ETH/USDT", 1000)], 0)) == 2
    again = ticks.ticks([ticker("BTC/USDT", 1000), ticker("ETH/USDT", 999), ticker("BTC/USDT", 1001, last=101.0)], 0)
    assert [(t.symbol, t.ts, t.seq) for t in again] == [("BTC/USDT", 1001 * MS, 3)]
    assert ticks.repeats == 2


def test_a_ticker_without_a_time_is_sent_when_its_prices_change_stamped_when_received() -> None:
    ticks = TickerTicks(["X/Y"], "v")
    first = ticks.ticks([ticker("X/Y", None)], 5_000)
    assert [(t.ts, t.last) for t in first] == [(5_000, 100.0)]
    assert ticks.ticks([ticker("X/Y", None)], 6_000) == []  # the same prices: a repeat
    moved = ticks.ticks([ticker("X/Y", None, last=100.5)], 4_000)  # the local clock stepped back
    assert [(t.ts, t.last) for t in moved] == [(5_001, 100.5)]


def test_a_ticker_with_one_side_of_the_book_or_only_a_mid_keeps_what_it_has() -> None:
    ticks = TickerTicks(["X/Y"], "v")
    [last_only] = ticks.ticks([ticker("X/Y", 1, bid=None, ask=101.0, last=100.0)], 0)
    assert math.isnan(last_only.bid) and math.isnan(last_only.ask) and last_only.last == 100.0
    [mid] = ticks.ticks([ticker("X/Y", 2, last=None)], 0)
    assert (mid.bid, mid.ask, mid.last) == (99.0, 101.0, 100.0)
    assert ticks.ticks([ticker("X/Y", 3, bid=None, ask=None, last=None)], 0) == []
    assert ticks.empty == 1


def test_tickers_of_symbols_not_watched_are_left_out() -> None:
    ticks = TickerTicks(["BTC/USDT"], "v")
    assert ticks.ticks([ticker("DOGE/USDT", 1)], 0) == [] and ticks.seq == 0


def test_an_outage_begins_once_and_ends_once_with_its_length_and_the_waits_grow_to_the_cap() -> None:
    link = Link(Retry(backoff_s=0.5, cap_s=4.0, rng=random.Random(1)))
    assert link.answered("rest", 0) is None and link.view.state == "up"
    waits = []
    for n in range(8):
        began, wait = link.failed(f"NetworkError {n}", 1_000_000_000 + n)
        assert began == (n == 0)
        waits.append(wait)
    assert link.view.state == "reconnecting" and link.view.failures == 8 and link.view.last_error == "NetworkError 7"
    assert 0.25 <= waits[0] <= 0.5 and all(2.0 <= w <= 4.0 for w in waits[4:])  # jittered, doubled, capped
    assert link.answered("rest", 4_000_000_000) == 3.0
    assert link.answered("rest", 5_000_000_000) is None
    assert (link.view.state, link.view.outages, link.view.failures) == ("up", 1, 0)


def test_failing_while_still_connecting_is_an_outage_too() -> None:
    link = Link(Retry(backoff_s=0.1, cap_s=1.0))
    began, _ = link.failed("ConnectionRefused", 0)
    assert began and link.view.state == "reconnecting"
    assert link.answered("websocket", 2_000_000_000) == 2.0
    assert link.view.as_json(2_500_000_000) == {"state": "up", "via": "websocket", "for_s": 0.5, "failures": 0,
                                                "outages": 1, "last_error": "ConnectionRefused"}


def test_the_testnet_is_rebased_too_so_a_double_is_all_the_feed_reaches() -> None:
    import ccxt.pro

    from actors.store.exchange import open_venue

    exchange = open_venue("binance", "http://127.0.0.1:9", 1.0, ccxt.pro, sandbox=True)

    def urls(api: object) -> list[str]:
        if isinstance(api, dict):
            return [u for value in api.values() for u in urls(value)]
        return [api] if isinstance(api, str) and "://" in api else []

    found = urls(exchange.urls["api"])
    assert found and all(u.startswith(("http://127.0.0.1:9/", "ws://127.0.0.1:9/")) for u in found)
    assert exchange.isSandboxModeEnabled
