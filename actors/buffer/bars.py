"""Tick-to-bar aggregation and rolling windows.

Bars are time bars, closed on the left and labelled by their close time: a tick at ``ts``
belongs to the bar that closes at ``(ts // length + 1) * length``. A bar is emitted when the
first tick of a later bar arrives. Quiet intervals between two bars become empty bars at the
previous close with zero volume (when ``fill_empty``), at most ``max_fill`` of them per gap.
A tick older than the bar being built is late: counted and dropped.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from messages.market import Bar, BarFrame, Tick, readonly, timeframe_ns

__all__ = ["BarAggregator", "BarWindow"]


class BarAggregator:
    """Builds bars of one timeframe for every symbol from ticks in arrival order."""

    def __init__(self, timeframe: str, fill_empty: bool = True, max_fill: int = 1440) -> None:
        self.timeframe = timeframe
        self.length = timeframe_ns(timeframe)
        self.fill_empty = fill_empty
        self.max_fill = max_fill
        # symbol -> [close_ts, open, high, low, close, volume]
        self._open: dict[str, list] = {}
        self.late = 0
        self.skipped_empty = 0

    def copy(self) -> BarAggregator:
        """An independent copy (for checkpoints)."""
        twin = BarAggregator(self.timeframe, self.fill_empty, self.max_fill)
        twin._open = {symbol: list(state) for symbol, state in self._open.items()}
        twin.late, twin.skipped_empty = self.late, self.skipped_empty
        return twin

    def add(self, ticks: Iterable[Tick]) -> list[Bar]:
        """Add ticks; return the bars they closed, in order."""
        closed: list[Bar] = []
        length = self.length
        for tick in ticks:
            price = tick.last
            close_ts = (tick.ts // length + 1) * length
            state = self._open.get(tick.symbol)
            if state is None:
                self._open[tick.symbol] = [close_ts, price, price, price, price, tick.volume]
            elif close_ts == state[0]:
                if price > state[2]:
                    state[2] = price
                elif price < state[3]:
                    state[3] = price
                state[4] = price
                state[5] += tick.volume
            elif close_ts > state[0]:
                closed.append(self._bar(tick.symbol, state))
                if self.fill_empty:
                    self._fill(tick.symbol, state[0], state[4], close_ts, closed)
                self._open[tick.symbol] = [close_ts, price, price, price, price, tick.volume]
            else:
                self.late += 1
        return closed

    def _bar(self, symbol: str, s: list) -> Bar:
        return Bar(symbol, s[0], self.timeframe, s[1], s[2], s[3], s[4], s[5])

    def _fill(self, symbol: str, last_close_ts: int, price: float, next_close_ts: int, out: list[Bar]) -> None:
        missing = (next_close_ts - last_close_ts) // self.length - 1
        if missing <= 0:
            return
        emitted = min(missing, self.max_fill)
        self.skipped_empty += missing - emitted
        first = next_close_ts - emitted * self.length
        for k in range(emitted):
            out.append(Bar(symbol, first + k * self.length, self.timeframe, price, price, price, price, 0.0))


class BarWindow:
    """The last ``size`` bars of one symbol and timeframe, as columns."""

    _COLUMNS = ("open", "high", "low", "close", "volume")

    def __init__(self, size: int) -> None:
        self.size = size
        self.ts = np.empty(0, dtype=np.int64)
        self.values = {name: np.empty(0, dtype=np.float64) for name in self._COLUMNS}
        self.symbol = ""
        self.timeframe = ""

    def __len__(self) -> int:
        return len(self.ts)

    def copy(self) -> BarWindow:
        """An independent copy (arrays are never changed in place, so they are shared)."""
        twin = BarWindow(self.size)
        twin.ts, twin.values, twin.symbol, twin.timeframe = self.ts, dict(self.values), self.symbol, self.timeframe
        return twin

    def extend(self, frame: BarFrame) -> None:
        """Append a frame's bars, keeping the last ``size``."""
        self.symbol, self.timeframe = frame.symbol, frame.timeframe
        self.ts = np.concatenate((self.ts, frame.ts))[-self.size:]
        for name in self._COLUMNS:
            self.values[name] = np.concatenate((self.values[name], getattr(frame, name)))[-self.size:]

    def frame(self) -> BarFrame:
        """Return the window as a frame (copies, read-only)."""
        return BarFrame(
            self.symbol, self.timeframe, readonly(self.ts.copy()),
            *(readonly(self.values[name].copy()) for name in self._COLUMNS),
        )
