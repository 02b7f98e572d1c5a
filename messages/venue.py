"""Between the executor and the venue's execution actor: orders to send, and what the venue says back.

The executor decides (risk checks, sizing, the kill switch); with a venue, the orders it accepts go to
the venue actor (``PlaceOrders``, ``CancelOrder``) instead of filling on paper. The venue actor reports
each execution (``VenueFill``), each change of an order's state it did not cause by a fill
(``VenueOrderUpdate``), and the venue's balances (``VenueAccount``); the executor's account, the one
source of truth for positions, takes them in.
"""

from __future__ import annotations

from dataclasses import dataclass

from messages.system import Internal
from messages.trading import Fill, Order

__all__ = ["CancelOrder", "ManualOrder", "PlaceOrders", "Poll", "VenueAccount", "VenueFill", "VenueOrderUpdate",
           "CancelRequest", "FlattenRequest"]


@dataclass(frozen=True, slots=True)
class PlaceOrders:
    """Send these accepted orders to the venue (each once: the venue actor checks by client id)."""

    orders: tuple[Order, ...]


@dataclass(frozen=True, slots=True)
class CancelOrder:
    """Cancel this open order on the venue."""

    order: Order
    reason: str


@dataclass(frozen=True, slots=True)
class VenueFill:
    """An execution on the venue. ``fill`` is this execution (fees as charged, converted to the quote
    currency); ``order`` the order's state after it; ``total`` the order's executions so far as one
    fill (what is stored once the order is done). ``in_balance``: the venue's balances, which the
    account is set from, already hold it (an execution from before this process started)."""

    fill: Fill
    order: Order
    total: Fill
    in_balance: bool = False


@dataclass(frozen=True, slots=True)
class VenueOrderUpdate:
    """An order's new state that no execution explains: cancelled, rejected, unknown to the venue,
    or an order placed outside the system and adopted (``outside``)."""

    order: Order
    outside: bool = False


@dataclass(frozen=True, slots=True)
class VenueAccount:
    """The venue's balances: ``cash`` in the quote currency, ``positions`` (ccxt symbol, base balance,
    price to mark it at). ``start``: set the account from them (a process start); otherwise compare
    and adopt what the system did not cause."""

    cash: float
    positions: tuple[tuple[str, float, float], ...]
    start: bool = False


@dataclass(frozen=True, slots=True)
class ManualOrder:
    """An order asked for on the control socket, through the executor's risk checks."""

    symbol: str
    side: str
    qty: float
    kind: str = "market"
    price: float = float("nan")


@dataclass(frozen=True, slots=True)
class CancelRequest:
    """Cancel an open order by client id (control socket)."""

    client_id: str


@dataclass(frozen=True, slots=True)
class FlattenRequest:
    """Close the position in ``symbol`` (every position when empty) with market orders (control socket)."""

    symbol: str = ""


class Poll(Internal):
    """The venue actor tells itself to poll the venue."""

    __slots__ = ()
