"""The exchange session through ccxt: opened with credentials, every request retried, counted by the
circuit breaker; orders checked against the venue's precision and minimums, sent idempotently.

The exchange is built by the same builder ``download`` uses (:func:`actors.store.exchange.open_venue`),
then given the credentials, the testnet (``sandbox``) and, with ``url``, every endpoint rebased onto it.
Only spot markets are loaded: derivatives (``fetch_positions``) are out of scope for now.

Our client order ids (``strategy:symbol:timeframe:bar_ts:side``) are longer and wider than venues allow
(Binance: 36 of ``[.A-Z:/a-z0-9_-]``; OKX: 32 letters and digits), so each is sent as ``at`` plus 30 hex
digits of its SHA-256 (:func:`venue_client_id`): stable, so a restart finds the same order again.

An order whose fate is unknown (a network error, a 5xx, a timeout, a 429 on the placement) is looked
up by client id before it is sent again, so it reaches the venue once.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections.abc import Callable
from typing import Any, TypeVar

import ccxt

from actors.store.exchange import Retry, VenueError, open_venue, rebase_urls
from actors.venue.breaker import CircuitBreaker
from actors.venue.credentials import Credentials
from messages.trading import Order

__all__ = ["OrderRefused", "VenueError", "VenueSession", "open_trading", "venue_client_id"]

T = TypeVar("T")
_ANSWERS = (ccxt.OrderNotFound, ccxt.InvalidOrder, ccxt.OperationRejected)  # refusals, not failures


class OrderRefused(Exception):
    """The order was not sent, or the venue refused it: the reason, in one line."""


def venue_client_id(client_id: str) -> str:
    """The client order id sent to the venue for our ``client_id``: ``at`` + 30 hex digits of its SHA-256."""
    return "at" + hashlib.sha256(client_id.encode()).hexdigest()[:30]


def open_trading(venue: str, credentials: Credentials, url: str = "", sandbox: bool = False,
                 timeout_s: float = 10.0, api: Any = ccxt) -> ccxt.Exchange:
    """ccxt's exchange ``venue`` with the credentials, spot markets only, on its testnet with ``sandbox``,
    every endpoint (websocket ones too) rebased onto ``url`` if given. Nothing is requested yet. ``api``:
    the ccxt flavour whose class is built (``ccxt``, or ``ccxt.pro`` for the order stream)."""
    exchange = open_venue(venue, None, timeout_s, api)
    exchange.apiKey, exchange.secret = credentials.api_key, credentials.secret
    if credentials.password:
        exchange.password = credentials.password
    markets = exchange.options.get("fetchMarkets")
    if isinstance(markets, dict) and "types" in markets:
        exchange.options["fetchMarkets"] = {**markets, "types": ["spot"]}
    exchange.options.update({"fetchCurrencies": False, "fetchMargins": False,
                             "warnOnFetchOpenOrdersWithoutSymbol": False, "defaultType": "spot"})
    if sandbox:
        exchange.set_sandbox_mode(True)
    if url:
        exchange.urls["api"] = rebase_urls(exchange.urls["api"], url)
    return exchange


def _one_line(exc: BaseException) -> str:
    text = re.sub(r"\s+", " ", str(exc)).strip() or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


class VenueSession:
    """Requests to one venue, retried (``retry``) and counted by ``breaker``; orders of ``symbols``."""

    def __init__(self, exchange: ccxt.Exchange, retry: Retry, breaker: CircuitBreaker) -> None:
        self.exchange, self.retry, self.breaker = exchange, retry, breaker
        self.requests = 0

    def call(self, what: str, fn: Callable[[], T]) -> T:
        """``fn()`` with retries; a failure after them counts for the breaker and raises VenueError."""
        self.requests += 1
        try:
            result = self.retry.call(self.exchange, what, fn)
        except VenueError as exc:
            if isinstance(exc.__cause__, _ANSWERS):
                self.breaker.succeeded()  # the venue answered (it does not know an order, it refused one)
            else:
                self.breaker.failed(str(exc))
            raise
        self.breaker.succeeded()
        return result

    # -- reading --------------------------------------------------------------------------------------

    def load(self) -> dict[str, Any]:
        """Load the venue's markets; return them."""
        return self.call("load_markets", self.exchange.load_markets)

    def balances(self) -> dict[str, float]:
        """Every currency's total balance (free and locked)."""
        balance = self.call("fetch_balance", self.exchange.fetch_balance)
        return {code: float(value or 0.0) for code, value in (balance.get("total") or {}).items()}

    def open_orders(self) -> list[dict[str, Any]]:
        """Every open order on the venue."""
        return self.call("fetch_open_orders", lambda: self.exchange.fetch_open_orders())

    def trades(self, symbol: str, since_ms: int) -> list[dict[str, Any]]:
        """Our executions in ``symbol`` since ``since_ms``."""
        return self.call(f"fetch_my_trades {symbol}", lambda: self.exchange.fetch_my_trades(symbol, since_ms))

    def last_price(self, symbol: str) -> float:
        """The last traded price of ``symbol``."""
        ticker = self.call(f"fetch_ticker {symbol}", lambda: self.exchange.fetch_ticker(symbol))
        return float(ticker.get("last") or ticker.get("close") or math.nan)

    def find(self, symbol: str, client_id: str) -> dict[str, Any] | None:
        """The venue's order with our ``client_id``, or None when the venue does not know it."""
        vid = venue_client_id(client_id)
        try:
            return self.call(f"fetch_order {client_id}", lambda: self.exchange.fetch_order(
                None, symbol, {"origClientOrderId": vid, "clientOrderId": vid}))
        except VenueError as exc:
            if isinstance(exc.__cause__, ccxt.OrderNotFound):
                return None
            raise

    # -- orders ----------------------------------------------------------------------------------------

    def checked(self, order: Order, price: float) -> tuple[float, float | None]:
        """The order's amount and limit price rounded to the venue's precision, once they pass its
        minimums (amount, notional at ``price`` or the limit); OrderRefused saying which fails."""
        exchange = self.exchange
        market = (exchange.markets or {}).get(order.symbol)
        if market is None:
            raise OrderRefused(f"{exchange.id} lists no {order.symbol}")
        limit = None
        try:
            amount = float(exchange.amount_to_precision(order.symbol, order.qty))
            if order.kind == "limit":
                limit = float(exchange.price_to_precision(order.symbol, order.limit_price))
        except ccxt.BaseError as exc:
            raise OrderRefused(f"{order.symbol}: {_one_line(exc)}") from None
        limits = market.get("limits") or {}
        least = (limits.get("amount") or {}).get("min")
        if amount <= 0 or (least and amount < least):
            raise OrderRefused(f"amount {order.qty:g} is below {exchange.id}'s minimum {least or 0:g} for {order.symbol} "
                               f"(after rounding to its precision: {amount:g})")
        notional = amount * (limit if limit is not None else price)
        least_cost = (limits.get("cost") or {}).get("min")
        if least_cost and notional == notional and notional < least_cost:
            raise OrderRefused(f"notional {notional:,.8g} is below {exchange.id}'s minimum {least_cost:g} for "
                               f"{order.symbol}")
        return amount, limit

    def place(self, order: Order, amount: float, limit: float | None,
              sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
        """Send ``order`` once: on an error that leaves its fate unknown, wait, ask the venue for it by
        client id, and send again only if the venue does not have it. OrderRefused when the venue
        refuses it; VenueError when its fate is still unknown after the retries."""
        exchange, vid = self.exchange, venue_client_id(order.client_id)
        kind = "limit" if order.kind == "limit" else "market"
        self.requests += 1
        for attempt in range(self.retry.retries + 1):
            try:
                placed = exchange.create_order(order.symbol, kind, order.side, amount, limit, {"clientOrderId": vid})
                self.breaker.succeeded()
                return placed
            except ccxt.OperationFailed as exc:  # network, 5xx, 429, timeout: the venue may have it
                self.breaker.failed(_one_line(exc))
                if attempt == self.retry.retries:
                    raise VenueError(f"{exchange.id}: create_order {order.client_id}: fate unknown after "
                                     f"{attempt + 1} tries: {_one_line(exc)}") from exc
                sleep(self.retry.delay(attempt))
                found = self.find(order.symbol, order.client_id)
                if found is not None:
                    return found
            except ccxt.InvalidOrder as exc:
                if "Duplicate" in str(exc):  # sent before (a reply lost): the venue has it
                    found = self.find(order.symbol, order.client_id)
                    if found is not None:
                        return found
                raise OrderRefused(f"{exchange.id} refused {order.client_id}: {_one_line(exc)}") from None
            except ccxt.BaseError as exc:
                raise OrderRefused(f"{exchange.id} refused {order.client_id}: {type(exc).__name__}: "
                                   f"{_one_line(exc)}") from None
        raise AssertionError("unreachable")

    def cancel(self, order: Order) -> dict[str, Any] | None:
        """Cancel ``order`` on the venue; its state after, or None when the venue does not know it."""
        vid = venue_client_id(order.client_id)
        try:
            return self.call(f"cancel_order {order.client_id}", lambda: self.exchange.cancel_order(
                None, order.symbol, {"origClientOrderId": vid, "clientOrderId": vid}))
        except VenueError as exc:
            if isinstance(exc.__cause__, (ccxt.OrderNotFound, ccxt.OperationRejected)):
                return self.find(order.symbol, order.client_id)
            raise
