"""Per-actor health records and the system-wide counters reported by ``metrics``."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["ActorStats", "Counters", "LatencyWindow", "STATES"]

STATES = ("running", "restarting", "stopped", "failed")


class LatencyWindow:
    """The last ``size`` latencies (ns) in a ring, summarised as percentiles on demand.

    One thread adds, any thread may summarise: a summary copies the ring, so at worst it sees
    one sample being overwritten, never a torn structure.
    """

    __slots__ = ("_ring", "count")

    def __init__(self, size: int = 10_000) -> None:
        if size < 1:
            raise ValueError("a latency window holds at least one sample")
        self._ring = np.zeros(size, dtype=np.int64)
        self.count = 0  # samples ever added

    def add(self, ns: int) -> None:
        """Record one latency in nanoseconds."""
        self._ring[self.count % len(self._ring)] = ns
        self.count += 1

    def summary(self) -> dict[str, Any]:
        """``samples`` in the window and their ``p50_us``, ``p99_us`` and ``max_us``."""
        values = self._ring[:min(self.count, len(self._ring))].copy()
        if not len(values):
            return {"samples": 0}
        p50, p99 = np.percentile(values, (50, 99))
        return {"samples": len(values), "p50_us": float(p50) / 1e3, "p99_us": float(p99) / 1e3,
                "max_us": float(values.max()) / 1e3}

    def histogram(self, bounds_ns: np.ndarray) -> tuple[int, list[int], int]:
        """The samples in the window; how many are at or under each of the ascending ``bounds_ns``
        (cumulative, as Prometheus buckets are); and their sum in nanoseconds."""
        values = self._ring[:min(self.count, len(self._ring))].copy()
        under = np.searchsorted(np.sort(values), bounds_ns, side="right")
        return len(values), [int(n) for n in under], int(values.sum())


class ActorStats:
    """Health of one named actor, kept by its supervisor across restarts.

    Counters are written only from the actor's own thread; readers see plain ints.
    """

    __slots__ = ("_state", "busy_with", "errors", "last_activity_ns", "late_since_ns", "latency", "name", "on_change",
                 "processed", "restarts", "slow_after_ns", "waiting", "waiting_since_ns")

    def __init__(self, name: str, on_change: Callable[[ActorStats, str], None] | None = None) -> None:
        self.name = name
        self._state = "stopped"
        self.on_change = on_change
        self.restarts = 0
        self.processed = 0
        self.errors = 0
        self.last_activity_ns = 0
        self.latency = LatencyWindow()  # ingress receive to this actor done with the batch
        self.waiting = ""         # what the actor is blocked on outside itself ("" when it is not)
        self.waiting_since_ns = 0  # wall clock when it began waiting
        self.busy_with = ""       # the type of the message being handled ("" between messages)
        self.late_since_ns = 0    # while a heartbeat is overdue: wall clock when it was asked (by the supervisor)
        self.slow_after_ns = 0    # inside one message this long while late is slow (the heartbeat timeout)

    @property
    def state(self) -> str:
        """running, restarting, stopped or failed."""
        return self._state

    @state.setter
    def state(self, value: str) -> None:
        old, self._state = self._state, value
        if old != value and self.on_change is not None:
            self.on_change(self, old)

    def condition(self, now_ns: int | None = None) -> dict[str, Any]:
        """How the actor is doing besides its state.

        ``condition`` is ``blocked`` while it waits on something outside itself (``on``: what, ``for_s``:
        how long), ``slow`` while its heartbeat is overdue and it has been inside one message for at least
        ``slow_after_ns`` (``in``: the message type, ``for_s``: how long it has been in it), ``busy`` while
        its heartbeat is overdue but messages are finishing (it waits behind a long mailbox), else ``ok``.
        """
        now_ns = time.time_ns() if now_ns is None else now_ns
        waiting, since = self.waiting, self.waiting_since_ns
        if waiting:
            return {"condition": "blocked", "on": waiting, "for_s": round(max(0, now_ns - since) / 1e9, 3)}
        if not self.late_since_ns:
            return {"condition": "ok"}
        busy_with, began = self.busy_with, self.last_activity_ns
        if busy_with and now_ns - began >= self.slow_after_ns:
            return {"condition": "slow", "in": busy_with, "for_s": round(max(0, now_ns - began) / 1e9, 3)}
        return {"condition": "busy"}

    def snapshot(self, mailbox: int) -> dict[str, Any]:
        """Return the record as the ``health`` reply shows it."""
        return {
            "state": self.state, "restarts": self.restarts, "mailbox": mailbox,
            "processed": self.processed, "errors": self.errors, "last_activity_ns": self.last_activity_ns,
            **self.condition(),
        }


class Counters:
    """System-wide counters, updated atomically per batch so a snapshot is always consistent
    (``ticks_received == ticks_accepted + ticks_rejected`` at every moment).

    Accounting: every accepted tick ends ``ticks_processed``, ``ticks_dead_lettered`` or
    ``ticks_dropped_at_stop``; every bar the pipeline carried (``bars``: replayed, built or derived)
    ends ``bars_processed``, ``bars_dead_lettered`` or ``bars_dropped_at_stop``. ``bars_read`` counts
    the bars a backtest replayed, ``hangs`` the actors found stuck, ``late_output_dropped`` the
    messages a retired (stuck or abandoned) incarnation tried to send afterwards.
    """

    NAMES = (
        "ticks_received", "ticks_accepted", "ticks_rejected", "ticks_processed", "ticks_late",
        "ticks_dead_lettered", "ticks_dropped_at_stop", "bars_received", "bars_accepted", "bars_rejected",
        "seq_gaps", "bars", "bars_read", "bars_processed", "bars_dead_lettered", "bars_dropped_at_stop", "signals",
        "orders", "fills", "dead_letters", "hangs", "late_output_dropped", "ticks_duplicate", "bars_late",
        "stale_episodes", "seq_sources_evicted", "ticks_refused", "publishers_refused",
        "orders_stored", "fills_stored", "strategy_faults",
    )

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._waiters = 0
        self._values = dict.fromkeys(self.NAMES, 0)
        self._reasons: Counter[str] = Counter()

    def add(self, reasons: dict[str, int] | None = None, **deltas: int) -> None:
        """Add to several counters (and rejection reasons) in one atomic step."""
        with self._lock:
            for name, delta in deltas.items():
                self._values[name] += delta
            if reasons:
                self._reasons.update(reasons)
            if self._waiters:
                self._changed.notify_all()

    def wait_for(self, predicate: Callable[[dict[str, int]], bool], timeout: float) -> bool:
        """Wait until ``predicate(counters)`` holds or ``timeout`` seconds pass; return whether it holds.
        Woken by every ``add``, so a waiter reacts at once."""
        with self._lock:
            self._waiters += 1
            try:
                return self._changed.wait_for(lambda: predicate(self._values), timeout)
            finally:
                self._waiters -= 1

    def get(self, name: str) -> int:
        """Return one counter."""
        with self._lock:
            return self._values[name]

    def values(self, *names: str) -> tuple[int, ...]:
        """Return several counters, read together (consistent with each other)."""
        with self._lock:
            return tuple(self._values[name] for name in names)

    def snapshot(self) -> dict[str, Any]:
        """Return every counter and ``rejected_by_reason``, consistently."""
        with self._lock:
            result: dict[str, Any] = dict(self._values)
            result["rejected_by_reason"] = dict(self._reasons)
        return result
