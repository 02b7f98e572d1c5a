"""The venue's order stream: order updates and executions from its websocket through ccxt.pro.

An ``OrderStream`` runs in a thread of its own with its own asyncio loop around ccxt.pro's exchange
(never on the pipeline's path, never in the venue actor's thread). It subscribes to the venue's user
stream (``authenticate`` where ccxt has one, e.g. Binance's ``userDataStream.subscribe.signature`` on its
WebSocket API), then relays what ``watch_orders`` and ``watch_my_trades`` return, as they come, to the
venue actor (``tell``) as :class:`StreamOrders` and :class:`StreamTrades`. :class:`StreamUp` says the
subscription stands (where ccxt's ``authenticate`` takes no arguments it is awaited first, so that means
the venue accepted it; elsewhere it means the watches were started, and a refusal arrives as their
error), :class:`StreamDown` that it failed or was lost (``final``: it is not tried again); after a
failure it subscribes again with exponential backoff and jitter. What the actor does with these (and
when it polls REST instead) is its business.
"""

from __future__ import annotations

import asyncio
import inspect
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import ccxt
import ccxt.pro

from actors.store.exchange import Retry
from actors.venue.credentials import Credentials
from actors.venue.session import open_trading

__all__ = ["OrderStream", "StreamDown", "StreamOrders", "StreamTrades", "StreamUp", "streams_orders"]

_STOP_CHECK_S = 0.05


@dataclass(frozen=True, slots=True)
class StreamUp:
    """The order stream is subscribed: updates come through it from now on."""


@dataclass(frozen=True, slots=True)
class StreamDown:
    """The order stream failed or was lost (``error``, one line); ``final``: it will not be tried again."""

    error: str
    final: bool = False


@dataclass(frozen=True, slots=True)
class StreamOrders:
    """Order updates from the stream (ccxt's unified order maps)."""

    orders: tuple[dict[str, Any], ...]


@dataclass(frozen=True, slots=True)
class StreamTrades:
    """Executions from the stream (ccxt's unified trade maps)."""

    trades: tuple[dict[str, Any], ...]


def _one_line(exc: BaseException) -> str:
    text = re.sub(r"\s+", " ", str(exc)).strip()
    text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _no_arguments(fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` can be called without arguments."""
    return all(p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
               for p in inspect.signature(fn).parameters.values())


def streams_orders(venue: str) -> bool:
    """Whether ccxt.pro offers ``venue``'s order updates and executions on a websocket."""
    if venue not in ccxt.pro.exchanges:
        return False
    has = getattr(ccxt.pro, venue)().has  # built, not opened: nothing is requested
    return bool(has.get("watchOrders")) and bool(has.get("watchMyTrades"))


class OrderStream:
    """Relays ``venue``'s order stream to ``tell`` from a thread of its own; ``start()``, then ``stop()``."""

    def __init__(self, venue: str, credentials: Credentials, url: str, sandbox: bool, timeout_s: float,
                 markets: Mapping[str, Any], retry: Retry, tell: Callable[[Any], None]) -> None:
        self.venue, self.credentials, self.url, self.sandbox = venue, credentials, url, sandbox
        self.timeout_s, self.markets, self.retry, self.tell = timeout_s, dict(markets), retry, tell
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="venue-order-stream", daemon=True)

    def start(self) -> None:
        """Start relaying (in the stream's thread)."""
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop relaying: the subscription is closed and the thread ends."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _tell(self, message: Any) -> None:
        """Hand ``message`` to the actor, unless the stream is stopped (its actor is going)."""
        if not self._stop.is_set():
            self.tell(message)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except Exception as exc:  # anything unforeseen ends the stream, said once; REST polling goes on
            self._tell(StreamDown(_one_line(exc), final=True))

    async def _main(self) -> None:
        exchange = open_trading(self.venue, self.credentials, self.url, self.sandbox, self.timeout_s, ccxt.pro)
        exchange.set_markets(self.markets)
        main = asyncio.current_task()
        assert main is not None
        watcher = asyncio.create_task(self._until(main))
        try:
            await self._relay_forever(exchange)
        except asyncio.CancelledError:
            pass
        finally:
            watcher.cancel()
            await exchange.close()

    async def _until(self, task: asyncio.Task[Any]) -> None:
        """Cancel ``task`` (and what it waits on) once the stream is stopped."""
        while not self._stop.is_set():
            await asyncio.sleep(_STOP_CHECK_S)
        task.cancel()

    async def _relay_forever(self, exchange: Any) -> None:
        failures = 0
        while True:
            try:
                authenticate = getattr(exchange, "authenticate", None)
                if authenticate is not None and _no_arguments(authenticate):
                    await asyncio.wait_for(authenticate(), self.timeout_s)
            except (ccxt.BaseError, OSError, asyncio.TimeoutError) as exc:
                self._tell(StreamDown(_one_line(exc)))
                await asyncio.sleep(self.retry.delay(failures))
                failures += 1
                continue
            failures = 0
            self._tell(StreamUp())
            try:
                await self._relay(exchange)
            except (ccxt.BaseError, OSError) as exc:
                self._tell(StreamDown(_one_line(exc)))
                await asyncio.sleep(self.retry.delay(0))

    async def _relay(self, exchange: Any) -> None:
        """Relay order updates and executions until one of the two watches fails (its error raised)."""
        tasks = {asyncio.create_task(self._pump(exchange.watch_orders, StreamOrders)),
                 asyncio.create_task(self._pump(exchange.watch_my_trades, StreamTrades))}
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        finally:
            for task in tasks:
                task.cancel()
        for task in done:
            task.result()

    async def _pump(self, watch: Callable[[], Any], wrap: Callable[[tuple[dict[str, Any], ...]], Any]) -> None:
        while True:
            items = await watch()
            if items:
                self._tell(wrap(tuple(dict(item) for item in items)))
