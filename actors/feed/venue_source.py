"""Market data from a venue, the source: ccxt's tickers published into the ingress as wire v1.

``live --feed venue`` runs a ``VenueSource`` in a thread of its own beside the pipeline, as the built-in
simulator runs: it connects a PUB socket to the ingress (``Publisher``) and sends ticks there, so the feed
actor takes them in like any other publisher's and nothing here sits on the pipeline's path.

The thread runs an asyncio loop around ccxt's async exchange. Where ccxt.pro has ``watch_tickers`` for
the venue and ``venue.feed_websocket`` is on, tickers come from the venue's websocket; if the websocket
cannot be opened (or sends nothing within ``venue.timeout_s``) the source polls REST instead
(``fetch_tickers``, else ``fetch_ticker`` per symbol) every ``venue.poll_s`` for the rest of the run.
With ``venue.url`` every endpoint, websocket ones included, is rebased onto it, so a test double or a
proxy is all it ever talks to. After an error it tries again with exponential backoff and jitter; the
start and the end of an outage are logged (and handed to ``on_change``) once each, not per try.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import ccxt
import ccxt.async_support
import ccxt.pro
from loguru import logger

from actors.feed.publisher import Publisher
from actors.feed.venue import Link, TickerTicks
from actors.store.exchange import Retry, open_venue
from settings import VenueSettings
from supervisors.errors import DataError

__all__ = ["VenueSource", "venue_markets"]

_STOP_CHECK_S = 0.05


def _one_line(exc: BaseException) -> str:
    text = re.sub(r"\s+", " ", str(exc)).strip()
    text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def venue_markets(venue: str, url: str | None, symbols: Iterable[str], timeout_s: float, sandbox: bool = False,
                  retry: Retry | None = None) -> dict[str, Any]:
    """The venue's markets (its testnet's with ``sandbox``), once every one of ``symbols`` is among them.
    DataError (one line) for an unknown venue or a symbol it does not list; VenueError when it cannot be
    reached (after ``retry``)."""
    exchange = open_venue(venue, url, timeout_s, sandbox=sandbox)
    markets = (retry or Retry(retries=2, backoff_s=0.5)).call(exchange, "load_markets", exchange.load_markets)
    unknown = [s for s in symbols if s not in markets]
    if unknown:
        listed = ", ".join(sorted(markets)[:3])
        raise DataError(f"{venue} lists no {', '.join(unknown)}; symbols are ccxt's, e.g. {listed}"
                        if markets else f"{venue} lists no markets")
    return dict(markets)


class VenueSource:
    """Streams the tickers of ``symbols`` on ``venue`` into the ingress at ``endpoint``; see the module's
    docstring. ``markets``: the venue's, already loaded (``venue_markets``). ``on_change`` is called
    (in the source's thread) with the view when an outage begins or ends."""

    def __init__(self, venue: str, url: str | None, symbols: Iterable[str], endpoint: str, settings: VenueSettings,
                 markets: Mapping[str, Any] | None = None,
                 on_change: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.venue, self.url, self.endpoint = venue, url or None, endpoint
        self.symbols = tuple(symbols)
        self.settings = settings
        self.markets = markets
        self.on_change = on_change
        self.ticks = TickerTicks(self.symbols, f"venue:{venue}")
        self.link = Link(Retry(backoff_s=settings.backoff_s, cap_s=settings.feed_backoff_max_s))
        self.requests = 0

    def view(self) -> dict[str, Any]:
        """What ``health`` shows of the source (any thread)."""
        return {"venue": self.venue, "symbols": list(self.symbols), **self.link.view.as_json(time.monotonic_ns()),
                "ticks_sent": self.ticks.seq, "repeats_dropped": self.ticks.repeats, "requests": self.requests}

    def run(self, stop: threading.Event) -> int:
        """Publish ticks until ``stop`` is set (thread target); return how many were sent."""
        publisher = Publisher(self.endpoint)
        try:
            publisher.wait_for_subscriber()
            asyncio.run(self._main(publisher, stop))
        finally:
            publisher.close()
        return self.ticks.seq

    async def _main(self, publisher: Publisher, stop: threading.Event) -> None:
        api = ccxt.pro if self.venue in ccxt.pro.exchanges else ccxt.async_support
        exchange = open_venue(self.venue, self.url, self.settings.timeout_s, api, self.settings.sandbox)
        if self.markets is not None:
            exchange.set_markets(dict(self.markets))
        main = asyncio.current_task()
        assert main is not None
        watcher = asyncio.create_task(self._until(stop, main))
        try:
            if self.settings.feed_websocket and exchange.has.get("watchTickers"):
                await self._stream(exchange, publisher)
            await self._poll(exchange, publisher)
        except asyncio.CancelledError:
            pass
        finally:
            watcher.cancel()
            await exchange.close()

    @staticmethod
    async def _until(stop: threading.Event, task: asyncio.Task[Any]) -> None:
        """Cancel ``task`` (and the request it waits on) once ``stop`` is set."""
        while not stop.is_set():
            await asyncio.sleep(_STOP_CHECK_S)
        task.cancel()

    def _send(self, publisher: Publisher, tickers: Iterable[Mapping[str, Any]]) -> None:
        for tick in self.ticks.ticks(tickers, time.time_ns()):
            publisher.send_tick(tick)

    def _answered(self, via: str) -> None:
        failures = self.link.view.failures
        ended = self.link.answered(via, time.monotonic_ns())
        if ended is not None:
            logger.info("venue feed {}: data again through {} after {:.1f}s of outage ({} failed tries)", self.venue,
                        via, ended, failures)
            self._changed("recovered")

    def _failed(self, exc: BaseException) -> float:
        """Record a failed try; log an outage's start once; return the wait before the next try."""
        error = _one_line(exc)
        began, wait = self.link.failed(error, time.monotonic_ns())
        if began:
            logger.warning("venue feed {}: no answer ({}); reconnecting with backoff up to {:g}s, no data until "
                           "then", self.venue, error, self.settings.feed_backoff_max_s)
            self._changed("outage")
        else:
            logger.debug("venue feed {}: try {} failed ({}); next in {:.2f}s", self.venue, self.link.view.failures,
                         error, wait)
        return wait

    def _changed(self, change: str) -> None:
        if self.on_change is not None:
            self.on_change({"change": change, **self.view()})

    async def _stream(self, exchange: ccxt.Exchange, publisher: Publisher) -> None:
        """Tickers from the websocket; return when it cannot be used (never answered), to poll instead."""
        timeout = self.settings.timeout_s
        while True:
            try:
                self.requests += 1
                tickers = await asyncio.wait_for(exchange.watch_tickers(list(self.symbols)),
                                                 timeout if self.link.view.via != "websocket" else None)
            except (ccxt.BaseError, OSError, asyncio.TimeoutError) as exc:
                if self.link.view.via != "websocket":  # it never answered: polling it is
                    logger.info("venue feed {}: no websocket ({}); polling REST every {:g}s", self.venue,
                                _one_line(exc), self.settings.poll_s)
                    return
                await asyncio.sleep(self._failed(exc))
                continue
            self._answered("websocket")
            self._send(publisher, tickers.values())

    async def _fetch(self, exchange: ccxt.Exchange) -> list[Mapping[str, Any]]:
        self.requests += 1
        if exchange.has.get("fetchTickers"):
            return list((await exchange.fetch_tickers(list(self.symbols))).values())
        return list(await asyncio.gather(*(exchange.fetch_ticker(s) for s in self.symbols)))

    async def _poll(self, exchange: ccxt.Exchange, publisher: Publisher) -> None:
        """Tickers over REST every ``venue.poll_s``, until cancelled."""
        period = self.settings.poll_s
        if self.link.view.state == "connecting":
            logger.info("venue feed {}: polling REST every {:g}s for {}", self.venue, period, ", ".join(self.symbols))
        next_at = time.monotonic()
        while True:
            try:
                tickers = await self._fetch(exchange)
            except (ccxt.BaseError, OSError, asyncio.TimeoutError) as exc:
                wait = self._failed(exc)
                await asyncio.sleep(wait)
                next_at = time.monotonic()
                continue
            self._answered("rest")
            self._send(publisher, tickers)
            next_at += period
            now = time.monotonic()
            if next_at < now:  # a slow reply: keep the period from now on rather than catching up
                next_at = now
            await asyncio.sleep(max(0.0, next_at - now))
