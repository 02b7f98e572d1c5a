"""Tick-to-bar aggregation and rolling windows.

Bars are time bars, closed on the left and labelled by their close time: a tick at ``ts``
belongs to the bar that closes at ``(ts // length + 1) * length``.

- **Order.** Within a bar, ticks may arrive in any order: open is the price of the earliest
  tick and close that of the latest (by timestamp; at equal timestamps the lower price opens
  and the higher price closes), high and low are the extremes, and volume is summed exactly
  (``math.fsum``), so a bar never depends on the order its ticks arrived in.
- **Duplicates.** A tick equal to one already in its bar (same symbol, ts, bid, ask, last and
  volume) is dropped and counted. Only the open bar's keys are remembered (bounded memory).
- **Late.** A tick for a bar that has already closed is dropped and counted as late.
- **Closing.** A bar closes when the first tick of a later bar of its symbol arrives, or when
  the market clock passes its close time by ``grace_ns`` (``close_due``). The market clock is
  the latest tick timestamp seen (any symbol) plus the wall time elapsed since it was seen, so
  it follows the data's own time (a replayed or compressed feed works) and keeps moving when
  the feed goes quiet.
- **Quiet intervals** become empty bars at the previous close with zero volume (when
  ``fill_empty``); of one gap at most the ``max_fill`` bars right before its end are emitted.
- **Absurd times** (a defence behind the feed's own time rule): a tick whose bar would close
  more than ``max_jump_ns`` (7 days) after the market clock, or after ``MAX_TS`` (2**62 ns, early
  2116, which keeps every close time of every timeframe inside int64), is refused and counted in
  ``refused``. So one tick moves the market clock by at most ``max_jump_ns`` and makes at most
  ``max_fill`` empty bars for its symbol and for each quiet one; nothing overflows. The first
  tick has no market clock to be judged by (only ``MAX_TS`` applies to it).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from operator import itemgetter
from typing import NamedTuple

import numpy as np

from messages.market import Bar, BarFrame, Tick, readonly, timeframe_ns

__all__ = ["MAX_JUMP_NS", "MAX_TS", "AggregatorState", "BarAggregator", "BarWindow"]

MAX_TS = 2**62
"""No bar closes later than this (ns; early 2116): far from int64's end, whatever the timeframe."""
MAX_JUMP_NS = 7 * 86_400_000_000_000
"""The furthest a tick may move the market clock at once."""

# open bar: [close_ts, open, high, low, close, open_tick_ts, close_tick_ts, keys, key log]; the key
# log holds the keys in the order they were taken and is only ever appended to, so a prefix of it
# (its length) stands for the keys at any earlier moment
_END, _O, _H, _L, _C, _OTS, _CTS, _KEYS, _LOG = range(9)
_VOLUME = itemgetter(2)  # a key's volume


class AggregatorState(NamedTuple):
    """A checkpoint of a BarAggregator, taken in time proportional to the number of symbols.

    ``open`` holds, per symbol, the open bar's fields and its key log with the log's length at
    the checkpoint; the log is shared with the live aggregator, which only appends to it.
    """

    open: dict[str, tuple]
    last: dict[str, tuple[int, float]]
    max_ts: int
    max_wall: int
    late: int
    duplicates: int
    skipped_empty: int
    refused: int = 0


class BarAggregator:
    """Builds bars of one timeframe for every symbol from ticks."""

    def __init__(self, timeframe: str, fill_empty: bool = True, max_fill: int = 1440, grace_ns: int = 0,
                 max_jump_ns: int = MAX_JUMP_NS) -> None:
        self.timeframe = timeframe
        self.length = timeframe_ns(timeframe)
        self.fill_empty = fill_empty
        self.max_fill = max_fill
        self.grace_ns = grace_ns
        self.max_jump_ns = max_jump_ns
        self._last_end = MAX_TS // self.length * self.length  # the latest close time a bar may have
        self.refused = 0
        self._open: dict[str, list] = {}
        self._last: dict[str, tuple[int, float]] = {}  # symbol -> (close time, close) of its last bar
        self._max_ts = 0
        self._max_wall = 0
        self.late = 0
        self.duplicates = 0
        self.skipped_empty = 0

    def copy(self) -> BarAggregator:
        """An independent copy (for checkpoints)."""
        return BarAggregator.restored(self.checkpoint(), self.timeframe, self.fill_empty, self.max_fill, self.grace_ns,
                                      self.max_jump_ns)

    def checkpoint(self) -> AggregatorState:
        """The state now, cheaply: later ticks never change what it holds."""
        return AggregatorState({s: (*state[:_KEYS], state[_LOG], len(state[_LOG])) for s, state in self._open.items()},
                               dict(self._last), self._max_ts, self._max_wall, self.late, self.duplicates,
                               self.skipped_empty, self.refused)

    @classmethod
    def restored(cls, state: AggregatorState, timeframe: str, fill_empty: bool = True, max_fill: int = 1440,
                 grace_ns: int = 0, max_jump_ns: int = MAX_JUMP_NS) -> BarAggregator:
        """A new aggregator holding a checkpoint's state (independent of the one it was taken from)."""
        twin = cls(timeframe, fill_empty, max_fill, grace_ns, max_jump_ns)
        for symbol, (*fields, log, length) in state.open.items():
            keys = log[:length]
            twin._open[symbol] = [*fields, set(keys), keys]
        twin._last = dict(state.last)
        twin._max_ts, twin._max_wall = state.max_ts, state.max_wall
        twin.late, twin.duplicates, twin.skipped_empty = state.late, state.duplicates, state.skipped_empty
        twin.refused = state.refused
        return twin

    def seed(self, symbol: str, close_ts: int, close: float) -> None:
        """Continue after a stored bar: ticks up to ``close_ts`` are late, and a gap after it
        is filled from ``close``."""
        last = self._last.get(symbol)
        if symbol not in self._open and (last is None or close_ts > last[0]):
            self._last[symbol] = (close_ts, close)

    def last_close(self, symbol: str) -> int | None:
        """The close time of the symbol's last closed (or seeded) bar."""
        last = self._last.get(symbol)
        return None if last is None else last[0]

    def add(self, ticks: Iterable[Tick], now_ns: int = 0, kept: list[Tick] | None = None) -> list[Bar]:
        """Add ticks seen at wall time ``now_ns``; return the bars they closed, in order per symbol.
        The ticks taken (neither duplicate nor late) are appended to ``kept`` when given."""
        closed: list[Bar] = []
        length = self.length
        jump = self.max_jump_ns
        limit = self._limit(now_ns)
        for tick in ticks:
            ts, price, symbol, bid = tick.ts, tick.last, tick.symbol, tick.bid
            # what makes two ticks the same; volume third (it is summed from the keys); a NaN quote
            # is left out (NaN != NaN)
            key = (ts, price, tick.volume, bid, tick.ask) if bid == bid else (ts, price, tick.volume)
            end = (ts // length + 1) * length
            if end > limit:
                self.refused += 1
                continue
            state = self._open.get(symbol)
            if state is not None and end == state[_END]:
                keys = state[_KEYS]
                if key in keys:
                    self.duplicates += 1
                    continue
                keys.add(key)
                state[_LOG].append(key)
                if price > state[_H]:
                    state[_H] = price
                elif price < state[_L]:
                    state[_L] = price
                if ts < state[_OTS] or (ts == state[_OTS] and price < state[_O]):
                    state[_OTS], state[_O] = ts, price
                if ts > state[_CTS] or (ts == state[_CTS] and price > state[_C]):
                    state[_CTS], state[_C] = ts, price
            elif state is not None and end < state[_END]:
                self.late += 1
                continue
            else:
                if state is not None:
                    closed.append(self._close(symbol, state))
                last = self._last.get(symbol)
                if last is not None:
                    if end <= last[0]:
                        self.late += 1
                        continue
                    if self.fill_empty:
                        self._fill(symbol, last[0], last[1], end, closed)
                self._open[symbol] = [end, price, price, price, price, ts, ts, {key}, [key]]
            if ts > self._max_ts:
                self._max_ts, self._max_wall = ts, now_ns
                limit = min(ts + jump, self._last_end)
            if kept is not None:
                kept.append(tick)
        return closed

    def _limit(self, now_ns: int) -> int:
        """The latest close time a tick's bar may have now: ``max_jump_ns`` past the market clock."""
        if not self._max_ts:
            return self._last_end
        clock = self._max_ts + max(0, now_ns - self._max_wall) if self._max_wall else self._max_ts
        return min(clock + self.max_jump_ns, self._last_end)

    def watermark(self, now_ns: int) -> int | None:
        """The market clock at wall time ``now_ns`` less the grace: bars closing by then are due."""
        if not self._max_wall:
            return None
        return self._max_ts + max(0, now_ns - self._max_wall) - self.grace_ns

    def close_due(self, now_ns: int, keep: Callable[[str], bool] | None = None) -> list[Bar]:
        """Close the bars the market clock has passed, and emit the empty bars due for quiet
        symbols (only those ``keep`` accepts, when given); return them in order per symbol."""
        mark = self.watermark(now_ns)
        if mark is None:
            return []
        out: list[Bar] = []
        for symbol in [s for s, state in self._open.items() if state[_END] <= mark]:
            out.append(self._close(symbol, self._open[symbol]))
        if self.fill_empty:
            due = min(mark // self.length * self.length, self._last_end - self.length)
            for symbol, (end, price) in list(self._last.items()):
                if end < due and symbol not in self._open and (keep is None or keep(symbol)):
                    self._fill(symbol, end, price, due + self.length, out)
                    self._last[symbol] = (due, price)
        return out

    def _close(self, symbol: str, state: list) -> Bar:
        del self._open[symbol]
        self._last[symbol] = (state[_END], state[_C])
        volume = math.fsum(map(_VOLUME, state[_LOG]))  # exact, in any order; map: twice a generator's speed
        return Bar(symbol, state[_END], self.timeframe, state[_O], state[_H], state[_L], state[_C], volume)

    def _fill(self, symbol: str, last_close_ts: int, price: float, next_close_ts: int, out: list[Bar]) -> None:
        """Empty bars strictly between two close times (the last ``max_fill`` of them)."""
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
        twin = BarWindow.__new__(BarWindow)
        twin.size, twin.ts, twin.values = self.size, self.ts, dict(self.values)
        twin.symbol, twin.timeframe = self.symbol, self.timeframe
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
