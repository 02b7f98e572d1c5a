"""Per-actor health records and the system-wide counters reported by ``metrics``."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

__all__ = ["ActorStats", "Counters", "STATES"]

STATES = ("running", "restarting", "stopped", "failed")


class ActorStats:
    """Health of one named actor, kept by its supervisor across restarts.

    Counters are written only from the actor's own thread; readers see plain ints.
    """

    __slots__ = ("_state", "errors", "last_activity_ns", "name", "on_change", "processed", "restarts")

    def __init__(self, name: str, on_change: Callable[[ActorStats, str], None] | None = None) -> None:
        self.name = name
        self._state = "stopped"
        self.on_change = on_change
        self.restarts = 0
        self.processed = 0
        self.errors = 0
        self.last_activity_ns = 0

    @property
    def state(self) -> str:
        """running, restarting, stopped or failed."""
        return self._state

    @state.setter
    def state(self, value: str) -> None:
        old, self._state = self._state, value
        if old != value and self.on_change is not None:
            self.on_change(self, old)

    def snapshot(self, mailbox: int) -> dict[str, Any]:
        """Return the record as the ``health`` reply shows it."""
        return {
            "state": self.state, "restarts": self.restarts, "mailbox": mailbox,
            "processed": self.processed, "errors": self.errors, "last_activity_ns": self.last_activity_ns,
        }


class Counters:
    """System-wide counters, updated atomically per batch so a snapshot is always consistent
    (``ticks_received == ticks_accepted + ticks_rejected`` at every moment)."""

    NAMES = (
        "ticks_received", "ticks_accepted", "ticks_rejected", "ticks_processed", "ticks_late",
        "ticks_dead_lettered", "bars_received", "bars_accepted", "bars_rejected", "seq_gaps", "bars",
        "bars_processed", "signals", "orders", "fills", "dead_letters", "hangs",
        "ticks_duplicate", "bars_late", "stale_episodes",
    )

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values = dict.fromkeys(self.NAMES, 0)
        self._reasons: Counter[str] = Counter()

    def add(self, reasons: dict[str, int] | None = None, **deltas: int) -> None:
        """Add to several counters (and rejection reasons) in one atomic step."""
        with self._lock:
            for name, delta in deltas.items():
                self._values[name] += delta
            if reasons:
                self._reasons.update(reasons)

    def get(self, name: str) -> int:
        """Return one counter."""
        with self._lock:
            return self._values[name]

    def snapshot(self) -> dict[str, Any]:
        """Return every counter and ``rejected_by_reason``, consistently."""
        with self._lock:
            result: dict[str, Any] = dict(self._values)
            result["rejected_by_reason"] = dict(self._reasons)
        return result
