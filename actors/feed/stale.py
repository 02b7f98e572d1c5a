"""Stale symbols: a watched symbol with no data for a while."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["StaleWatch"]


class StaleWatch:
    """Tracks when each watched symbol last had data, in wall-clock ns.

    A symbol is stale once ``after_ns`` passes with no accepted tick or bar for it, counted
    from its last one, or from when it was first watched if it never had any. It is fresh
    again with its next tick. Each fresh-to-stale change is one episode. ``after_ns`` of 0
    switches the rule off.
    """

    def __init__(self, after_ns: int) -> None:
        self.after_ns = after_ns
        self._last: dict[str, int] = {}
        self.stale: set[str] = set()
        self.episodes = 0

    def watch(self, symbols: Iterable[str], now_ns: int) -> None:
        """Start watching ``symbols`` (the clock starts now for those never seen)."""
        for symbol in symbols:
            self._last.setdefault(symbol, now_ns)

    def unwatch(self, symbols: Iterable[str]) -> None:
        """Stop watching ``symbols``; they are no longer reported stale."""
        for symbol in symbols:
            self._last.pop(symbol, None)
            self.stale.discard(symbol)

    def seen(self, symbols: Iterable[str], now_ns: int) -> list[str]:
        """Record data for ``symbols``; return those that were stale and are fresh again."""
        recovered = []
        last = self._last
        for symbol in symbols:
            last[symbol] = now_ns
            if symbol in self.stale:
                self.stale.discard(symbol)
                recovered.append(symbol)
        return recovered

    def check(self, now_ns: int) -> list[str]:
        """Return the symbols that became stale since the last check (in name order)."""
        if self.after_ns <= 0:
            return []
        limit = now_ns - self.after_ns
        newly = sorted(s for s, t in self._last.items() if t <= limit and s not in self.stale)
        self.stale.update(newly)
        self.episodes += len(newly)
        return newly
