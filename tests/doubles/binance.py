"""A loopback Binance spot REST double: aiohttp on 127.0.0.1, a random port, its own event loop in a thread.

It answers what ccxt's ``binance`` class asks for public data, in Binance's shapes: ``/api/v3/time``,
``/api/v3/exchangeInfo`` (with ``/fapi/v1`` and ``/dapi/v1`` exchange infos listing no futures, which
ccxt's ``load_markets`` also reads) and ``/api/v3/klines`` (``startTime``/``endTime`` inclusive on open
times, ``limit`` 500 by default and at most 1000, as Binance pages; ``page_max`` caps it lower for short
tests). Bars are deterministic functions of symbol and open time, up to the double's clock, whose last
one is still forming; ``clock_start_ms`` sets where that clock starts (it then runs at wall speed).

Faults are injected per path: ``fail(path, status, times)`` answers the next ``times`` requests with
``status`` (429 and 418 with Binance's error body and a ``Retry-After``), ``delay(path, seconds, times)``
answers them late. Every request is logged (``requests``, ``count``) so tests count page requests.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import threading
import time
import zlib
from collections import deque
from dataclasses import dataclass
from typing import Any

from aiohttp import web

__all__ = ["BinanceDouble", "Request"]

_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_ERRORS = {429: (-1003, "Too many requests; current limit is 6000 request weight per 1 MINUTE."),
           418: (-1003, "Way too many requests; IP banned until later."),
           500: (-1000, "An unknown error occurred while processing the request."),
           503: (-1001, "Internal error; unable to process your request. Please try again.")}


@dataclass(frozen=True, slots=True)
class Request:
    """One request the double received: its path, query, the status it was answered with, and when (ms)."""

    path: str
    query: dict[str, str]
    status: int
    at_ms: int


def interval_ms(interval: str) -> int:
    """The length of a Binance kline interval (``1m``, ``4h``, ``1d``, ...) in ms; ValueError if not one."""
    count, unit = interval[:-1], interval[-1:]
    if unit not in _UNIT_MS or not count.isdigit() or int(count) <= 0:
        raise ValueError(interval)
    return int(count) * _UNIT_MS[unit]


class BinanceDouble:
    """The double: ``start()`` it (or use it as a context manager), point ccxt at ``url``, ``stop()`` it."""

    def __init__(self, symbols: tuple[str, ...] = ("BTC/USDT", "ETH/USDT"), page_max: int = 1000,
                 clock_start_ms: int | None = None, listed_ms: int = 1_483_228_800_000,
                 outages: tuple[tuple[int, int], ...] = (),
                 recorded: dict[str, tuple[str, list[list[Any]]]] | None = None) -> None:
        self.markets = {s.replace("/", ""): tuple(s.split("/")) for s in symbols}
        # symbol -> (interval, klines): real bars served as they are (in that interval only), not made-up ones
        self.recorded = {s.replace("/", ""): (interval, sorted(rows))
                         for s, (interval, rows) in (recorded or {}).items()}
        self.markets.update({s.replace("/", ""): tuple(s.split("/")) for s in (recorded or {})})
        self.page_max = page_max
        self.listed_ms = listed_ms  # no bar opens before this (2017-01-01 by default)
        self.outages = outages  # (from_ms, to_ms): no bar opens in [from, to), as when a venue was down
        self._clock = (clock_start_ms, time.monotonic())
        self._lock = threading.Lock()
        self._log: list[Request] = []
        self._faults: dict[str, deque[tuple[str, Any]]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self.port = 0

    # -- life ---------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The base URL to rebase the venue onto."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> BinanceDouble:
        """Start serving on a free loopback port; return self once it accepts connections."""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="binance-double", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(timeout)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving and end the loop's thread."""
        if self._loop is None or self._thread is None:
            return
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
        self._loop.close()
        self._loop = self._thread = self._runner = None

    def __enter__(self) -> BinanceDouble:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _application(self) -> web.Application:
        """The app with the public market-data routes; a richer double adds its own (calling this first)."""
        app = web.Application()
        app.router.add_get("/api/v3/time", self._time)
        app.router.add_get("/api/v3/exchangeInfo", self._exchange_info)
        app.router.add_get("/api/v3/klines", self._klines)
        app.router.add_get("/fapi/v1/exchangeInfo", self._no_futures)
        app.router.add_get("/dapi/v1/exchangeInfo", self._no_futures)
        return app

    async def _serve(self) -> None:
        self._runner = web.AppRunner(self._application(), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await self._listen(0)

    async def _listen(self, port: int) -> None:
        assert self._runner is not None
        self._site = web.TCPSite(self._runner, "127.0.0.1", port, reuse_address=True)
        await self._site.start()
        self.port = self._runner.addresses[0][1]

    # -- the clock, the bars, faults and the log ----------------------------------------------------

    def now_ms(self) -> int:
        """The double's clock in ms since the epoch."""
        start, at = self._clock
        if start is None:
            return time.time_ns() // 1_000_000
        return start + int((time.monotonic() - at) * 1000)

    @staticmethod
    def bar(symbol: str, open_ms: int, step_ms: int) -> list[Any]:
        """The kline of ``symbol`` (a Binance id, e.g. ``BTCUSDT``) opening at ``open_ms``, as Binance sends it."""
        base = 100.0 * (1 + zlib.crc32(symbol.encode()) % 500)
        i = open_ms // step_ms

        def close(k: int) -> float:
            return round(base * (1 + 0.03 * math.sin(2 * math.pi * k / 180) + 0.01 * math.sin(2 * math.pi * k / 47)), 2)

        o, c = close(i - 1), close(i)
        h, lo = round(max(o, c) + base * 0.0005, 2), round(min(o, c) - base * 0.0005, 2)
        return BinanceDouble.kline(open_ms, step_ms, o, h, lo, c, 1 + (i % 13) / 4, 10 + i % 7)

    @staticmethod
    def kline(open_ms: int, step_ms: int, o: float, h: float, lo: float, c: float, volume: float,
              trades: int = 1) -> list[Any]:
        """One kline as Binance sends it: times in ms, prices and volumes as decimal strings."""
        return [open_ms, f"{o:.8f}", f"{h:.8f}", f"{lo:.8f}", f"{c:.8f}", f"{volume:.8f}", open_ms + step_ms - 1,
                f"{volume * c:.8f}", trades, f"{volume / 2:.8f}", f"{volume * c / 2:.8f}", "0"]

    def set_clock(self, start_ms: int) -> None:
        """Set the double's clock to ``start_ms`` (it runs on at wall speed from there)."""
        self._clock = (start_ms, time.monotonic())

    def fail(self, path: str, status: int, times: int = 1, retry_after: float = 0, after: int = 0) -> None:
        """Answer ``times`` requests to ``path`` with HTTP ``status``, once ``after`` more were answered as usual."""
        with self._lock:
            queue = self._faults.setdefault(path, deque())
            queue.extend([("pass", None)] * after + [("fail", (status, retry_after))] * times)

    def delay(self, path: str, seconds: float, times: int = 1, after: int = 0) -> None:
        """Answer ``times`` requests to ``path`` ``seconds`` late, once ``after`` more were answered as usual."""
        with self._lock:
            self._faults.setdefault(path, deque()).extend([("pass", None)] * after + [("delay", seconds)] * times)

    def heal(self, path: str) -> None:
        """Drop the faults still queued for ``path``: it answers as usual again."""
        with self._lock:
            self._faults.pop(path, None)

    @property
    def requests(self) -> list[Request]:
        """Every request so far, in order."""
        with self._lock:
            return list(self._log)

    def count(self, path: str = "/api/v3/klines", status: int | None = None) -> int:
        """Requests to ``path`` so far (answered with ``status``, if given)."""
        return sum(1 for r in self.requests if r.path == path and (status is None or r.status == status))

    def _record(self, request: web.Request, status: int) -> None:
        with self._lock:
            self._log.append(Request(request.path, dict(request.query), status, self.now_ms()))

    async def _fault(self, request: web.Request) -> web.Response | None:
        with self._lock:
            queue = self._faults.get(request.path)
            fault = queue.popleft() if queue else None
        if fault is None:
            return None
        kind, value = fault
        if kind == "pass":
            return None
        if kind == "delay":
            await asyncio.sleep(value)
            return None
        status, retry_after = value
        self._record(request, status)
        code, msg = _ERRORS.get(status, (-1000, "An unknown error occurred while processing the request."))
        return web.json_response({"code": code, "msg": msg}, status=status,
                                 headers={"Retry-After": str(retry_after)} if status in (418, 429) else None)

    def _error(self, request: web.Request, code: int, msg: str) -> web.Response:
        self._record(request, 400)
        return web.json_response({"code": code, "msg": msg}, status=400)

    # -- endpoints ----------------------------------------------------------------------------------

    async def _time(self, request: web.Request) -> web.Response:
        if (failed := await self._fault(request)) is not None:
            return failed
        self._record(request, 200)
        return web.json_response({"serverTime": self.now_ms()})

    async def _no_futures(self, request: web.Request) -> web.Response:
        if (failed := await self._fault(request)) is not None:
            return failed
        self._record(request, 200)
        return web.json_response({"timezone": "UTC", "serverTime": self.now_ms(), "rateLimits": [],
                                  "exchangeFilters": [], "assets": [], "symbols": []})

    async def _exchange_info(self, request: web.Request) -> web.Response:
        if (failed := await self._fault(request)) is not None:
            return failed
        self._record(request, 200)
        symbols = [{
            "symbol": market_id, "status": "TRADING", "baseAsset": base, "baseAssetPrecision": 8, "quoteAsset": quote,
            "quotePrecision": 8, "quoteAssetPrecision": 8, "baseCommissionPrecision": 8, "quoteCommissionPrecision": 8,
            "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
            "icebergAllowed": True, "ocoAllowed": True, "quoteOrderQtyMarketAllowed": True, "allowTrailingStop": True,
            "cancelReplaceAllowed": True, "isSpotTradingAllowed": True, "isMarginTradingAllowed": False,
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": "0.01000000", "maxPrice": "1000000.00000000",
                 "tickSize": "0.01000000"},
                {"filterType": "LOT_SIZE", "minQty": "0.00001000", "maxQty": "9000.00000000", "stepSize": "0.00001000"},
                {"filterType": "NOTIONAL", "minNotional": "5.00000000", "applyMinToMarket": True,
                 "maxNotional": "9000000.00000000", "applyMaxToMarket": False, "avgPriceMins": 5},
            ],
            "permissions": [], "permissionSets": [["SPOT"]], "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
            "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
        } for market_id, (base, quote) in self.markets.items()]
        return web.json_response({
            "timezone": "UTC", "serverTime": self.now_ms(),
            "rateLimits": [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000}],
            "exchangeFilters": [], "symbols": symbols})

    async def _klines(self, request: web.Request) -> web.Response:
        if (failed := await self._fault(request)) is not None:
            return failed
        q = request.query
        symbol = q.get("symbol", "")
        if symbol not in self.markets:
            return self._error(request, -1121, "Invalid symbol.")
        try:
            step = interval_ms(q.get("interval", ""))
        except ValueError:
            return self._error(request, -1120, "Invalid interval.")
        try:
            limit = int(q.get("limit", 500))
            start = int(q["startTime"]) if "startTime" in q else None
            end = int(q["endTime"]) if "endTime" in q else None
        except ValueError:
            return self._error(request, -1100, "Illegal characters found in a parameter.")
        if not 1 <= limit <= 1000:
            return self._error(request, -1130, "Invalid data sent for a parameter.")
        limit = min(limit, self.page_max)
        now = self.now_ms()
        last_open = (min(now, end) if end is not None else now) // step * step  # the forming bar included
        if start is None:
            first_open = last_open - (limit - 1) * step
        else:
            first_open = -(-start // step) * step
        first_open = max(first_open, -(-self.listed_ms // step) * step)
        if symbol in self.recorded:
            interval, rows = self.recorded[symbol]
            shown = [r for r in rows if interval == q["interval"] and r[0] <= last_open
                     and (start is None or r[0] >= start) and (end is None or r[0] <= end)]
            self._record(request, 200)
            return web.json_response(shown[:limit] if start is not None else shown[-limit:])
        opens = itertools.islice((t for t in range(first_open, last_open + 1, step)
                                  if not any(a <= t < b for a, b in self.outages)), limit)
        self._record(request, 200)
        return web.json_response([self.bar(symbol, t, step) for t in opens])
