"""A loopback Binance spot double that trades: the public double plus Binance's signed account endpoints.

On top of :class:`BinanceDouble` (time, exchangeInfo, klines) it serves, as Binance does and as ccxt's
``binance`` class calls them: ``GET /api/v3/account``, ``POST/GET/DELETE /api/v3/order``,
``GET /api/v3/openOrders``, ``GET /api/v3/allOrders``, ``GET /api/v3/myTrades``, ``GET /api/v3/ticker/price``
and ``GET /api/v3/ticker/24hr``.

Signed requests are checked as Binance checks them: the ``X-MBX-APIKEY`` header names a known key
(-2014 "API-key format invalid." when absent or malformed, -2015 when unknown, HTTP 401), the HMAC-SHA256
of the query (GET, DELETE) or form body (POST) before ``&signature=`` with the key's secret must match
(-1022 "Signature for this request is not valid."), and ``timestamp`` must lie within ``recvWindow``
(default 5000 ms, at most 60000) of the double's clock and not more than 1000 ms ahead of it (-1021).

Trading: a market order fills at once at the symbol's price; a limit order rests until ``set_price``
crosses it (a buy when the price falls to its limit or below, a sell when it rises to it or above), then
fills at its limit, wholly or, with ``fraction`` < 1, in parts. The commission (``commission_rate`` of
the quote value, 0.1% by default) is charged in the quote asset. Balances move as on the venue: a resting
order locks what it may spend. A client order id already used is refused (-2010 "Duplicate order
sent."). ``place`` puts an order on the book directly, as a person using the venue's web page would.

Faults on top of the base double's per-path ``fail``/``delay``: ``fail_order(status, processed)`` answers
the next order placement with ``status``, before placing it or (``processed=True``) after, as when a
reply is lost. ``set_balance`` changes a balance with no order or trade behind it.

The user data stream, as ccxt.pro's ``binance`` opens it for spot (``watch_orders``, ``watch_my_trades``):
a websocket at ``/ws-api/v3`` (Binance's WebSocket API) where ``{"id", "method":
"userDataStream.subscribe.signature", "params": {"apiKey", "timestamp", "signature"}}`` is checked as a
signed REST request is (HMAC-SHA256 of the sorted ``key=value`` pairs) and answered ``{"id", "status": 200,
"result": {"subscriptionId": n}}``; from then on every change the double makes to an order is pushed as
``{"subscriptionId": n, "event": {"e": "executionReport", ...}}`` in Binance's field names: ``x`` NEW when
it is placed, TRADE for each execution (last quantity ``l``, price ``L``, commission ``n`` in ``N``, trade
id ``t``), CANCELED when cancelled; ``X`` is the order's status after it (FILLED once executed in full).
``user_stream_away()`` closes the open user streams and refuses new ones at the handshake (HTTP 503)
until ``user_stream_back()``; ``user_stream_silent()`` keeps them open but sends nothing more on them (a
stream that hangs); ``user_subscriptions`` counts the subscriptions accepted, ``user_events``
the events pushed.
"""

from __future__ import annotations

import hashlib
import hmac
import asyncio
import itertools
import json
import math
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web

from tests.doubles.binance import _ERRORS, BinanceDouble

__all__ = ["TradingBinance", "VenueOrder"]

_KEY_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
_CLIENT_ID_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.:/_-")


@dataclass(slots=True)
class VenueOrder:
    """An order on the double's book."""

    order_id: int
    client_id: str
    symbol: str             # Binance id, e.g. BTCUSDT
    side: str               # BUY | SELL
    kind: str               # MARKET | LIMIT
    qty: float
    price: float            # limit price (0 for market)
    time_ms: int
    status: str = "NEW"
    executed: float = 0.0
    quote: float = 0.0      # cumulative quote quantity
    update_ms: int = 0
    trades: list[dict[str, Any]] = field(default_factory=list)

    def view(self) -> dict[str, Any]:
        """The order as Binance's order endpoints send it."""
        return {"symbol": self.symbol, "orderId": self.order_id, "orderListId": -1, "clientOrderId": self.client_id,
                "price": f"{self.price:.8f}", "origQty": f"{self.qty:.8f}", "executedQty": f"{self.executed:.8f}",
                "cummulativeQuoteQty": f"{self.quote:.8f}", "status": self.status,
                "timeInForce": "GTC" if self.kind == "LIMIT" else "GTC", "type": self.kind, "side": self.side,
                "stopPrice": "0.00000000", "icebergQty": "0.00000000", "time": self.time_ms,
                "updateTime": self.update_ms or self.time_ms, "isWorking": True, "workingTime": self.time_ms,
                "origQuoteOrderQty": "0.00000000", "selfTradePreventionMode": "EXPIRE_MAKER"}


class TradingBinance(BinanceDouble):
    """The trading double. ``keys`` maps API keys to secrets; ``balances`` are the starting free balances."""

    def __init__(self, symbols: tuple[str, ...] = ("BTC/USDT",), keys: dict[str, str] | None = None,
                 balances: dict[str, float] | None = None, prices: dict[str, float] | None = None,
                 commission_rate: float = 0.001, **kwargs: Any) -> None:
        super().__init__(symbols, **kwargs)
        self.keys = dict(keys or {"TESTKEY0123456789": "test-secret"})
        self.free: dict[str, float] = {asset: 0.0 for pair in self.markets.values() for asset in pair}
        self.free.update(balances or {"USDT": 100_000.0})
        self.locked: dict[str, float] = dict.fromkeys(self.free, 0.0)
        self.prices = {s.replace("/", ""): p for s, p in (prices or {}).items()}
        self.commission_rate = commission_rate
        self.book: dict[int, VenueOrder] = {}
        self.trades: list[dict[str, Any]] = []
        self._ids = itertools.count(1000)
        self._trade_ids = itertools.count(5000)
        self._trading = threading.RLock()
        self._order_faults: deque[tuple[int, bool]] = deque()
        self._user_queues: dict[web.WebSocketResponse, asyncio.Queue[dict[str, Any]]] = {}
        self._user_away = threading.Event()
        self._user_silent = threading.Event()
        self._subscription_ids = itertools.count(0)
        self.user_subscriptions = 0
        self.user_events = 0

    # -- the app: the base double's routes plus the trading ones ----------------------------------

    def _application(self) -> web.Application:
        app = super()._application()
        app.router.add_get("/api/v3/ticker/price", self._ticker_price)
        app.router.add_get("/api/v3/ticker/24hr", self._ticker_24hr)
        app.router.add_get("/api/v3/account", self._signed(self._account))
        app.router.add_post("/api/v3/order", self._signed(self._new_order))
        app.router.add_get("/api/v3/order", self._signed(self._get_order))
        app.router.add_delete("/api/v3/order", self._signed(self._cancel_order))
        app.router.add_get("/api/v3/openOrders", self._signed(self._open_orders))
        app.router.add_get("/api/v3/allOrders", self._signed(self._all_orders))
        app.router.add_get("/api/v3/myTrades", self._signed(self._my_trades))
        app.router.add_get("/ws-api/v3", self._user_stream)
        return app

    # -- what tests do ------------------------------------------------------------------------------

    def fail_order(self, status: int = 500, processed: bool = False, times: int = 1) -> None:
        """Answer the next ``times`` order placements with HTTP ``status``: before placing the order, or
        after placing it (``processed``), as when the venue took it and the reply was lost."""
        with self._lock:
            self._order_faults.extend([(status, processed)] * times)

    def price(self, symbol: str) -> float:
        """The last price of ``symbol`` (ccxt form, e.g. BTC/USDT)."""
        market_id = symbol.replace("/", "")
        with self._trading:
            return self.prices.get(market_id) or float(self.bar(market_id, self.now_ms() // 60_000 * 60_000,
                                                                60_000)[4])

    def set_price(self, symbol: str, price: float, fraction: float = 1.0) -> list[dict[str, Any]]:
        """Move ``symbol``'s price; resting limit orders it crosses fill (``fraction`` of their quantity
        at most, each). Return the trades made."""
        market_id = symbol.replace("/", "")
        with self._trading:
            self.prices[market_id] = price
            made = []
            for order in sorted(self.book.values(), key=lambda o: o.order_id):
                if order.symbol != market_id or order.status not in ("NEW", "PARTIALLY_FILLED"):
                    continue
                if (order.side == "BUY" and price <= order.price) or (order.side == "SELL" and price >= order.price):
                    qty = min(order.qty - order.executed, order.qty * fraction)
                    made.append(self._execute(order, qty, order.price, maker=True))
            return made

    def place(self, symbol: str, side: str, qty: float, kind: str = "LIMIT", price: float = 0.0,
              client_id: str = "web_manual_1") -> dict[str, Any]:
        """Place an order directly on the venue (not through the API a system uses); its view."""
        with self._trading:
            order = self._open(symbol.replace("/", ""), side.upper(), kind.upper(), qty, price, client_id)
            return order.view()

    def set_balance(self, asset: str, free: float) -> None:
        """Set the free balance of ``asset`` by hand, with no order or trade explaining it (a deposit,
        a withdrawal, a correction by the venue)."""
        with self._trading:
            self.free[asset] = free
            self.locked.setdefault(asset, 0.0)

    def orders_with_client_id(self, client_id: str) -> list[VenueOrder]:
        """Every order on the book with this client order id."""
        with self._trading:
            return [o for o in self.book.values() if o.client_id == client_id]

    def balance(self, asset: str) -> float:
        """Free plus locked balance of ``asset``."""
        with self._trading:
            return self.free.get(asset, 0.0) + self.locked.get(asset, 0.0)

    def posts(self) -> int:
        """Order placements received (whatever they were answered with)."""
        return sum(1 for r in self.requests if r.path == "/api/v3/order" and r.query.get("method") == "POST")

    # -- the book -------------------------------------------------------------------------------------

    def _open(self, market_id: str, side: str, kind: str, qty: float, price: float, client_id: str) -> VenueOrder:
        base, quote = self.markets[market_id]
        order = VenueOrder(next(self._ids), client_id, market_id, side, kind, qty, price, self.now_ms())
        self.book[order.order_id] = order
        self._report(order, "NEW")
        if kind == "MARKET":
            self._execute(order, qty, self.price(f"{base}/{quote}"), maker=False)
        else:
            self._lock_funds(order, +1)
            if (side == "BUY" and self.price(f"{base}/{quote}") <= price) or \
                    (side == "SELL" and self.price(f"{base}/{quote}") >= price):
                self._execute(order, qty, price, maker=False)
        return order

    def _lock_funds(self, order: VenueOrder, sign: int) -> None:
        base, quote = self.markets[order.symbol]
        asset, amount = (quote, (order.qty - order.executed) * order.price) if order.side == "BUY" else \
            (base, order.qty - order.executed)
        self.free[asset] -= sign * amount
        self.locked[asset] += sign * amount

    def _execute(self, order: VenueOrder, qty: float, price: float, maker: bool) -> dict[str, Any]:
        base, quote = self.markets[order.symbol]
        if order.kind == "LIMIT":
            self._lock_funds(order, -1)  # release what was locked, then lock what is left after this fill
        value = qty * price
        commission = value * self.commission_rate
        if order.side == "BUY":
            self.free[quote] -= value + commission
            self.free[base] += qty
        else:
            self.free[base] -= qty
            self.free[quote] += value - commission
        order.executed += qty
        order.quote += value
        order.update_ms = self.now_ms()
        order.status = "FILLED" if order.executed >= order.qty - 1e-12 else "PARTIALLY_FILLED"
        if order.kind == "LIMIT" and order.status != "FILLED":
            self._lock_funds(order, +1)
        trade = {"symbol": order.symbol, "id": next(self._trade_ids), "orderId": order.order_id, "orderListId": -1,
                 "price": f"{price:.8f}", "qty": f"{qty:.8f}", "quoteQty": f"{value:.8f}",
                 "commission": f"{commission:.8f}", "commissionAsset": quote, "time": order.update_ms,
                 "isBuyer": order.side == "BUY", "isMaker": maker, "isBestMatch": True}
        order.trades.append(trade)
        self.trades.append(trade)
        self._report(order, "TRADE", trade)
        return trade

    # -- signing --------------------------------------------------------------------------------------

    def _signed(self, handler: Any) -> Any:
        async def checked(request: web.Request) -> web.Response:
            if (failed := await self._fault(request)) is not None:
                return failed
            raw = (await request.text()) if request.method == "POST" else request.query_string
            params = dict(parse_qsl(raw, keep_blank_values=True))
            payload, sep, signature = raw.rpartition("&signature=")
            refused = self._verify(request.headers.get("X-MBX-APIKEY", ""), payload if sep else raw,
                                   signature if sep else "", params)
            if refused is not None:
                return self._refuse(request, params, *refused)
            return await handler(request, params)
        return checked

    def _verify(self, key: str, payload: str, signature: str, params: dict[str, str]) -> tuple[int, int, str] | None:
        """Why a signed request is refused, as ``(HTTP status, Binance code, message)``; None if it is not."""
        if not key or not set(key) <= _KEY_CHARS:
            return 401, -2014, "API-key format invalid."
        if key not in self.keys:
            return 401, -2015, "Invalid API-key, IP, or permissions for action."
        expected = hmac.new(self.keys[key].encode(), payload.encode(), hashlib.sha256).hexdigest()
        if not signature or not hmac.compare_digest(signature, expected):
            return 400, -1022, "Signature for this request is not valid."
        try:
            stamp = int(params["timestamp"])
            window = int(params.get("recvWindow", 5000))
        except (KeyError, ValueError):
            return 400, -1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed."
        if not 0 < window <= 60_000:
            return 400, -1131, "recvWindow must be less than 60000"
        now = self.now_ms()
        if stamp > now + 1000 or now - stamp > window:
            return 400, -1021, "Timestamp for this request is outside of the recvWindow."
        return None

    def _refuse(self, request: web.Request, params: dict[str, str], status: int, code: int, msg: str) -> web.Response:
        self._note(request, params, status)
        return web.json_response({"code": code, "msg": msg}, status=status)

    def _note(self, request: web.Request, params: dict[str, str], status: int) -> None:
        """Log a signed request with its parameters and method (the base log keeps only the URL query)."""
        from tests.doubles.binance import Request
        with self._lock:
            self._log.append(Request(request.path, {**params, "method": request.method}, status, self.now_ms()))

    def _ok(self, request: web.Request, params: dict[str, str], body: Any) -> web.Response:
        self._note(request, params, 200)
        return web.json_response(body)

    def _market(self, params: dict[str, str]) -> str | None:
        symbol = params.get("symbol", "")
        return symbol if symbol in self.markets else None

    # -- endpoints --------------------------------------------------------------------------------------

    async def _ticker_price(self, request: web.Request) -> web.Response:
        if (failed := await self._fault(request)) is not None:
            return failed
        symbol = request.query.get("symbol")
        self._record(request, 200)
        prices = [{"symbol": m, "price": f"{self.price(f'{b}/{q}'):.8f}"} for m, (b, q) in self.markets.items()
                  if symbol in (None, m)]
        return web.json_response(prices[0] if symbol else prices)

    async def _ticker_24hr(self, request: web.Request) -> web.Response:
        if (failed := await self._fault(request)) is not None:
            return failed
        symbol = request.query.get("symbol")
        if symbol is not None and symbol not in self.markets:
            return self._error(request, -1121, "Invalid symbol.")
        self._record(request, 200)
        now = self.now_ms()
        rows = []
        for market_id, (base, quote) in self.markets.items():
            if symbol not in (None, market_id):
                continue
            last = self.price(f"{base}/{quote}")
            rows.append({"symbol": market_id, "priceChange": "0", "priceChangePercent": "0",
                         "weightedAvgPrice": f"{last:.8f}", "prevClosePrice": f"{last:.8f}",
                         "lastPrice": f"{last:.8f}", "lastQty": "1", "bidPrice": f"{last:.8f}", "bidQty": "1",
                         "askPrice": f"{last:.8f}", "askQty": "1", "openPrice": f"{last:.8f}",
                         "highPrice": f"{last:.8f}", "lowPrice": f"{last:.8f}", "volume": "0", "quoteVolume": "0",
                         "openTime": now - 86_400_000, "closeTime": now, "firstId": 0, "lastId": 0, "count": 0})
        return web.json_response(rows[0] if symbol else rows)

    async def _account(self, request: web.Request, params: dict[str, str]) -> web.Response:
        with self._trading:
            balances = [{"asset": a, "free": f"{self.free[a]:.8f}", "locked": f"{self.locked.get(a, 0.0):.8f}"}
                        for a in sorted(self.free)]
        return self._ok(request, params, {
            "makerCommission": 10, "takerCommission": 10, "buyerCommission": 0, "sellerCommission": 0,
            "commissionRates": {"maker": "0.00100000", "taker": "0.00100000", "buyer": "0", "seller": "0"},
            "canTrade": True, "canWithdraw": True, "canDeposit": True, "brokered": False,
            "requireSelfTradePrevention": False, "preventSor": False, "updateTime": self.now_ms(),
            "accountType": "SPOT", "balances": balances, "permissions": ["SPOT"], "uid": 1})

    async def _new_order(self, request: web.Request, params: dict[str, str]) -> web.Response:
        with self._lock:
            fault = self._order_faults.popleft() if self._order_faults else None
        if fault is not None and not fault[1]:
            return self._fail_with(request, params, fault[0])
        market_id = self._market(params)
        if market_id is None:
            return self._refuse(request, params, 400, -1121, "Invalid symbol.")
        side, kind = params.get("side", ""), params.get("type", "")
        if side not in ("BUY", "SELL") or kind not in ("MARKET", "LIMIT"):
            return self._refuse(request, params, 400, -1116, "Invalid orderType.")
        client_id = params.get("newClientOrderId") or f"x-{next(self._ids)}"
        if len(client_id) > 36 or not set(client_id) <= _CLIENT_ID_CHARS:
            return self._refuse(request, params, 400, -1100,
                                "Illegal characters found in parameter 'newClientOrderId'; legal range is "
                                "'^[\\.A-Z\\:/a-z0-9_-]{1,36}$'.")
        try:
            qty = float(params["quantity"])
            price = float(params.get("price", 0) or 0)
        except (KeyError, ValueError):
            return self._refuse(request, params, 400, -1100, "Illegal characters found in parameter 'quantity'.")
        if kind == "LIMIT" and price <= 0:
            return self._refuse(request, params, 400, -1102, "Mandatory parameter 'price' was not sent.")
        base, quote = self.markets[market_id]
        with self._trading:
            if any(o.client_id == client_id for o in self.book.values()):
                return self._refuse(request, params, 400, -2010, "Duplicate order sent.")
            need = qty * (price or self.price(f"{base}/{quote}")) * (1 + self.commission_rate) if side == "BUY" else qty
            if self.free[quote if side == "BUY" else base] < need - 1e-9:
                return self._refuse(request, params, 400, -2010, "Account has insufficient balance for requested "
                                    "action.")
            order = self._open(market_id, side, kind, qty, price, client_id)
            body = {**order.view(), "transactTime": order.time_ms,
                    "fills": [{"price": t["price"], "qty": t["qty"], "commission": t["commission"],
                               "commissionAsset": t["commissionAsset"], "tradeId": t["id"]} for t in order.trades]}
        if fault is not None:
            return self._fail_with(request, params, fault[0])
        return self._ok(request, params, body)

    def _fail_with(self, request: web.Request, params: dict[str, str], status: int) -> web.Response:
        self._note(request, params, status)
        code, msg = _ERRORS.get(status, (-1000, "An unknown error occurred while processing the request."))
        return web.json_response({"code": code, "msg": msg}, status=status)

    def _find(self, params: dict[str, str]) -> VenueOrder | None:
        market_id = params.get("symbol")
        wanted_id, wanted_client = params.get("orderId"), params.get("origClientOrderId")
        for order in self.book.values():
            if order.symbol == market_id and (str(order.order_id) == wanted_id or order.client_id == wanted_client):
                return order
        return None

    async def _get_order(self, request: web.Request, params: dict[str, str]) -> web.Response:
        with self._trading:
            order = self._find(params)
            if order is None:
                return self._refuse(request, params, 400, -2013, "Order does not exist.")
            return self._ok(request, params, order.view())

    async def _cancel_order(self, request: web.Request, params: dict[str, str]) -> web.Response:
        with self._trading:
            order = self._find(params)
            if order is None or order.status not in ("NEW", "PARTIALLY_FILLED"):
                return self._refuse(request, params, 400, -2011, "Unknown order sent.")
            if order.kind == "LIMIT":
                self._lock_funds(order, -1)
            order.status, order.update_ms = "CANCELED", self.now_ms()
            self._report(order, "CANCELED")
            return self._ok(request, params, order.view())

    async def _open_orders(self, request: web.Request, params: dict[str, str]) -> web.Response:
        market_id = params.get("symbol")
        with self._trading:
            rows = [o.view() for o in self.book.values() if o.status in ("NEW", "PARTIALLY_FILLED")
                    and market_id in (None, o.symbol)]
        return self._ok(request, params, rows)

    async def _all_orders(self, request: web.Request, params: dict[str, str]) -> web.Response:
        if self._market(params) is None:
            return self._refuse(request, params, 400, -1102, "Mandatory parameter 'symbol' was not sent.")
        with self._trading:
            rows = [o.view() for o in self.book.values() if o.symbol == params["symbol"]
                    and o.time_ms >= int(params.get("startTime", 0))]
        return self._ok(request, params, rows[-int(params.get("limit", 500)):])

    async def _my_trades(self, request: web.Request, params: dict[str, str]) -> web.Response:
        if self._market(params) is None:
            return self._refuse(request, params, 400, -1102, "Mandatory parameter 'symbol' was not sent.")
        start = int(params.get("startTime", 0))
        order_id = params.get("orderId")
        with self._trading:
            rows = [t for t in self.trades if t["symbol"] == params["symbol"] and t["time"] >= start
                    and order_id in (None, str(t["orderId"]))]
        limit = int(params.get("limit", 500))
        return self._ok(request, params, rows[:limit] if not math.isnan(limit) else rows)

    # -- the user data stream ---------------------------------------------------------------------------

    def user_stream_away(self, timeout: float = 10.0) -> None:
        """Close the open user streams and refuse new ones, until ``user_stream_back()``."""
        assert self._loop is not None
        self._user_away.set()
        asyncio.run_coroutine_threadsafe(self._close_user_streams(), self._loop).result(timeout)

    def user_stream_back(self) -> None:
        """Accept user streams again (and send on them again)."""
        self._user_away.clear()
        self._user_silent.clear()

    def user_stream_silent(self) -> None:
        """Keep the user streams open but push no more events on them."""
        self._user_silent.set()

    async def _close_user_streams(self) -> None:
        for ws in list(self._user_queues):
            await ws.close()

    def _report(self, order: VenueOrder, execution: str, trade: dict[str, Any] | None = None) -> None:
        """Push an ``executionReport`` of ``order``'s change to every subscribed user stream."""
        if self._loop is None or not self._user_queues or self._user_silent.is_set():
            return
        now = self.now_ms()
        event = {"e": "executionReport", "E": now, "s": order.symbol, "c": order.client_id, "S": order.side,
                 "o": order.kind, "f": "GTC", "q": f"{order.qty:.8f}", "p": f"{order.price:.8f}",
                 "P": "0.00000000", "F": "0.00000000", "g": -1, "C": order.client_id if execution == "CANCELED" else "",
                 "x": execution, "X": order.status, "r": "NONE", "i": order.order_id,
                 "l": trade["qty"] if trade else "0.00000000", "z": f"{order.executed:.8f}",
                 "L": trade["price"] if trade else "0.00000000", "n": trade["commission"] if trade else "0",
                 "N": trade["commissionAsset"] if trade else None, "T": order.update_ms or order.time_ms,
                 "t": trade["id"] if trade else -1, "I": next(self._ids),
                 "w": order.status in ("NEW", "PARTIALLY_FILLED"),
                 "m": trade["isMaker"] if trade else False, "M": trade is not None, "O": order.time_ms,
                 "Z": f"{order.quote:.8f}", "Y": trade["quoteQty"] if trade else "0.00000000", "Q": "0.00000000",
                 "W": order.time_ms, "V": "EXPIRE_MAKER"}
        self._loop.call_soon_threadsafe(self._fan_out, event)

    def _fan_out(self, event: dict[str, Any]) -> None:
        """Queue ``event`` for every subscribed user stream, in order (loop thread)."""
        for queue in self._user_queues.values():
            queue.put_nowait(event)

    async def _user_stream(self, request: web.Request) -> web.StreamResponse:
        """Binance's WebSocket API, as far as the user data stream: subscribe by signature, then events."""
        if self._user_away.is_set():
            self._record(request, 503)
            return web.Response(status=503)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._record(request, 101)
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        pusher: asyncio.Task[None] | None = None
        try:
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    continue
                try:
                    asked = json.loads(message.data)
                except ValueError:
                    await ws.send_json({"id": None, "status": 400,
                                        "error": {"code": -1000, "msg": "Malformed request."}})
                    continue
                if asked.get("method") != "userDataStream.subscribe.signature":
                    await ws.send_json({"id": asked.get("id"), "status": 400,
                                        "error": {"code": -1100, "msg": "Unknown method."}})
                    continue
                params = {k: str(v) for k, v in (asked.get("params") or {}).items()}
                signature = params.pop("signature", "")
                payload = "&".join(f"{k}={v}" for k, v in sorted(params.items()))
                refused = self._verify(params.get("apiKey", ""), payload, signature, params)
                if refused is not None:
                    await ws.send_json({"id": asked.get("id"), "status": refused[0],
                                        "error": {"code": refused[1], "msg": refused[2]}})
                    continue
                subscription = next(self._subscription_ids)
                await ws.send_json({"id": asked.get("id"), "status": 200, "result": {"subscriptionId": subscription}})
                if pusher is None:
                    self._user_queues[ws] = queue
                    pusher = asyncio.create_task(self._push_user(ws, queue, subscription))
                with self._lock:
                    self.user_subscriptions += 1
        finally:
            self._user_queues.pop(ws, None)
            if pusher is not None:
                pusher.cancel()
        return ws

    async def _push_user(self, ws: web.WebSocketResponse, queue: asyncio.Queue[dict[str, Any]],
                         subscription: int) -> None:
        while not ws.closed:
            event = await queue.get()
            await ws.send_json({"subscriptionId": subscription, "event": event})
            with self._lock:
                self.user_events += 1
