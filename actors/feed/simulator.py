"""The built-in market simulator: deterministic random-walk quotes for a set of symbols."""

from __future__ import annotations

import math
import random

from messages.market import Tick

__all__ = ["MarketSimulator"]

_START_PRICES = {"BTCUSD": 42_000.0, "ETHUSD": 2_300.0, "SOLUSD": 100.0}


class MarketSimulator:
    """Quotes that wander like a market: geometric random walk with slowly changing trends.

    ``next_tick(ts)`` returns the next tick, cycling through the symbols. Deterministic for a
    given seed and start ``prices`` (default: a fixed price per symbol). Each symbol trends up or down for a random number of ticks, so a moving-average
    strategy sees crosses within a short demo.
    """

    def __init__(self, symbols: tuple[str, ...] | list[str], seed: int = 7, src: str = "sim",
                 prices: dict[str, float] | None = None) -> None:
        self.symbols = tuple(symbols)
        self._rng = random.Random(seed)
        self._price = {s: _START_PRICES.get(s, 100.0 + 10.0 * i) for i, s in enumerate(self.symbols)}
        self._price.update({s: p for s, p in (prices or {}).items() if s in self._price})
        self._drift = dict.fromkeys(self.symbols, 0.0)
        self._left = dict.fromkeys(self.symbols, 0)
        self._next = 0
        self.src = src
        self.seq = 0

    def next_tick(self, ts: int) -> Tick:
        """Advance one symbol by one step and return its quote at ``ts``."""
        symbol = self.symbols[self._next]
        self._next = (self._next + 1) % len(self.symbols)
        rng = self._rng
        if self._left[symbol] <= 0:
            self._drift[symbol] = rng.gauss(0.0, 4e-5)
            self._left[symbol] = rng.randint(200, 3000)
        self._left[symbol] -= 1
        price = self._price[symbol] * math.exp(self._drift[symbol] + rng.gauss(0.0, 3e-4))
        self._price[symbol] = price
        half_spread = price * 1e-4
        self.seq += 1
        return Tick(
            symbol, ts, round(price - half_spread, 6), round(price + half_spread, 6), round(price, 6),
            round(rng.expovariate(1.0), 6), self.src, self.seq,
        )
