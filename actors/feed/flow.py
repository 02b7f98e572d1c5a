"""Flow control for the live feed: when to stop taking ticks off the ingress socket.

The feed stops draining its socket while the pipeline holds too much: more than ``max_in_flight``
ticks accepted and not yet processed or dead-lettered, or more than ``max_store_backlog`` records
waiting for the store. It starts again once both have fallen to half their bound (hysteresis, so
it does not flap on every batch). What arrives meanwhile waits in the socket, and past its
high-water mark ZeroMQ drops it, which publishers' ``seq`` numbers make visible as gaps.

The feed can also be the part that falls behind: when every read for ``behind_ns`` took a full
batch, the socket holds more than the feed takes off it, and past the high-water mark it sheds.
That counts as overload too, without a pause.

The pipeline counts as overloaded from the first sign (a pause, or reads behind) until ``hold_ns``
has passed without one, so health says so steadily through an episode rather than flickering.
"""

from __future__ import annotations

from typing import Any

__all__ = ["FlowControl"]


class FlowControl:
    """Decides, from the pipeline's backlog, whether the feed may take more; tracks overload episodes.

    Pure logic: the caller passes the backlog and a monotonic clock in nanoseconds.
    """

    __slots__ = ("_full_since_ns", "_last_sign_ns", "behind", "behind_ns", "episodes", "hold_ns", "in_flight",
                 "max_in_flight", "max_store_backlog", "overloaded", "paused", "pauses", "since_ns", "store_backlog")

    def __init__(self, max_in_flight: int, max_store_backlog: int, hold_ns: int = 1_000_000_000,
                 behind_ns: int = 500_000_000) -> None:
        if max_in_flight < 1 or max_store_backlog < 1:
            raise ValueError("flow control bounds must be at least 1")
        self.max_in_flight = max_in_flight
        self.max_store_backlog = max_store_backlog
        self.hold_ns = hold_ns
        self.behind_ns = behind_ns
        self.behind = False        # every read for behind_ns took a full batch
        self.paused = False
        self.overloaded = False
        self.since_ns = 0          # monotonic time the current episode began (0 when not overloaded)
        self.episodes = 0          # overload episodes so far
        self.pauses = 0            # times the feed stopped taking ticks
        self.in_flight = 0
        self.store_backlog = 0
        self._last_sign_ns = 0
        self._full_since_ns = -1   # when the current run of full reads began (-1: the last read was not full)

    def admit(self, in_flight: int, store_backlog: int, now_ns: int) -> bool:
        """Record the backlog; return True while the feed may take more off its socket. A pause
        that finds no episode under way begins one (``episodes`` counts them)."""
        self.in_flight, self.store_backlog = in_flight, store_backlog
        if self.paused:
            if in_flight <= self.max_in_flight // 2 and store_backlog <= self.max_store_backlog // 2:
                self.paused = False
        elif in_flight >= self.max_in_flight or store_backlog >= self.max_store_backlog:
            self.paused = True
            self.pauses += 1
        if self.paused:
            self._sign(now_ns)
        return not self.paused

    def read(self, full: bool, now_ns: int) -> None:
        """Record whether a read from the socket took a full batch (so more was waiting)."""
        if not full:
            self._full_since_ns, self.behind = -1, False
        elif self._full_since_ns < 0:
            self._full_since_ns = now_ns
        elif now_ns - self._full_since_ns >= self.behind_ns:
            self.behind = True
            self._sign(now_ns)

    def _sign(self, now_ns: int) -> None:
        """A sign of overload: it begins an episode if none is under way, and prolongs it."""
        self._last_sign_ns = now_ns
        if not self.overloaded:
            self.overloaded, self.since_ns = True, now_ns
            self.episodes += 1

    def settle(self, now_ns: int) -> bool:
        """End the overload episode once ``hold_ns`` has passed without a sign of it; True if it just ended."""
        if self.overloaded and not self.paused and now_ns - self._last_sign_ns >= self.hold_ns:
            self.overloaded, self.since_ns = False, 0
            return True
        return False

    def view(self, now_ns: int) -> dict[str, Any]:
        """What ``health`` shows under ``overload``."""
        return {
            "overloaded": self.overloaded,
            "for_s": round((now_ns - self.since_ns) / 1e9, 3) if self.overloaded else 0.0,
            "paused": self.paused, "behind": self.behind, "episodes": self.episodes, "pauses": self.pauses,
            "in_flight": self.in_flight, "max_in_flight": self.max_in_flight,
            "store_backlog": self.store_backlog, "max_store_backlog": self.max_store_backlog,
        }
