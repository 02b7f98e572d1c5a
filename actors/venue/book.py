"""Our orders as the venue sees them, and the venue's executions and order states turned into messages
for the executor; orders and executions made outside the system adopted.

Pure logic: ccxt's unified order and trade maps in, :mod:`messages.venue` out. Each execution is taken
in once, by its trade id. An order's state is ``filled`` once its executions add up to its amount;
``cancelled`` (with what had filled, if anything) when the venue cancelled or expired it or no longer
knows it; ``rejected`` when the venue rejected it. Fees are taken as the venue charged them: in the quote
currency as they are; in the base currency as the quantity they took, valued at the execution's price;
in a third currency (a discount token such as BNB) valued in the quote currency at that token's price
on the venue (``rate``), so that P&L carries it; the token's own balance is not part of the account.
A fee whose currency the venue gives no price for is taken as 0 and counted in ``unvalued_fees``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from collections.abc import Callable
from typing import Any

from messages.trading import BUY, Fill, Order
from messages.venue import VenueFill, VenueOrderUpdate

__all__ = ["Tracked", "VenueBook", "ns"]

_EPS = 1e-9


def ns(ms: Any) -> int:
    """A venue time in ms as ns since the epoch (0 when the venue gave none)."""
    return int(ms or 0) * 1_000_000


@dataclass(slots=True)
class Tracked:
    """One order on the venue: our latest state of it and what the venue said."""

    order: Order
    outside: bool = False          # placed outside the system, adopted
    order_id: str = ""             # the venue's id, once known
    venue_status: str = "sending"  # sending | open | closed | canceled | expired | rejected
    amount: float = math.nan       # as sent (rounded), or as the venue reports it
    filled: float = 0.0
    cost: float = 0.0
    fee: float = 0.0
    last_ts: int = 0
    trades: set[str] = field(default_factory=set)

    @property
    def done(self) -> bool:
        """Whether the order can change no more."""
        return self.order.status in ("filled", "cancelled", "rejected")

    def total(self) -> Fill:
        """Its executions so far as one fill (average price, fees added up)."""
        o = self.order
        return Fill(o.client_id, o.symbol, o.side, self.filled, self.cost / self.filled if self.filled else 0.0,
                    self.fee, self.last_ts)


class VenueBook:
    """Our open orders on one venue, by client id; ``markets`` are ccxt's (for base and quote)."""

    def __init__(self, markets: dict[str, Any], rate: Callable[[str, str], float] | None = None) -> None:
        self.markets = markets
        self.rate = rate                       # (currency, quote) -> price of one unit in quote; NaN: none
        self.unvalued_fees = 0
        self.tracked: dict[str, Tracked] = {}
        self.by_order_id: dict[str, str] = {}
        self.seen: set[str] = set()            # trade ids taken in

    # -- our orders ---------------------------------------------------------------------------------

    def track(self, order: Order, amount: float = math.nan) -> Tracked:
        """Follow ``order`` (sent, or being sent, with ``amount`` after rounding)."""
        tracked = self.tracked.get(order.client_id)
        if tracked is None:
            tracked = self.tracked[order.client_id] = Tracked(order, amount=amount)
        elif amount == amount:
            tracked.amount = amount
        return tracked

    def open_orders(self) -> list[Tracked]:
        """The orders not done yet."""
        return [t for t in self.tracked.values() if not t.done]

    def placed(self, client_id: str, venue_order: dict[str, Any]) -> None:
        """Note what the venue said about our order (its id, status, amount)."""
        tracked = self.tracked[client_id]
        if venue_order.get("id"):
            tracked.order_id = str(venue_order["id"])
            self.by_order_id[tracked.order_id] = client_id
        tracked.venue_status = venue_order.get("status") or tracked.venue_status
        if venue_order.get("amount"):
            tracked.amount = float(venue_order["amount"])

    def state(self, client_id: str, venue_order: dict[str, Any] | None, why: str = "") -> VenueOrderUpdate | None:
        """The order's new state when the venue closed it without (more) executions: cancelled,
        expired, rejected, or unknown to the venue (``venue_order`` None); None otherwise."""
        tracked = self.tracked[client_id]
        if tracked.done:
            return None
        if venue_order is not None:
            self.placed(client_id, venue_order)
        status = tracked.venue_status if venue_order is not None else "unknown"
        if status in ("open", "sending", "closed", "canceling"):
            return None  # closed: its executions make it filled
        if status == "rejected":
            return self._update(tracked, "rejected", why or f"the venue rejected it")
        reason = why or {"unknown": "the venue does not know this order (never reached it, or it was purged)",
                         "expired": "expired on the venue"}.get(status, "cancelled on the venue")
        if tracked.filled > _EPS:
            o = tracked.order
            tracked.order = o._replace(status="filled", qty=tracked.filled,
                                       reason=f"{reason} after {tracked.filled:g} of {tracked.amount:g} filled")
            return VenueOrderUpdate(tracked.order, tracked.outside)
        return self._update(tracked, "cancelled", reason)

    def _update(self, tracked: Tracked, status: str, reason: str) -> VenueOrderUpdate:
        tracked.order = tracked.order._replace(status=status, reason=reason)
        return VenueOrderUpdate(tracked.order, tracked.outside)

    # -- outside orders ---------------------------------------------------------------------------------

    def adopt(self, venue_order: dict[str, Any], known_ids: set[str]) -> VenueOrderUpdate | None:
        """An open order on the venue that none of ours is (its client order id is not one of
        ``known_ids``, the ids we send): adopted as ``outside:<venue id>``; None if it is ours or known."""
        order_id = str(venue_order.get("id") or "")
        if not order_id or order_id in self.by_order_id or venue_order.get("clientOrderId") in known_ids:
            return None
        if venue_order.get("symbol") not in self.markets:
            return None
        order = self._outside_order(order_id, venue_order.get("symbol"), venue_order.get("side") or BUY,
                                    float(venue_order.get("amount") or 0.0), ns(venue_order.get("timestamp")),
                                    venue_order.get("type") or "limit", venue_order.get("price"))
        tracked = self.tracked[order.client_id]
        self.placed(order.client_id, venue_order)
        return VenueOrderUpdate(tracked.order, outside=True)

    def _outside_order(self, order_id: str, symbol: str, side: str, qty: float, ts: int, kind: str,
                       price: Any) -> Order:
        client_id = f"outside:{order_id}"
        order = Order(client_id, "outside", symbol, side, qty, ts, "limit" if kind == "limit" else "market",
                      "accepted", "placed outside the system, adopted",
                      float(price) if price and kind == "limit" else math.nan)
        tracked = self.track(order, qty)
        tracked.outside, tracked.order_id = True, order_id
        self.by_order_id[order_id] = client_id
        return order

    # -- executions -------------------------------------------------------------------------------------

    def execution(self, trade: dict[str, Any], in_balance: bool = False) -> VenueFill | None:
        """Take in one of the venue's executions (once, by its id): the fill of our order, or of an
        outside order (adopted). None for one already taken in or outside the traded markets."""
        trade_id = str(trade.get("id") or "")
        symbol = trade.get("symbol")
        if not trade_id or trade_id in self.seen or symbol not in self.markets:
            return None
        self.seen.add(trade_id)
        order_id = str(trade.get("order") or "")
        client_id = self.by_order_id.get(order_id)
        ts = ns(trade.get("timestamp"))
        qty, price = float(trade.get("amount") or 0.0), float(trade.get("price") or 0.0)
        if client_id is None:
            self._outside_order(order_id or f"trade-{trade_id}", symbol, trade.get("side") or BUY, qty, ts,
                                trade.get("type") or "market", None)
            client_id = self.by_order_id[order_id or f"trade-{trade_id}"]
        tracked = self.tracked[client_id]
        fill = self._fill(tracked.order, qty, price, trade.get("fee") or {}, ts)
        tracked.trades.add(trade_id)
        tracked.filled += qty
        tracked.cost += qty * price
        tracked.fee += fill.fee
        tracked.last_ts = max(tracked.last_ts, ts)
        if tracked.outside and tracked.venue_status != "open":
            tracked.amount = tracked.filled  # adopted from its executions: as large as they are
        o = tracked.order
        if tracked.amount == tracked.amount and tracked.filled >= tracked.amount - _EPS * max(1.0, tracked.amount):
            tracked.order = o._replace(status="filled", qty=tracked.filled,
                                       reason="placed outside the system, adopted" if tracked.outside else "")
        else:
            tracked.order = o._replace(status="accepted",
                                       reason=f"partly filled: {tracked.filled:g} of {tracked.amount:g}")
        return VenueFill(fill, tracked.order, tracked.total(), in_balance)

    def _fill(self, order: Order, qty: float, price: float, fee: dict[str, Any], ts: int) -> Fill:
        """Our fill of one execution, with its fee in the quote currency (see the module's docstring)."""
        market = self.markets[order.symbol]
        cost, currency = float(fee.get("cost") or 0.0), fee.get("currency")
        if currency == market.get("base"):
            qty = qty - cost if order.side == BUY else qty + cost
            return Fill(order.client_id, order.symbol, order.side, qty, price, cost * price, ts)
        if currency in (None, market.get("quote")) or not cost:
            return Fill(order.client_id, order.symbol, order.side, qty, price, cost, ts)
        unit = self.rate(str(currency), str(market.get("quote"))) if self.rate is not None else math.nan
        if not unit == unit:
            self.unvalued_fees += 1
            unit = 0.0
        return Fill(order.client_id, order.symbol, order.side, qty, price, cost * unit, ts)
