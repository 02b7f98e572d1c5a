"""Market data: ticks, bars, and the columnar bar frame that travels down the pipeline."""

from __future__ import annotations

import dataclasses
import functools
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

__all__ = ["EVERY_SYMBOL", "SYMBOL_PATTERN", "Bar", "BarFrame", "Tick", "check_symbols", "frame_from_bars",
           "mid_price", "readonly", "timeframe_ns"]

SYMBOL_PATTERN = re.compile(r"[A-Za-z0-9._:/\-]{1,32}")
"""A symbol: 1-32 of letters, digits and ``._:/-`` (match with ``fullmatch``)."""

EVERY_SYMBOL = "*"
"""In a watch list: every symbol."""


def check_symbols(symbols: Iterable[Any]) -> tuple[str, ...]:
    """Return ``symbols`` if each is a symbol or ``*``; ValueError names the first that is not."""
    checked = tuple(symbols)
    for symbol in checked:
        if symbol != EVERY_SYMBOL and (not isinstance(symbol, str) or SYMBOL_PATTERN.fullmatch(symbol) is None):
            shown = symbol[:40] if isinstance(symbol, str) else type(symbol).__name__
            raise ValueError(f"bad symbol {shown!r}: a symbol is 1-32 of letters, digits and ._:/- "
                             "(or * for every symbol)")
    return checked


_UNITS_NS = {"s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000, "d": 86_400_000_000_000}


@functools.lru_cache(maxsize=64)
def timeframe_ns(timeframe: str) -> int:
    """Return the length of a timeframe like ``"1m"`` or ``"4h"`` in nanoseconds.

    Raises ValueError for anything that is not a positive integer followed by s, m, h or d.
    """
    if not isinstance(timeframe, str) or len(timeframe) < 2 or timeframe[-1] not in _UNITS_NS:
        raise ValueError(f"bad timeframe {timeframe!r}: expected a number and one of s, m, h, d, e.g. '1m'")
    count = timeframe[:-1]
    if not count.isdigit() or int(count) <= 0:
        raise ValueError(f"bad timeframe {timeframe!r}: expected a positive number before the unit")
    return int(count) * _UNITS_NS[timeframe[-1]]


def mid_price(bid: float, ask: float) -> float:
    """Return the mid of two finite prices, finite even where their sum would overflow.

    Equal to ``(bid + ask) / 2`` whenever that is finite (halving is exact in binary floating point).
    """
    mid = (bid + ask) / 2.0
    if mid == math.inf:
        return bid * 0.5 + ask * 0.5
    return mid


class Tick(NamedTuple):
    """One quote or trade. ``bid``/``ask`` are NaN when the publisher sent only ``last``;
    ``last`` is the mid-price when the publisher sent only ``bid``/``ask``.

    Immutable like every message; a NamedTuple rather than a frozen dataclass because one is
    built per tick on the hot path, where it is three times cheaper to construct.
    """

    symbol: str
    ts: int
    bid: float
    ask: float
    last: float
    volume: float = 0.0
    src: str = ""
    seq: int = -1

    @property
    def has_quote(self) -> bool:
        """Whether the tick carries a bid and an ask."""
        return not math.isnan(self.bid)


@dataclass(frozen=True, slots=True)
class Bar:
    """One OHLCV bar; ``ts`` is the close time in ns since the epoch (UTC)."""

    symbol: str
    ts: int
    timeframe: str
    open: float
    high: float
    low: float
    close: float
    volume: float
    src: str = ""
    seq: int = -1


def readonly(array: np.ndarray) -> np.ndarray:
    """Mark an array read-only so it can be shared between actor threads."""
    array.flags.writeable = False
    return array


@dataclass(frozen=True, slots=True, eq=False)
class BarFrame:
    """Consecutive closed bars of one symbol and timeframe, as read-only columns.

    A frame is enriched as it travels: the feature actor adds ``features``, the model
    ``prediction`` and the strategy its ``decider`` (see :mod:`messages.trading`): what the strategy
    would do at each bar's close for a given position, which the executor asks at decision time,
    with the position it holds then.
    ``derived`` marks a higher timeframe the buffer built from lower-timeframe bars.
    """

    symbol: str
    timeframe: str
    ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    features: tuple[tuple[str, np.ndarray], ...] = ()
    prediction: np.ndarray | None = None
    decider: Any = None
    derived: bool = False

    def __len__(self) -> int:
        return len(self.ts)

    def feature(self, name: str) -> np.ndarray:
        """Return the column of feature ``name``; KeyError if the feature actor did not compute it."""
        for key, column in self.features:
            if key == name:
                return column
        raise KeyError(name)

    def bar(self, i: int) -> Bar:
        """Return bar ``i`` as a Bar."""
        return Bar(
            self.symbol, int(self.ts[i]), self.timeframe, float(self.open[i]), float(self.high[i]),
            float(self.low[i]), float(self.close[i]), float(self.volume[i]),
        )

    @classmethod
    def from_columns(cls, symbol: str, timeframe: str, **columns: Any) -> BarFrame:
        """Build a frame from array-likes ``ts, open, high, low, close, volume`` (copied, read-only)."""
        ts = readonly(np.array(columns["ts"], dtype=np.int64))
        values = {k: readonly(np.array(columns[k], dtype=np.float64)) for k in ("open", "high", "low", "close", "volume")}
        return cls(symbol, timeframe, ts, **values)

    def slice(self, start: int, stop: int) -> BarFrame:
        """Return bars ``start:stop`` (views, still read-only); enrichment is sliced too."""
        return BarFrame(
            self.symbol, self.timeframe, self.ts[start:stop], self.open[start:stop], self.high[start:stop],
            self.low[start:stop], self.close[start:stop], self.volume[start:stop],
            tuple((k, v[start:stop]) for k, v in self.features),
            None if self.prediction is None else self.prediction[start:stop],
            None if self.decider is None else self.decider.slice(start, stop), self.derived,
        )


def frame_from_bars(bars: list[Bar] | tuple[Bar, ...], derived: bool = False) -> BarFrame:
    """Build one frame from bars that share a symbol and timeframe, in order."""
    first = bars[0]
    frame = BarFrame.from_columns(
        first.symbol, first.timeframe,
        ts=[b.ts for b in bars], open=[b.open for b in bars], high=[b.high for b in bars],
        low=[b.low for b in bars], close=[b.close for b in bars], volume=[b.volume for b in bars],
    )
    return dataclasses.replace(frame, derived=True) if derived else frame


