"""The paper account's order book: the orders still open, and every client id already decided on.

An open order waits for its time (latency), for bars of its symbol to pass (latency in bars) and, when
written ahead, for the store to commit it (its mark); it knows which bar of a frame first fills it.
Client ids are deterministic, so the set of ids decided on is what makes a decision seen twice trade
only once; it is kept as an append-only log that checkpoints share, the set rebuilt from the log when
first asked after a copy.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from actors.executor.fills import first_bar_fill
from actors.executor.records import RecordLog
from messages.market import BarFrame
from messages.trading import Order

__all__ = ["DecidedIds", "PendingOrder", "copy_open"]


@dataclass(slots=True)
class PendingOrder:
    """An order accepted and not yet filled, rejected or cancelled."""

    order: Order
    active_ts: int          # earliest time the order may fill
    skip_bars: int          # bars of its symbol still to let pass (latency in bars)
    batch: int              # batch in which it was accepted (ticks fill it from the next batch)
    mark: int = 0           # write-ahead mark it waits for the store to commit (0: free to fill)

    def bar_fill(self, frame: BarFrame, opens_at: np.ndarray, start: int, slippage: float) -> tuple[int, float] | None:
        """Return the first bar of ``frame`` from ``start`` on that fills the order, and its price, or None.

        ``opens_at`` are the bars' open times. Bars before the order's time or still to let pass (latency
        in bars) are skipped and spent; when no bar fills it, the bars offered are never offered again.
        """
        first = start
        if start >= len(opens_at) or opens_at[start] < self.active_ts:
            first = max(start, int(np.searchsorted(opens_at, self.active_ts, side="left")))
        available = len(frame) - first
        if self.skip_bars >= available:
            self.skip_bars -= max(0, available)
            if len(opens_at):  # the skipped bars are spent: never offer them again
                self.active_ts = max(self.active_ts, int(opens_at[-1]) + 1)
            return None
        if self.skip_bars:
            self.active_ts = max(self.active_ts, int(opens_at[first + self.skip_bars - 1]) + 1)
        first += self.skip_bars
        self.skip_bars = 0
        hit = first_bar_fill(self.order, frame.open, frame.high, frame.low, first, slippage)
        if hit is None:
            self.active_ts = int(opens_at[-1]) + 1 if len(opens_at) else self.active_ts
        return hit


def copy_open(pending: dict[str, PendingOrder]) -> dict[str, PendingOrder]:
    """Return an independent copy of the open orders by client id."""
    return {k: dataclasses.replace(p) for k, p in pending.items()}


class DecidedIds:
    """Client ids decided on: a set for look-ups, an append-only log for cheap copies."""

    __slots__ = ("_set", "_log", "_new")

    def __init__(self) -> None:
        self._set: set[str] | None = set()
        self._log: RecordLog[str] = RecordLog()
        self._new: list[str] = []            # added to the log at the end of each batch

    @property
    def ids(self) -> set[str]:
        """Every client id decided on (built from the log after a copy)."""
        if self._set is None:
            self._set = set(self._log)
        return self._set

    def add(self, client_id: str) -> None:
        """Record ``client_id`` as decided in the running batch."""
        self.ids.add(client_id)
        self._new.append(client_id)

    def restore(self, client_id: str) -> None:
        """Record ``client_id`` read back from the store, once."""
        ids = self.ids
        if client_id not in ids:
            ids.add(client_id)
            self._log.append(client_id)

    def end_batch(self) -> None:
        """Move the ids of the batch into the log."""
        if self._new:
            self._log.extend(self._new)
            self._new.clear()

    def copy(self) -> DecidedIds:
        """Return an independent copy sharing the append-only log."""
        twin = DecidedIds.__new__(DecidedIds)
        twin._set, twin._log, twin._new = None, self._log.copy(), []
        return twin
