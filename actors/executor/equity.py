"""Equity of the paper account: marked to market at each bar close, and the curve kept for the report.

``mark_to_market`` values the account at every bar close of a batch from the cash and quantities as
they stood at that close (the fills of the batch are steps in time); ``EquityCurve`` keeps the points,
bounded in live to the latest ``keep`` of them.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from messages.market import BarFrame

__all__ = ["EquityCurve", "mark_to_market"]


def mark_to_market(frames: list[BarFrame], steps: list[tuple[int, str, float, float]], cash_before: float,
                   qty_before: dict[str, float], marks: dict[str, float]) -> tuple[np.ndarray, np.ndarray, int]:
    """Return the close times of ``frames`` (non-empty), the equity at each and how many had a position open.

    ``steps`` are (time, symbol, cash after, qty after) of each fill in time order; before the first,
    cash and quantities are ``cash_before`` and ``qty_before``; a symbol without a bar yet is priced at
    its mark in ``marks``.
    """
    timeline = np.asarray(frames[0].ts) if len(frames) == 1 else np.unique(np.concatenate([f.ts for f in frames]))
    equity = np.full(len(timeline), cash_before)
    if steps:
        step_ts = np.array([s[0] for s in steps], dtype=np.int64)
        step_cash = np.array([s[2] for s in steps])
        idx = np.searchsorted(step_ts, timeline, side="right") - 1
        equity = np.where(idx >= 0, step_cash[np.maximum(idx, 0)], cash_before)
    held = set(qty_before) | {s[1] for s in steps}
    exposed = np.zeros(len(timeline), dtype=bool)
    for symbol in sorted(held):
        qty0 = qty_before.get(symbol, 0.0)
        sym_steps = [s for s in steps if s[1] == symbol]
        if sym_steps:
            s_ts = np.array([s[0] for s in sym_steps], dtype=np.int64)
            s_qty = np.array([s[3] for s in sym_steps])
            idx = np.searchsorted(s_ts, timeline, side="right") - 1
            qty = np.where(idx >= 0, s_qty[np.maximum(idx, 0)], qty0)
        else:
            qty = np.full(len(timeline), qty0)
        prices = np.full(len(timeline), marks.get(symbol, math.nan))
        for frame in frames:
            if frame.symbol == symbol:
                j = np.searchsorted(frame.ts, timeline, side="right") - 1
                prices = np.where(j >= 0, np.asarray(frame.close)[np.maximum(j, 0)], prices)
        equity = equity + np.where(qty != 0.0, qty * prices, 0.0)
        exposed |= qty != 0.0
    return timeline, equity, int(exposed.sum())


class EquityCurve:
    """Equity points in time order, the oldest dropped beyond ``keep`` (None: keep all)."""

    __slots__ = ("keep", "_ts", "_val", "_len")

    def __init__(self, keep: int | None = None) -> None:
        self.keep = keep
        self._ts: deque[np.ndarray] = deque()
        self._val: deque[np.ndarray] = deque()
        self._len = 0

    def record(self, ts: np.ndarray, values: np.ndarray) -> None:
        """Append the points of one batch; drop whole old batches beyond the bound."""
        self._ts.append(ts)
        self._val.append(values)
        self._len += len(ts)
        while self.keep is not None and self._len - len(self._ts[0]) >= self.keep:
            self._len -= len(self._ts.popleft())
            self._val.popleft()

    def curve(self) -> tuple[np.ndarray, np.ndarray]:
        """Return the times and equity values kept."""
        if not self._ts:
            return np.empty(0, dtype=np.int64), np.empty(0)
        return np.concatenate(self._ts), np.concatenate(self._val)

    def copy(self) -> EquityCurve:
        """Return an independent copy (the arrays are never changed, so they are shared)."""
        twin = EquityCurve(self.keep)
        twin._ts, twin._val, twin._len = deque(self._ts), deque(self._val), self._len
        return twin
