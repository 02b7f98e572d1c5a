"""Order updates and fills from the venue's websocket: ``run.py live --venue binance`` as a subprocess
against the loopback Binance double's user data stream (``/ws-api/v3``, ``executionReport`` events),
driven through ccxt.pro itself.

A resting limit order filled by a price move reaches ``ctl positions`` through the stream well before
a 30 s ``venue.poll_s`` could bring it; with the stream gone the fill comes by REST polling, once, and
the switches are logged once each way; a fill that both paths see is booked once; with
``venue.order_stream = false`` no websocket is opened.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from actors.venue.session import venue_client_id
from tests.doubles.binance_trading import TradingBinance
from tests.helpers import ctl, wait_until
from tests.integration.test_venue import Live, _submit, venue  # noqa: F401  (venue: the fixture)

pytestmark = pytest.mark.timeout(90)


def _live(tmp_path: Path, venue: TradingBinance, settings: str) -> Live:  # noqa: F811
    live = Live(tmp_path, venue)
    (tmp_path / "settings.toml").write_text(settings + "[executor]\nallocation = 0.01\n[control]\nsummary_s = 60.0\n")
    return live.start()


def _resting_buy(live: Live, venue: TradingBinance) -> str:  # noqa: F811
    """A limit buy of 1 BTC at 90 submitted with ``ctl submit``, once it rests on the venue."""
    client_id = _submit(live, "symbol=BTC/USDT", "side=buy", "qty=1", "type=limit", "price=90")
    wait_until(lambda: venue.orders_with_client_id(venue_client_id(client_id)), 20, "the order resting on the venue")
    return client_id


def _filled_once(live: Live, venue: TradingBinance, client_id: str, qty: float) -> None:  # noqa: F811
    order = live.order(client_id)
    assert order["status"] == "filled" and order["qty"] == pytest.approx(qty)
    assert order["venue"]["filled"] == pytest.approx(qty)
    assert order["venue"]["fee"] == pytest.approx(90.0 * qty * 0.001)  # the venue's commission, once
    assert live.held() == pytest.approx(qty) == pytest.approx(venue.balance("BTC"))
    assert ctl(live.control, "positions")["cash"] == pytest.approx(venue.balance("USDT"))
    assert venue.posts() == 1


def _via(live: Live) -> str:
    """Where ``health`` says the venue's order updates come from."""
    return (ctl(live.control, "health").get("venue") or {}).get("updates_via", "")


def _stopped_log(live: Live) -> str:
    live.stop()
    assert live.process is not None
    return live.process.stderr.read()


def test_a_fill_comes_through_the_websocket_well_before_a_long_poll(tmp_path: Path,
                                                                    venue: TradingBinance) -> None:  # noqa: F811
    live = _live(tmp_path, venue, "[venue]\npoll_s = 30.0\nreconcile_s = 30.0\n")
    try:
        wait_until(lambda: _via(live) == "websocket", 20, "updates taken from the stream")
        client_id = _resting_buy(live, venue)
        wait_until(lambda: (live.order(client_id).get("venue") or {}).get("venue_status") == "open", 20,
                   "the order seen open")
        rest_reads = venue.count("/api/v3/myTrades")
        moved = time.monotonic()
        venue.set_price("BTC/USDT", 89.0)  # it fills at its limit, 90
        wait_until(lambda: live.held() == pytest.approx(1.0), 10, "the fill in the position")
        took = time.monotonic() - moved
        assert took < 10.0
        assert venue.count("/api/v3/myTrades") == rest_reads  # REST did not read it: only the stream could
        wait_until(lambda: live.order(client_id).get("status") == "filled", 10, "the order filled")
        _filled_once(live, venue, client_id, 1.0)
    finally:
        log = _stopped_log(live)
    assert log.count("order updates and fills through its websocket now") == 1
    assert "polling REST every" not in log


def test_the_websocket_going_away_falls_back_to_polling_and_the_fill_arrives_once(
        tmp_path: Path, venue: TradingBinance) -> None:  # noqa: F811
    live = _live(tmp_path, venue, "[venue]\npoll_s = 0.2\nreconcile_s = 30.0\nbackoff_s = 0.2\n")
    try:
        wait_until(lambda: _via(live) == "websocket", 20, "updates taken from the stream")
        venue.user_stream_away()
        wait_until(lambda: _via(live) == "rest", 20, "updates polled over REST")
        client_id = _resting_buy(live, venue)
        events = venue.user_events
        venue.set_price("BTC/USDT", 89.0)
        wait_until(lambda: live.order(client_id).get("status") == "filled", 20, "the fill polled over REST")
        assert venue.user_events == events  # nothing went out on a stream: the poll brought it
        reads = venue.count("/api/v3/myTrades")
        wait_until(lambda: venue.count("/api/v3/myTrades") >= reads + 2, 20, "two more polls")
        _filled_once(live, venue, client_id, 1.0)
        venue.user_stream_back()
        wait_until(lambda: venue.user_subscriptions >= 2, 20, "the user data stream subscribed again")
        wait_until(lambda: _via(live) == "websocket", 20, "updates taken from the stream again")
        _filled_once(live, venue, client_id, 1.0)
    finally:
        log = _stopped_log(live)
    assert log.count("order stream unusable") == 1, log
    assert log.count("order updates and fills through its websocket now") == 2, log


def test_a_fill_both_paths_see_is_booked_once(tmp_path: Path, venue: TradingBinance) -> None:  # noqa: F811
    live = _live(tmp_path, venue, "[venue]\npoll_s = 0.1\nreconcile_s = 0.1\n")  # REST reads fills constantly
    try:
        wait_until(lambda: _via(live) == "websocket", 20, "updates taken from the stream")
        client_id = _resting_buy(live, venue)
        events = venue.user_events
        venue.set_price("BTC/USDT", 89.5, fraction=0.5)  # two executions of half each
        venue.set_price("BTC/USDT", 89.0, fraction=0.5)
        wait_until(lambda: live.order(client_id).get("status") == "filled", 20, "the order filled")
        wait_until(lambda: venue.user_events >= events + 2, 10, "both executions on the stream")
        reads = venue.count("/api/v3/myTrades")
        wait_until(lambda: venue.count("/api/v3/myTrades") >= reads + 2, 20, "REST reading the executions too")
        assert len(venue.trades) == 2
        _filled_once(live, venue, client_id, 1.0)
    finally:
        live.stop()


def test_order_stream_off_opens_no_websocket_and_polls(tmp_path: Path, venue: TradingBinance) -> None:  # noqa: F811
    live = _live(tmp_path, venue, "[venue]\npoll_s = 0.2\nreconcile_s = 30.0\norder_stream = false\n")
    try:
        client_id = _resting_buy(live, venue)
        venue.set_price("BTC/USDT", 89.0)
        wait_until(lambda: live.order(client_id).get("status") == "filled", 20, "the fill polled over REST")
        _filled_once(live, venue, client_id, 1.0)
        assert venue.count("/ws-api/v3") == 0 and venue.user_subscriptions == 0
        assert _via(live) == "rest"
    finally:
        log = _stopped_log(live)
    assert "polled over REST every 0.2s (venue.order_stream is off)" in log


def test_a_websocket_silent_past_the_timeout_after_an_order_falls_back_to_polling(
        tmp_path: Path, venue: TradingBinance) -> None:  # noqa: F811
    live = _live(tmp_path, venue, "[venue]\npoll_s = 0.2\nreconcile_s = 30.0\ntimeout_s = 1.0\n")
    try:
        wait_until(lambda: _via(live) == "websocket", 20, "updates taken from the stream")
        venue.user_stream_silent()  # open, subscribed, and mute
        submitted = time.monotonic()
        client_id = _resting_buy(live, venue)
        wait_until(lambda: _via(live) == "rest", 20, "updates polled over REST")
        assert time.monotonic() - submitted >= 1.0  # venue.timeout_s without an update for the order
        venue.set_price("BTC/USDT", 89.0)
        wait_until(lambda: live.order(client_id).get("status") == "filled", 20, "the fill polled over REST")
        assert venue.user_subscriptions == 1  # the stream never dropped: its silence gave it away
        _filled_once(live, venue, client_id, 1.0)
        assert _via(live) == "rest"
    finally:
        log = _stopped_log(live)
    assert log.count("order stream unusable (no update on the websocket") == 1, log
