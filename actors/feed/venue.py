"""Market data from a venue, the logic: ccxt tickers into ticks, repeats dropped, the link's ups and downs.

``TickerTicks`` turns ccxt's unified tickers into wire ticks (bid, ask, last; the venue's timestamp, ms
to ns; the ccxt symbol) and drops what was sent already: a ticker whose timestamp is not newer than the
last one sent for its symbol (polling asks again and again between two changes). A ticker without a
timestamp is stamped with the time it was received and sent only when its prices changed.

``Link`` follows the connection to the venue: up, or failing since when and how often. It says when an
outage begins and when it ends (once each, not per failed try) and how long to wait before the next
try (exponential backoff with jitter, see ``Retry.delay``). Pure logic: no threads, sockets or clock.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from actors.store.exchange import Retry
from messages.market import Tick

__all__ = ["Link", "LinkView", "TickerTicks"]

_MS = 1_000_000


def _price(value: Any) -> float:
    """A ticker's price as a float; NaN when the venue gave none."""
    try:
        return float(value) if value is not None else math.nan
    except (TypeError, ValueError):
        return math.nan


class TickerTicks:
    """ccxt tickers into ticks for the symbols watched, each tick once; ``src`` and an increasing
    ``seq`` on every tick (the ingress counts a jump as a gap)."""

    def __init__(self, symbols: Iterable[str], src: str) -> None:
        self.symbols = frozenset(symbols)
        self.src = src
        self.seq = 0
        self.repeats = 0   # tickers not sent again: nothing newer than what was sent
        self.empty = 0     # tickers with no price at all
        self._last_ts: dict[str, int] = {}
        self._last_prices: dict[str, tuple[float, float, float]] = {}

    def ticks(self, tickers: Iterable[Mapping[str, Any]], received_ns: int) -> list[Tick]:
        """The ticks of ``tickers`` (ccxt ticker structures) not sent before, in the order given."""
        out = []
        for ticker in tickers:
            tick = self._tick(ticker, received_ns)
            if tick is not None:
                out.append(tick)
        return out

    def _tick(self, ticker: Mapping[str, Any], received_ns: int) -> Tick | None:
        symbol = ticker.get("symbol")
        if symbol not in self.symbols:
            return None
        bid, ask, last = _price(ticker.get("bid")), _price(ticker.get("ask")), _price(ticker.get("last"))
        if math.isnan(bid) or math.isnan(ask):
            bid = ask = math.nan
        if math.isnan(last):
            if math.isnan(bid):
                self.empty += 1
                return None
            last = (bid + ask) / 2.0
        stamped = ticker.get("timestamp")
        if stamped is not None:
            ts = int(stamped) * _MS
            if ts <= self._last_ts.get(symbol, 0):
                self.repeats += 1
                return None
        else:  # the venue gave no time: send a change of prices, stamped when it was received
            prices = (bid, ask, last)
            if self._last_prices.get(symbol) == prices:
                self.repeats += 1
                return None
            self._last_prices[symbol] = prices
            ts = max(received_ns, self._last_ts.get(symbol, 0) + 1)
        self._last_ts[symbol] = ts
        self.seq += 1
        return Tick(symbol, ts, bid, ask, last, 0.0, self.src, self.seq)


@dataclass(frozen=True, slots=True)
class LinkView:
    """The link as ``health`` shows it (times in ns on the clock the caller gives)."""

    state: str = "connecting"      # connecting | up | reconnecting
    via: str = ""                  # websocket | rest
    since_ns: int = 0              # when the state began
    failures: int = 0              # failed tries in the current outage
    outages: int = 0               # outages so far
    last_error: str = ""

    def as_json(self, now_ns: int) -> dict[str, Any]:
        """The view for the control socket."""
        return {"state": self.state, "via": self.via, "for_s": round(max(0, now_ns - self.since_ns) / 1e9, 1),
                "failures": self.failures, "outages": self.outages, "last_error": self.last_error}


@dataclass(slots=True)
class Link:
    """The connection to the venue; see the module's docstring. ``retry`` gives the backoff."""

    retry: Retry
    view: LinkView = field(default_factory=LinkView)

    def answered(self, via: str, now_ns: int) -> float | None:
        """The venue answered through ``via``; return how long the outage that this ends lasted
        (seconds), or None if there was none."""
        view = self.view
        ended = (now_ns - view.since_ns) / 1e9 if view.state == "reconnecting" else None
        if view.state != "up" or view.via != via:
            self.view = LinkView("up", via, now_ns, 0, view.outages, view.last_error)
        return ended

    def failed(self, error: str, now_ns: int) -> tuple[bool, float]:
        """A try failed with ``error``; return whether this begins an outage (the link was up, or still
        connecting) and the seconds to wait before the next try."""
        view = self.view
        began = view.state != "reconnecting"
        if began:
            self.view = LinkView("reconnecting", view.via, now_ns, 1, view.outages + 1, error)
        else:
            self.view = LinkView(view.state, view.via, view.since_ns, view.failures + 1, view.outages, error)
        return began, self.retry.delay(min(self.view.failures - 1, 30))
