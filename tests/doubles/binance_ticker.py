"""The loopback Binance double with tickers, and an exchange that can go away and come back.

``TickerBinance`` adds to :class:`BinanceDouble` what ccxt's ``binance`` asks for prices, in Binance's
spot shapes: ``/api/v3/ticker/24hr`` (``fetch_ticker`` with ``symbol``, ``fetch_tickers`` with a JSON
list in ``symbols`` or none for every market), ``/api/v3/ticker/bookTicker`` (``fetch_bids_asks``) and
``/api/v3/ticker/price`` (``fetch_last_prices``).

Prices walk: each symbol's last price is a deterministic function of the double's clock that changes
every ``walk_ms`` (step ``i`` of a walk, or ``path[i % len(path)]`` when a ``path`` of prices is given,
e.g. a real series), and the ticker's ``closeTime`` is when it last changed, so two polls within one
step see the same ticker. ``hold()`` freezes prices (the time stays that of the last change),
``move(symbol, last)`` sets one (stamped now) and holds it, ``walk()`` lets them walk again.

With ``websocket=True`` it also serves Binance's market streams at ``/ws/<n>`` as ccxt.pro's
``watch_tickers`` uses them: ``{"method": "SUBSCRIBE", "params": ["btcusdt@ticker", ...], "id": n}`` is
answered ``{"result": null, "id": n}``, then a ``24hrTicker`` event is pushed for each subscribed
symbol whenever its ticker changes. Without, a websocket client gets a 404 at the handshake.

``away()`` makes the exchange go away: the listening socket is closed (new connections are refused),
open websockets are closed and a request on a connection kept alive is cut off unanswered; ``back()``
serves again on the same port. ``served`` lists every ``(symbol id, closeTime)`` a ticker reply or
event carried; ``streams`` counts the websocket connections accepted.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import WSMsgType, web

from tests.doubles.binance import BinanceDouble

__all__ = ["TickerBinance"]

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class TickerBinance(BinanceDouble):
    """The double with tickers; see the module's docstring."""

    def __init__(self, symbols: tuple[str, ...] = ("BTC/USDT", "ETH/USDT"), walk_ms: int = 100,
                 path: tuple[float, ...] = (), websocket: bool = False, **kwargs: Any) -> None:
        super().__init__(symbols, **kwargs)
        self.walk_ms = walk_ms
        self.path = path
        self.websocket = websocket
        self.streams = 0
        self._sockets: set[web.WebSocketResponse] = set()
        self._held: dict[str, tuple[float, int]] = {}  # symbol id -> (last, closeTime ms) while held
        self._served: list[tuple[str, int]] = []
        self._away = threading.Event()
        self._site: web.TCPSite | None = None

    # -- life: the routes, going away and coming back -----------------------------------------------

    def _application(self) -> web.Application:
        app = super()._application()
        app.middlewares.append(self._gone)
        for path, handler in (("/api/v3/ticker/24hr", self._ticker_24hr), ("/api/v3/ticker/bookTicker", self._book_ticker),
                              ("/api/v3/ticker/price", self._price)):
            app.router.add_get(path, handler)
        if self.websocket:
            app.router.add_get("/ws/{stream}", self._stream)
        return app

    @web.middleware
    async def _gone(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        """While away, cut a request on a kept-alive connection off without an answer."""
        if self._away.is_set() and request.transport is not None:
            request.transport.close()
            return web.Response(status=503)  # never reaches the client: its connection is closed
        return await handler(request)

    def away(self, timeout: float = 10.0) -> None:
        """Go away: refuse new connections and answer nothing on open ones, until ``back()``."""
        assert self._loop is not None and self._site is not None
        self._away.set()
        asyncio.run_coroutine_threadsafe(self._site.stop(), self._loop).result(timeout)
        asyncio.run_coroutine_threadsafe(self._close_streams(), self._loop).result(timeout)

    def back(self, timeout: float = 10.0) -> None:
        """Come back on the same port."""
        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(self._listen(self.port), self._loop).result(timeout)
        self._away.clear()

    @property
    def is_away(self) -> bool:
        """Whether the exchange is away now."""
        return self._away.is_set()

    async def _close_streams(self) -> None:
        for ws in list(self._sockets):
            await ws.close()

    # -- prices ---------------------------------------------------------------------------------------

    def _walked(self, market_id: str, now_ms: int) -> tuple[float, int]:
        step = now_ms // self.walk_ms
        if self.path:
            return round(self.path[step % len(self.path)], 2), step * self.walk_ms
        base = 100.0 * (1 + zlib.crc32(market_id.encode()) % 500)
        last = round(base * (1 + 0.002 * math.sin(2 * math.pi * step / 50) + 0.001 * math.sin(step / 7)), 2)
        return last, step * self.walk_ms

    def quote(self, market_id: str) -> tuple[float, float, float, int]:
        """``(bid, ask, last, closeTime ms)`` of ``market_id`` (e.g. ``BTCUSDT``) now."""
        with self._lock:
            held = self._held.get(market_id)
        if held is not None:
            return self._quoted(*held)
        return self.quote_at(market_id, self.now_ms())

    def quote_at(self, market_id: str, at_ms: int) -> tuple[float, float, float, int]:
        """``(bid, ask, last, closeTime ms)`` of ``market_id`` walking, at ``at_ms`` on the double's clock."""
        return self._quoted(*self._walked(market_id, at_ms))

    @staticmethod
    def _quoted(last: float, ts: int) -> tuple[float, float, float, int]:
        """The quote around ``last``: bid and ask a cent away."""
        return round(last - 0.01, 2), round(last + 0.01, 2), last, ts

    def hold(self) -> None:
        """Freeze every price where it is."""
        quotes = {market_id: self.quote(market_id) for market_id in self.markets}
        with self._lock:
            self._held.update({market_id: (q[2], q[3]) for market_id, q in quotes.items()})

    def move(self, symbol: str, last: float) -> None:
        """Set ``symbol``'s (e.g. ``BTC/USDT``) last price, stamped now, and hold it there."""
        with self._lock:
            self._held[symbol.replace("/", "")] = (last, self.now_ms())

    def walk(self) -> None:
        """Let every price walk with the clock again."""
        with self._lock:
            self._held.clear()

    @property
    def served(self) -> list[tuple[str, int]]:
        """Every ``(symbol id, closeTime)`` served in a ticker reply, in order."""
        with self._lock:
            return list(self._served)

    # -- endpoints ------------------------------------------------------------------------------------

    def _asked(self, request: web.Request) -> list[str] | web.Response:
        """The market ids a ticker request names (``symbol`` or a JSON ``symbols`` list; none: all), or
        Binance's error reply for an unknown or malformed one."""
        q = request.query
        if "symbol" in q:
            ids = [q["symbol"]]
        elif "symbols" in q:
            try:
                ids = json.loads(q["symbols"])
            except ValueError:
                return self._error(request, -1100, "Illegal characters found in parameter 'symbols'.")
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                return self._error(request, -1100, "Illegal characters found in parameter 'symbols'.")
        else:
            ids = list(self.markets)
        if any(i not in self.markets for i in ids):
            return self._error(request, -1121, "Invalid symbol.")
        return ids

    async def _tickers(self, request: web.Request, row: Callable[[str], dict[str, Any]]) -> web.Response:
        """A ticker endpoint: ``row`` of each market asked for (one object for ``symbol``, else a list)."""
        if (failed := await self._fault(request)) is not None:
            return failed
        ids = self._asked(request)
        if isinstance(ids, web.Response):
            return ids
        rows = [row(market_id) for market_id in ids]
        self._record(request, 200)
        return web.json_response(rows[0] if "symbol" in request.query else rows)

    def _ticker_row(self, market_id: str) -> dict[str, Any]:
        bid, ask, last, ts = self.quote(market_id)
        with self._lock:
            self._served.append((market_id, ts))
        open_price = self._walked(market_id, ts - 86_400_000)[0]
        return {
            "symbol": market_id, "priceChange": f"{last - open_price:.8f}",
            "priceChangePercent": f"{(last / open_price - 1) * 100:.3f}", "weightedAvgPrice": f"{last:.8f}",
            "prevClosePrice": f"{open_price:.8f}", "lastPrice": f"{last:.8f}", "lastQty": "0.01000000",
            "bidPrice": f"{bid:.8f}", "bidQty": "1.00000000", "askPrice": f"{ask:.8f}", "askQty": "1.00000000",
            "openPrice": f"{open_price:.8f}", "highPrice": f"{max(last, open_price):.8f}",
            "lowPrice": f"{min(last, open_price):.8f}", "volume": "1000.00000000",
            "quoteVolume": f"{1000 * last:.8f}", "openTime": ts - 86_400_000, "closeTime": ts,
            "firstId": 1, "lastId": ts // self.walk_ms, "count": ts // self.walk_ms}

    def _book_row(self, market_id: str) -> dict[str, Any]:
        bid, ask, _, _ = self.quote(market_id)
        return {"symbol": market_id, "bidPrice": f"{bid:.8f}", "bidQty": "1.00000000", "askPrice": f"{ask:.8f}",
                "askQty": "1.00000000"}

    async def _ticker_24hr(self, request: web.Request) -> web.Response:
        return await self._tickers(request, self._ticker_row)

    async def _book_ticker(self, request: web.Request) -> web.Response:
        return await self._tickers(request, self._book_row)

    async def _price(self, request: web.Request) -> web.Response:
        return await self._tickers(request, lambda i: {"symbol": i, "price": f"{self.quote(i)[2]:.8f}"})

    async def _stream(self, request: web.Request) -> web.WebSocketResponse:
        """Binance's market streams: SUBSCRIBE to ``<id>@ticker`` or ``<id>@miniTicker``, then events."""
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        with self._lock:
            self.streams += 1
        self._sockets.add(ws)
        subscribed: dict[str, str] = {}  # market id -> ticker | miniTicker
        pusher = asyncio.create_task(self._push(ws, subscribed))
        try:
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    continue
                asked = json.loads(message.data)
                if asked.get("method") == "SUBSCRIBE":
                    for stream in asked.get("params", []):
                        name, _, channel = stream.partition("@")
                        if name.upper() in self.markets and channel in ("ticker", "miniTicker"):
                            subscribed[name.upper()] = channel
                await ws.send_json({"result": None, "id": asked.get("id")})
        finally:
            pusher.cancel()
            self._sockets.discard(ws)
        return ws

    async def _push(self, ws: web.WebSocketResponse, subscribed: dict[str, str]) -> None:
        """Send each subscribed symbol's ticker whenever it changes, until the socket closes: a
        ``24hrTicker`` (with bid and ask) or a ``24hrMiniTicker`` (last price only, timed by ``E``)."""
        sent: dict[str, int] = {}
        while not ws.closed:
            for market_id, channel in sorted(subscribed.items()):
                bid, ask, last, ts = self.quote(market_id)
                if sent.get(market_id) == ts:
                    continue
                sent[market_id] = ts
                with self._lock:
                    self._served.append((market_id, ts))
                event = {"e": "24hrMiniTicker", "E": ts, "s": market_id, "c": f"{last:.8f}", "o": f"{last:.8f}",
                         "h": f"{last:.8f}", "l": f"{last:.8f}", "v": "1000.00000000", "q": f"{1000 * last:.8f}"}
                if channel == "ticker":
                    event.update({"e": "24hrTicker", "E": self.now_ms(), "b": f"{bid:.8f}", "B": "1.00000000",
                                  "a": f"{ask:.8f}", "A": "1.00000000", "O": ts - 86_400_000, "C": ts})
                await ws.send_json(event)
            await asyncio.sleep(self.walk_ms / 2000)
