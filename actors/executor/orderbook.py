"""The paper account's order book: the orders still open, and every client id already decided on.

An open order waits for its time (latency), for bars of its symbol to pass (latency in bars) and, when
written ahead, for the store to commit it (its mark); it knows which bar of a frame first fills it.
Client ids are deterministic, so the set of ids decided on is what makes a decision seen twice trade
only once; it is kept as an append-only log that checkpoints share, the set rebuilt from the log when
first asked after a copy.

Protective orders (a bracket) belong to the position an entry opened: a stop-loss (a stop order on
the other side), a take-profit (a limit order on the other side) and a trailing stop, with client ids
``<entry id>:sl``, ``:tp`` and ``:trail``. The first of them filled cancels the others. A trailing
stop keeps the best price since entry (highest high for a long, lowest low for a short) and sits its
``trail`` fraction away from it; the fraction travels in the order's reason, so a stored order is
enough to rebuild it.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass

import numpy as np

from actors.executor.fills import first_bar_fill, first_stop_fill, trailed, trailing_stops
from actors.executor.records import RecordLog
from messages.market import BarFrame
from messages.trading import BUY, SELL, Order

__all__ = ["PROTECTIVE", "DecidedIds", "PendingOrder", "bracket_fill", "copy_open", "protected_entry",
           "protective_orders", "trail_of"]

PROTECTIVE = {"sl": "stop-loss", "tp": "take-profit", "trail": "trailing stop"}  # id suffix -> name
_TRAIL = re.compile(r"^trailing stop (\S+)")


@dataclass(slots=True)
class PendingOrder:
    """An order accepted and not yet filled, rejected or cancelled."""

    order: Order
    active_ts: int          # earliest time the order may fill
    skip_bars: int          # bars of its symbol still to let pass (latency in bars)
    batch: int              # batch in which it was accepted (ticks fill it from the next batch)
    mark: int = 0           # write-ahead mark it waits for the store to commit (0: free to fill)
    group: str = ""         # a protective order: the client id of the entry whose position it protects
    trail: float = math.nan  # a trailing stop: its distance, a fraction of the best price
    best: float = math.nan   # ... and the best price since entry, as of the bars already closed

    @property
    def stop(self) -> float:
        """The stop price in force now (a trailing stop's follows the best price)."""
        if self.trail != self.trail:
            return self.order.stop_price
        return self.best * (1.0 + self.trail) if self.order.side == BUY else self.best * (1.0 - self.trail)

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
        if self.trail == self.trail:
            side = self.order.side
            stops = trailing_stops(side, self.best, self.trail, frame.high, frame.low, first)
            hit = first_stop_fill(side, stops, frame.open, frame.high, frame.low, first, slippage)
            end = len(frame) if hit is None else hit[0]  # the bars closed before it moved the stop
            self.best = trailed(side, self.best, frame.high[first:end], frame.low[first:end])
        else:
            hit = first_bar_fill(self.order, frame.open, frame.high, frame.low, first, slippage)
        if hit is None:
            self.active_ts = int(opens_at[-1]) + 1 if len(opens_at) else self.active_ts
        return hit


def bracket_fill(members: list[tuple[str, PendingOrder]], frame: BarFrame, opens_at: np.ndarray, start: int,
                 slippage: float) -> tuple[str, int, float] | None:
    """Return the protective order of one bracket that fills first on ``frame`` from ``start`` on: its
    client id, bar and price; None if none does.

    Within one bar: a take-profit the bar opened at or through fills first (at the open, which came
    first); then the stops, in the order the price reaches them from the open (for a long the
    highest first); a take-profit reached only within the bar comes last: when a bar's range reaches
    both a stop and the take-profit, the stop is assumed hit first (bars do not say which came first,
    and this is the conservative choice).
    """
    first: tuple[int, tuple[int, float], str, float] | None = None
    for key, member in members:
        hit = member.bar_fill(frame, opens_at, start, slippage)
        if hit is None:
            continue
        j, price = hit
        order = member.order
        if order.kind == "limit":
            rank = (0, 0.0) if price == float(frame.open[j]) else (2, 0.0)
        else:
            rank = (1, -price if order.side == SELL else price)
        if first is None or (j, rank) < first[:2]:
            first = (j, rank, key, price)
    return None if first is None else (first[2], first[0], first[3])


def protected_entry(client_id: str) -> str | None:
    """The entry whose position the protective order ``client_id`` protects; None for any other order."""
    head, _, tail = client_id.rpartition(":")
    return head if head and tail in PROTECTIVE else None


def protective_orders(entry: Order, stop_loss: float, take_profit: float, trail: float) -> tuple[Order, ...]:
    """The protective orders (as submitted) an entry attaches to the position it opens: on the other
    side, for the entry's quantity until it fills; a trailing stop's price is set when it does."""
    side = SELL if entry.side == BUY else BUY
    made = []
    for suffix, kind, limit, stop, given in (("sl", "stop", math.nan, stop_loss, stop_loss),
                                             ("tp", "limit", take_profit, math.nan, take_profit),
                                             ("trail", "stop", math.nan, math.nan, trail)):
        if given == given:
            reason = f"trailing stop {trail!r}" if suffix == "trail" else PROTECTIVE[suffix]
            made.append(Order(f"{entry.client_id}:{suffix}", entry.strategy, entry.symbol, side, entry.qty, entry.ts,
                              kind, "submitted", reason, limit, stop))
    return tuple(made)


def trail_of(order: Order) -> float:
    """The trailing distance of a trailing stop (from its reason); NaN for any other order."""
    found = _TRAIL.match(order.reason) if order.client_id.endswith(":trail") else None
    return float(found.group(1)) if found else math.nan


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
