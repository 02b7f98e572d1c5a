"""The fill model, the same for backtests and paper trading.

On bars (no ticks for the symbol): a market order fills at the open of the first bar that opens
at or after the order became active (``latency_bars`` later); a limit order fills when a bar's
range reaches the limit, at the limit, or at the open if the bar gapped through it; a stop order
triggers when the range reaches the stop and fills at the stop, or at the open if it gapped; a
trailing stop likewise, at the stop in force in that bar (moved by the bars closed before it).
On ticks: market orders fill at the ask (buy) or bid (sell) of the first tick after the order
became active; limits when the quote reaches them, at the quote; stops when the quote crosses
them, at the quote. Slippage (bps) moves market and stop fills against the trader, but on bars
never outside the bar's range: no fill at a price the market did not offer.
"""

from __future__ import annotations

import numpy as np

from messages.trading import BUY, Order

__all__ = ["first_bar_fill", "first_stop_fill", "tick_fill", "trailed", "trailing_stops"]


def _slipped(price: float, side: str, slippage: float) -> float:
    return price * (1.0 + slippage) if side == BUY else price * (1.0 - slippage)


def first_bar_fill(order: Order, opens: np.ndarray, highs: np.ndarray, lows: np.ndarray, start: int,
                   slippage: float) -> tuple[int, float] | None:
    """The first bar at or after ``start`` where ``order`` fills, and the price; None if none does."""
    if start >= len(opens):
        return None
    buy = order.side == BUY
    if order.kind == "market":
        price = float(opens[start])
        if slippage:
            price = min(_slipped(price, order.side, slippage), float(highs[start])) if buy else max(
                _slipped(price, order.side, slippage), float(lows[start]))
        return start, price
    o, h, low = opens[start:], highs[start:], lows[start:]
    if order.kind == "limit":
        hit = np.flatnonzero(low <= order.limit_price) if buy else np.flatnonzero(h >= order.limit_price)
        if not len(hit):
            return None
        i = int(hit[0])
        price = min(float(o[i]), order.limit_price) if buy else max(float(o[i]), order.limit_price)
        return start + i, price
    if order.kind == "stop":
        return first_stop_fill(order.side, order.stop_price, opens, highs, lows, start, slippage)
    raise ValueError(f"unknown order kind {order.kind!r}")


def first_stop_fill(side: str, stops: float | np.ndarray, opens: np.ndarray, highs: np.ndarray, lows: np.ndarray,
                    start: int, slippage: float) -> tuple[int, float] | None:
    """The first bar at or after ``start`` where a stop order of ``side`` triggers, and the price.

    ``stops`` is the stop price, or one stop price per bar from ``start`` on (a trailing stop).
    """
    if start >= len(opens):
        return None
    buy = side == BUY
    o, h, low = opens[start:], highs[start:], lows[start:]
    hit = np.flatnonzero(h >= stops) if buy else np.flatnonzero(low <= stops)
    if not len(hit):
        return None
    i = int(hit[0])
    stop = float(stops[i]) if isinstance(stops, np.ndarray) else stops
    price = max(float(o[i]), stop) if buy else min(float(o[i]), stop)
    if slippage:
        price = min(_slipped(price, side, slippage), float(h[i])) if buy else max(
            _slipped(price, side, slippage), float(low[i]))
    return start + i, price


def trailing_stops(side: str, best: float, trail: float, highs: np.ndarray, lows: np.ndarray,
                   start: int) -> np.ndarray:
    """The stop in force during each bar from ``start`` on of a trailing stop of ``side``.

    A sell stop (protecting a long) sits ``trail`` below the highest price seen: ``best`` (the
    highest so far) and the highs of the bars closed before; a buy stop (protecting a short) sits
    ``trail`` above the lowest: ``best`` and the lows. A bar's own extreme moves the stop from the
    next bar on.
    """
    if side == BUY:
        seen = np.minimum.accumulate(np.concatenate(([best], lows[start:-1])))
        return seen * (1.0 + trail)
    seen = np.maximum.accumulate(np.concatenate(([best], highs[start:-1])))
    return seen * (1.0 - trail)


def trailed(side: str, best: float, highs: np.ndarray, lows: np.ndarray) -> float:
    """The best price after the bars ``highs``/``lows`` closed (the highest high for a sell
    stop, the lowest low for a buy stop)."""
    if not len(highs):
        return best
    return min(best, float(lows.min())) if side == BUY else max(best, float(highs.max()))


def tick_fill(order: Order, bid: float, ask: float, last: float, slippage: float) -> float | None:
    """The price at which ``order`` fills on this tick, or None."""
    buy = order.side == BUY
    quote = ask if buy else bid
    if quote != quote:  # a trade-only tick: the last price is the only price offered
        quote = last
    if order.kind == "market":
        return _slipped(quote, order.side, slippage)
    if order.kind == "limit":
        reached = quote <= order.limit_price if buy else quote >= order.limit_price
        return quote if reached else None
    if order.kind == "stop":
        crossed = quote >= order.stop_price if buy else quote <= order.stop_price
        return _slipped(quote, order.side, slippage) if crossed else None
    raise ValueError(f"unknown order kind {order.kind!r}")
