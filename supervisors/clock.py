"""Injected clocks: logic asks a clock for the time, never the OS directly."""

from __future__ import annotations

import time

__all__ = ["Clock", "LiveClock", "SimClock"]


class Clock:
    """Source of time in ns since the epoch (UTC)."""

    def now_ns(self) -> int:
        """Return the current time."""
        raise NotImplementedError


class LiveClock(Clock):
    """The wall clock."""

    def now_ns(self) -> int:
        """Return the wall-clock time."""
        return time.time_ns()


class SimClock(Clock):
    """A clock moved by the replay: backtests are deterministic because time comes from the data."""

    def __init__(self, start_ns: int = 0) -> None:
        self._now = start_ns

    def advance_to(self, ts: int) -> None:
        """Move the clock forward to ``ts`` (never backwards)."""
        if ts > self._now:
            self._now = ts

    def now_ns(self) -> int:
        """Return the simulated time."""
        return self._now
