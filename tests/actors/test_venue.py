"""The venue's pure logic: credentials, the circuit breaker, the book of orders and executions."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from actors.venue.book import VenueBook
from actors.venue.breaker import CircuitBreaker
from actors.venue.credentials import load_credentials
from actors.venue.session import venue_client_id
from messages.trading import Order
from settings import SettingsError, load_settings

pytestmark = pytest.mark.timeout(10)

MARKETS = {"BTC/USDT": {"base": "BTC", "quote": "USDT"}}


def _order(qty: float = 1.0) -> Order:
    return Order("s:BTC/USDT:1m:60:buy", "s", "BTC/USDT", "buy", qty, 60, "limit", "accepted", "", 90.0)


def _trade(trade_id: str, order_id: str, qty: float, price: float, fee: dict | None = None) -> dict:
    return {"id": trade_id, "order": order_id, "symbol": "BTC/USDT", "side": "buy", "amount": qty, "price": price,
            "timestamp": 1_000, "fee": fee or {"cost": qty * price * 0.001, "currency": "USDT"}}


def test_credentials_come_from_the_environment_and_never_show_in_a_repr() -> None:
    creds = load_credentials("binance", env={"TRADING_VENUE_API_KEY": "k1", "TRADING_VENUE_SECRET": "s3cr3t"})
    assert (creds.api_key, creds.secret, creds.password) == ("k1", "s3cr3t", "")
    assert "s3cr3t" not in repr(creds) and "k1" not in repr(creds) and "s3cr3t" not in str(creds)


def test_a_key_file_readable_by_others_is_refused_and_mode_600_is_read(tmp_path: Path) -> None:
    key_file = tmp_path / "keys.toml"
    key_file.write_text('api_key = "k2"\nsecret = "s2"\npassword = "p2"\n')
    key_file.chmod(0o644)
    with pytest.raises(SettingsError, match="readable by others.*chmod 600"):
        load_credentials("okx", str(key_file), env={})
    key_file.chmod(0o600)
    assert load_credentials("okx", str(key_file), env={}).password == "p2"


def test_no_credentials_is_one_line_naming_the_variables() -> None:
    with pytest.raises(SettingsError, match="TRADING_VENUE_API_KEY and TRADING_VENUE_SECRET"):
        load_credentials("binance", env={})
    with pytest.raises(SettingsError, match="TRADING_VENUE_SECRET is not set"):
        load_credentials("binance", env={"TRADING_VENUE_API_KEY": "k"})


def test_credential_variables_are_not_settings_and_venue_settings_are_checked() -> None:
    env = {"TRADING_VENUE_API_KEY": "k", "TRADING_VENUE_SECRET": "s", "TRADING_VENUE_POLL_S": "0.5"}
    assert load_settings(env=env).venue.poll_s == 0.5
    with pytest.raises(SettingsError, match="venue.id"):
        load_settings(env={"TRADING_VENUE_ID": "no-such-exchange"})
    with pytest.raises(SettingsError, match="venue.breaker_failures"):
        load_settings(env={"TRADING_VENUE_BREAKER_FAILURES": "0"})


def test_the_breaker_opens_after_n_consecutive_failures_and_closes_on_a_success() -> None:
    breaker = CircuitBreaker(3)
    for _ in range(2):
        breaker.failed("500")
    breaker.succeeded()
    assert not breaker.open and breaker.failures == 0
    for _ in range(3):
        breaker.failed("500")
    assert breaker.open and breaker.changed
    breaker.changed = False  # published
    breaker.failed("500")
    assert breaker.open and not breaker.changed
    breaker.succeeded()
    breaker.succeeded()  # a later success in the same poll does not hide that it closed
    assert not breaker.open and breaker.changed
    breaker.changed = False
    for _ in range(3):
        breaker.failed("500")
    breaker.succeeded()  # opened and closed again before anyone published: nothing to say
    assert not breaker.open and not breaker.changed


def test_venue_client_ids_are_stable_short_and_of_the_characters_venues_take() -> None:
    vid = venue_client_id("sma_cross:BTC/USDT:1m:1796629266778132769:buy")
    assert vid == venue_client_id("sma_cross:BTC/USDT:1m:1796629266778132769:buy") and len(vid) == 32
    assert vid.isalnum() and vid != venue_client_id("sma_cross:BTC/USDT:1m:1796629266778132769:sell")


def test_partial_fills_book_each_execution_once_and_fill_the_order_at_its_amount() -> None:
    book = VenueBook(MARKETS)
    order = _order()
    book.track(order, 1.0)
    book.placed(order.client_id, {"id": "7", "status": "open", "amount": 1.0})
    first = book.execution(_trade("t1", "7", 0.4, 90.0))
    assert first.order.status == "accepted" and "0.4 of 1" in first.order.reason
    assert book.execution(_trade("t1", "7", 0.4, 90.0)) is None  # taken in once
    second = book.execution(_trade("t2", "7", 0.6, 89.0))
    assert second.order.status == "filled" and second.total.qty == pytest.approx(1.0)
    assert second.total.price == pytest.approx((0.4 * 90 + 0.6 * 89) / 1.0)
    assert second.total.fee == pytest.approx((0.4 * 90 + 0.6 * 89) * 0.001)


def test_a_fee_in_the_base_currency_is_the_quantity_it_took() -> None:
    book = VenueBook(MARKETS)
    order = _order(0.5)
    book.track(order, 0.5)
    book.placed(order.client_id, {"id": "8", "status": "closed", "amount": 0.5})
    fill = book.execution(_trade("t3", "8", 0.5, 100.0, {"cost": 0.0005, "currency": "BTC"})).fill
    assert fill.qty == pytest.approx(0.4995) and fill.fee == pytest.approx(0.05)
    assert fill.qty * fill.price + fill.fee == pytest.approx(50.0)  # the quote paid


def test_an_order_the_venue_does_not_know_is_closed_with_the_reason_keeping_what_filled() -> None:
    book = VenueBook(MARKETS)
    order = _order()
    book.track(order, 1.0)
    update = book.state(order.client_id, None)
    assert update.order.status == "cancelled" and "does not know" in update.order.reason
    other = order._replace(client_id="s:BTC/USDT:1m:120:buy")
    book.track(other, 1.0)
    book.placed(other.client_id, {"id": "9", "status": "open", "amount": 1.0})
    book.execution(_trade("t4", "9", 0.25, 90.0))
    done = book.state(other.client_id, {"id": "9", "status": "canceled", "amount": 1.0})
    assert done.order.status == "filled" and done.order.qty == 0.25 and "after 0.25 of 1 filled" in done.order.reason


def test_outside_orders_and_executions_are_adopted_once() -> None:
    book = VenueBook(MARKETS)
    resting = {"id": "42", "clientOrderId": "web_1", "symbol": "BTC/USDT", "side": "buy", "amount": 2.0,
               "price": 80.0, "type": "limit", "status": "open", "timestamp": 5}
    update = book.adopt(resting, set())
    assert update.outside and update.order.client_id == "outside:42" and update.order.status == "accepted"
    assert book.adopt(resting, set()) is None
    executed = book.execution(_trade("t5", "43", 0.25, 100.0))
    assert executed.order.client_id == "outside:43" and executed.order.status == "filled"
    assert math.isclose(executed.fill.qty, 0.25)


def test_a_fee_in_a_third_currency_is_valued_in_the_quote_at_that_currencys_price() -> None:
    prices = {("BNB", "USDT"): 600.0}
    book = VenueBook(MARKETS, lambda currency, quote: prices.get((currency, quote), math.nan))
    order = _order(0.5)
    book.track(order, 0.5)
    book.placed(order.client_id, {"id": "9", "status": "closed", "amount": 0.5})
    fill = book.execution(_trade("t4", "9", 0.5, 100.0, {"cost": 0.0000625, "currency": "BNB"})).fill
    assert fill.qty == pytest.approx(0.5) and fill.fee == pytest.approx(0.0375)  # 0.0000625 BNB x 600 USDT
    second = _order(0.5)._replace(client_id="s:BTC/USDT:1m:120:buy")
    book.track(second, 0.5)
    book.placed(second.client_id, {"id": "10", "status": "closed", "amount": 0.5})
    unpriced = book.execution(_trade("t5", "10", 0.5, 100.0, {"cost": 0.01, "currency": "XYZ"})).fill
    assert unpriced.fee == 0.0 and book.unvalued_fees == 1  # no price for it: counted, not guessed
