"""How much an entry buys or sells, and whether its sizing and protective prices can be used.

An entry (a buy while flat, or with shorts on a sell while flat) is sized by its signal's ``sizing``:
"" the configured allocation, a fraction of equity; ``equity`` the fraction ``size`` of equity;
``qty`` ``size`` units; ``risk`` the fraction ``size`` of equity lost if the stop-loss is hit,
``qty = equity * size / |entry price - stop_loss|``, the entry price being the order's limit or
stop price, else the decision's close, slipped against the trader (but a limit's). Equity is marked
at the decision's close; the fraction-of-equity sizes are net of the fee. A long never spends more
than the cash; a short is bounded by the risk limits only.
"""

from __future__ import annotations

from collections.abc import Callable

from messages.trading import BUY, SELL, Signal

__all__ = ["SIZINGS", "entry_price", "entry_problem", "entry_qty"]

SIZINGS = ("", "equity", "qty", "risk")


def entry_problem(signal: Signal) -> str | None:
    """Why an entry's sizing or protective prices cannot be used, or None: a long's stop-loss must
    be below its entry price and its take-profit above, a short's the other way round."""
    sizing, size = signal.sizing, signal.size
    if sizing not in SIZINGS:
        return f"unknown sizing {sizing!r} (valid: equity, qty, risk)"
    if sizing and not size > 0:
        return f"{sizing} sizing needs a size > 0, got {size!r}"
    if sizing == "risk" and signal.stop_loss != signal.stop_loss:
        return "risk sizing needs a stop-loss"
    if signal.trail == signal.trail and not 0.0 < signal.trail < 1.0:
        return f"trailing stop {signal.trail!r} is not a fraction in (0, 1)"
    entry = entry_price(signal, 0.0)
    below, above = ("stop-loss", signal.stop_loss), ("take-profit", signal.take_profit)
    if signal.side == SELL:
        below, above = above, below
    for (name, price), word in ((below, "below"), (above, "above")):
        if price == price and not (price < entry if word == "below" else price > entry):
            return f"{name} {price:g} is not {word} the entry price {entry:g}"
    return None


def entry_price(signal: Signal, slippage: float) -> float:
    """The price an entry expects: its limit or stop price, else the decision's close; slipped
    against the trader, except a limit's."""
    if signal.order == "limit":
        return signal.limit_price
    price = signal.stop_price if signal.order == "stop" else signal.price
    return price * (1.0 + slippage) if signal.side == BUY else price * (1.0 - slippage)


def entry_qty(signal: Signal, equity: Callable[[], float], cash: float, allocation: float, fee_fixed: float,
              fee: float, slippage: float) -> tuple[float, str | None]:
    """The quantity of an entry, or 0 and why there is none. ``equity`` gives the equity at the
    decision (asked only when the sizing needs it); ``allocation`` is the fraction of equity an
    entry without sizing takes; ``fee`` and ``slippage`` are fractions."""
    why = entry_problem(signal)
    if why is not None:
        return 0.0, why
    sizing, long = signal.sizing, signal.side == BUY
    price = signal.price * (1.0 + slippage) * (1.0 + fee)
    if sizing in ("", "equity"):
        fraction = allocation if sizing == "" else signal.size
        budget = min(cash, equity() * fraction) if long else equity() * fraction
        if budget <= fee_fixed or price <= 0:
            return 0.0, "no cash"
        return (budget - fee_fixed) / price, None
    if sizing == "qty":
        qty = signal.size
    else:  # risk: the loss at the stop-loss, from the entry price the order expects
        qty = equity() * signal.size / abs(entry_price(signal, slippage) - signal.stop_loss)
    if long:
        qty = min(qty, (cash - fee_fixed) / price)
    if not qty > 0:
        return 0.0, "no cash"
    return qty, None
