"""The account's side of manual orders and of a venue: orders from the control socket through the same
risk checks as a strategy's, cancels, and the venue's fills, order states and balances taken in.

Pure functions over the :class:`PaperBroker`; the executor actor calls them and sends what they return
on (to the store, the events socket, the venue actor).
"""

from __future__ import annotations

import math

from actors.executor.broker import PaperBroker
from actors.executor.orderbook import PendingOrder
from actors.executor.portfolio import Position
from messages.trading import BUY, SELL, Fill, Order
from messages.venue import VenueAccount, VenueFill, VenueOrderUpdate

__all__ = ["DONE", "account_differences", "cancel", "set_account", "submit", "take_fill", "take_state"]

DONE = ("filled", "cancelled", "rejected")
_QTY_TOL = 1e-8
_CASH_TOL = 1e-6


def submit(broker: PaperBroker, symbol: str, side: str, qty: float, kind: str, price: float, when: int,
           mark: float) -> tuple[list[Order], Order | None]:
    """Decide a manual order (``price``: the limit; ``mark``: the price risk is checked at) through the
    risk checks; return its states (submitted, then accepted or rejected) and the accepted order."""
    client_id, n = f"manual:{symbol}:{when}:{side}", 1
    while client_id in broker.decided.ids:
        n += 1
        client_id = f"manual:{symbol}:{when}:{side}:{n}"
    broker.decided.add(client_id)
    fields = (client_id, "manual", symbol, side, qty, when, kind)
    limit = price if kind == "limit" else math.nan
    orders = [Order(*fields, "submitted", "", limit)]
    held = broker.portfolio.qty(symbol)
    why = broker.blocked.get(symbol)
    if why is None and side == SELL and held - qty < -_QTY_TOL and not broker.config.allow_short:
        why = f"sells {qty:g} while {held:g} is held (shorts are off)"
    if why is None:
        why = broker.risk.check(orders[0], held, limit if kind == "limit" else mark, len(broker.pending))
    accepted = None
    if why is not None:
        orders.append(Order(*fields, "rejected", why, limit))
    else:
        accepted = Order(*fields, "accepted", "", limit)
        orders.append(accepted)
        broker.pending[client_id] = PendingOrder(accepted, when, 0, broker.batches, broker.ahead.next_mark())
    broker.orders.extend(orders)
    broker.decided.end_batch()
    return orders, accepted


def cancel(broker: PaperBroker, client_id: str, reason: str) -> Order:
    """Cancel an open paper order; its cancelled state. KeyError when it is not open."""
    pending = broker.pending.pop(client_id)
    order = pending.order._replace(status="cancelled", reason=reason)
    broker.orders.append(order)
    return order


def take_fill(broker: PaperBroker, message: VenueFill) -> list[Order]:
    """Book a venue's execution (unless the balances the account was set from hold it) and the order's
    new state. An order filled in full opens its bracket (an entry) or cancels the rest of its bracket
    (a stop-loss or take-profit): return those order states."""
    if not message.in_balance:
        broker.portfolio.apply(message.fill)
    broker.fills.append(message.fill)
    made = broker.venue_fill_done(message.order, message.total) if message.order.status == "filled" else []
    take_state(broker, VenueOrderUpdate(message.order, message.order.strategy == "outside"))
    return made


def take_state(broker: PaperBroker, message: VenueOrderUpdate) -> None:
    """Record an order's new state; a done order is no longer open, an adopted open one is."""
    order = message.order
    broker.orders.append(order)
    broker.decided.restore(order.client_id)
    if order.status in DONE:
        broker.pending.pop(order.client_id, None)
    elif order.client_id in broker.pending:
        broker.pending[order.client_id].order = order
    elif message.outside:
        broker.pending[order.client_id] = PendingOrder(order, order.ts, 0, broker.batches)


def set_account(broker: PaperBroker, account: VenueAccount, when: int) -> None:
    """Make the venue's balances the account: cash, and a position per symbol with a balance (at the
    venue's last price: the cost of what was bought before is not known)."""
    portfolio = broker.portfolio
    portfolio.cash = portfolio.initial_cash = account.cash
    portfolio.positions = {symbol: Position(qty, price if price == price else 0.0, when, 0.0)
                           for symbol, qty, price in account.positions if abs(qty) > _QTY_TOL}
    portfolio.marks.update({symbol: price for symbol, _, price in account.positions if price == price})


def account_differences(broker: PaperBroker, account: VenueAccount, when: int, touched: set[str]
                        ) -> tuple[list[str], dict[str, str]]:
    """Compare the venue's balances with the account. A difference in cash, or in a symbol with no
    order of ours open or filled since the last comparison (``touched``), was made outside the system:
    adopted (the account takes the venue's figure); one in a symbol we traded cannot be told from a
    fill we missed: returned as unexplained, by symbol, the account unchanged there. Return what was
    adopted (in words) and the unexplained differences."""
    portfolio, adopted, unexplained = broker.portfolio, [], {}
    if abs(account.cash - portfolio.cash) > _CASH_TOL * max(1.0, abs(account.cash)):
        adopted.append(f"cash {portfolio.cash:,.8g} -> {account.cash:,.8g}")
        portfolio.cash = account.cash
    open_symbols = broker.open_symbols()
    for symbol, qty, price in account.positions:
        held = portfolio.qty(symbol)
        if abs(qty - held) <= _QTY_TOL * max(1.0, abs(qty)):
            continue
        if symbol in touched or symbol in open_symbols:
            unexplained[symbol] = (f"the venue holds {qty:g} {symbol} where the account holds {held:g}, "
                                   "after orders of ours: new orders halted on it")
            continue
        adopted.append(f"{symbol} {held:g} -> {qty:g}")
        side = BUY if qty > held else SELL
        fill = Fill(f"outside:balance:{symbol}:{when}", symbol, side, abs(qty - held),
                    price if price == price else portfolio.marks.get(symbol, 0.0), 0.0, when)
        cash = portfolio.cash
        portfolio.apply(fill)
        portfolio.cash = cash  # a transfer in or out: no cash paid for it
    return adopted, unexplained
