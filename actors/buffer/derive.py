"""Higher-timeframe bars built from closed lower-timeframe bars, so the two always agree.

A 5m bar is its five 1m bars: open of the first, close of the last, the highest high, the
lowest low, and the volumes summed exactly (``math.fsum``). It is emitted as soon as the base
bar that closes at its own close time arrives (or, after a gap, when a later base bar does).
Periods with no base bar at all become empty bars at the previous close (when ``fill_empty``;
at most ``max_fill`` per gap), like the base timeframe's.

The first period of a symbol is emitted only if its first base bar was seen: a bar that
started before the data did would disagree with the exchange's (its open and volume would be
wrong), so it is dropped. Warming up from stored base bars (``add`` with ``emit=False``)
avoids losing it across restarts. Each (symbol, target) takes its base bars from one source
timeframe (the first it sees); bars of other timeframes do not feed it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from messages.market import Bar, timeframe_ns

__all__ = ["TimeframeDeriver"]

# state: [source timeframe, open bar or None, (last close ts, last close) or None, last base close ts]
# open bar: [close_ts, open, high, low, close, volumes, partial]


class TimeframeDeriver:
    """Derives every configured target timeframe that is a whole multiple of a bar's timeframe."""

    def __init__(self, targets: Iterable[str], fill_empty: bool = True, max_fill: int = 1440) -> None:
        self.targets = tuple(sorted(set(targets), key=timeframe_ns))
        self._lengths = {tf: timeframe_ns(tf) for tf in self.targets}
        self.fill_empty = fill_empty
        self.max_fill = max_fill
        self._state: dict[tuple[str, str], list] = {}
        self.skipped_empty = 0
        self.ignored = 0  # base bars out of order for a target

    def copy(self) -> TimeframeDeriver:
        """An independent copy (for checkpoints)."""
        twin = TimeframeDeriver(self.targets, self.fill_empty, self.max_fill)
        twin._state = {k: [s[0], None if s[1] is None else [*s[1][:5], list(s[1][5]), s[1][6]], s[2], s[3]]
                       for k, s in self._state.items()}
        twin.skipped_empty, twin.ignored = self.skipped_empty, self.ignored
        return twin

    def targets_for(self, timeframe: str) -> tuple[str, ...]:
        """The targets derived from bars of ``timeframe``."""
        base = timeframe_ns(timeframe)
        return tuple(tf for tf in self.targets if self._lengths[tf] > base and self._lengths[tf] % base == 0)

    def add(self, bars: Iterable[Bar], emit: bool = True) -> list[Bar]:
        """Take closed base bars (in time order per symbol and timeframe); return the derived bars
        they complete, target by target. With ``emit=False`` only the state is updated (warm-up)."""
        out: list[Bar] = []
        cache: dict[str, tuple[str, ...]] = {}
        for bar in bars:
            targets = cache.get(bar.timeframe)
            if targets is None:
                targets = cache[bar.timeframe] = self.targets_for(bar.timeframe)
            for target in targets:
                self._one(bar, target, out)
        if not emit:
            return []
        out.sort(key=lambda b: timeframe_ns(b.timeframe))  # stable: time order within each target
        return out

    def _one(self, bar: Bar, target: str, out: list[Bar]) -> None:
        length = self._lengths[target]
        key = (bar.symbol, target)
        state = self._state.get(key)
        if state is None:
            state = self._state[key] = [bar.timeframe, None, None, 0]
        elif state[0] != bar.timeframe:
            return
        if bar.ts <= state[3]:
            self.ignored += 1
            return
        state[3] = bar.ts
        end = -(-bar.ts // length) * length
        current = state[1]
        if current is not None and end == current[0]:
            current[2] = max(current[2], bar.high)
            current[3] = min(current[3], bar.low)
            current[4] = bar.close
            current[5].append(bar.volume)
        else:
            if current is not None:
                self._emit(bar.symbol, target, state, out)
            last = state[2]
            if last is not None and self.fill_empty:
                self._fill(bar.symbol, target, length, last, end, out)
            partial = last is None and bar.ts - timeframe_ns(bar.timeframe) != end - length
            state[1] = [end, bar.open, bar.high, bar.low, bar.close, [bar.volume], partial]
        if bar.ts == end:
            self._emit(bar.symbol, target, state, out)

    def _emit(self, symbol: str, target: str, state: list, out: list[Bar]) -> None:
        end, open_, high, low, close, volumes, partial = state[1]
        state[1], state[2] = None, (end, close)
        if not partial:
            out.append(Bar(symbol, end, target, open_, high, low, close, math.fsum(volumes)))

    def _fill(self, symbol: str, target: str, length: int, last: tuple[int, float], end: int, out: list[Bar]) -> None:
        last_end, price = last
        missing = (end - last_end) // length - 1
        if missing <= 0:
            return
        emitted = min(missing, self.max_fill)
        self.skipped_empty += missing - emitted
        for k in range(emitted):
            out.append(Bar(symbol, end - (emitted - k) * length, target, price, price, price, price, 0.0))
