"""What an actor owns beyond one incarnation: the state it keeps across restarts and the view it shows
the rest of the system (``health`` reads views, typed, each written by its one owner only)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

__all__ = ["FeedView", "OverloadSource", "Owned", "RiskView", "VenueView"]

T = TypeVar("T")


class Owned:
    """One actor's slot, built once per actor name by the system and handed only to that actor's
    incarnations: ``kept``, its state that outlives an incarnation, and ``view``, what it shows."""

    __slots__ = ("kept", "view")

    def __init__(self) -> None:
        self.kept: Any = None
        self.view: Any = None

    def keep(self, kind: type[T], make: Callable[[], T]) -> T:
        """Return the kept state of type ``kind``, made by ``make`` the first time it is asked for."""
        if not isinstance(self.kept, kind):
            self.kept = make()
        return self.kept

    def shown(self, kind: type[T]) -> T | None:
        """Return the view shown, if it is a ``kind``."""
        view = self.view
        return view if isinstance(view, kind) else None


class OverloadSource(Protocol):
    """Flow control as health reads it."""

    def view(self, now_ns: int) -> dict[str, Any]:
        """What ``health`` shows under ``overload``."""
        ...


@dataclass(frozen=True, slots=True, eq=False)
class FeedView:
    """What the feed shows: the watched symbols with no data for a while, its flow control, and the
    connections open on each ingress socket."""

    stale: tuple[str, ...] = ()
    flow: OverloadSource | None = None
    publishers: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True, slots=True)
class RiskView:
    """What the executor shows: whether trading is halted (kill switch, records that cannot be stored) and why,
    and the strategies stopped on a symbol and timeframe because their code kept raising."""

    halted: bool = False
    reason: str = ""
    strategies: tuple[tuple[str, str], ...] = ()
    symbols: tuple[tuple[str, str], ...] = ()  # symbols new orders are halted on (venue differences), and why


@dataclass(frozen=True, slots=True)
class VenueView:
    """What the venue actor shows: the venue, its circuit breaker, the orders it follows."""

    venue: str = ""
    breaker_open: bool = False
    failures: int = 0
    last_error: str = ""
    open_orders: int = 0
    stops_held: int = 0
    updates_via: str = ""   # where order updates and fills come from: websocket | rest
