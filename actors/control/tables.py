"""``ctl`` replies for people: aligned tables of health, positions, orders and signals, and one
line per event. Prices keep their own digits; money is shown to the cent; times are UTC."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from actors.executor.report import price_text

__all__ = ["event_line", "group_orders", "render", "table"]


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], align: str, indent: str = "  ") -> str:
    """Rows under headers in aligned columns two spaces apart; ``align`` has an ``l`` (text) or ``r``
    (figures) per column."""
    rows = [list(row) for row in rows]
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        parts = [str(c).rjust(w) if a == "r" else str(c).ljust(w) for c, w, a in zip(cells, widths, align, strict=True)]
        return (indent + "  ".join(parts)).rstrip()

    return "\n".join([line(headers), *(line(row) for row in rows)])


def _time(ns: Any) -> str:
    if not isinstance(ns, int) or ns <= 0:
        return ""
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _money(value: Any, sign: bool = False) -> str:
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return "n/a"
    return f"{value:+,.2f}" if sign else f"{value:,.2f}"


def _qty(value: Any) -> str:
    """A quantity to 8 decimals at most, without trailing zeros."""
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return ""
    return price_text(round(value, 8))


def _condition(actor: dict[str, Any]) -> str:
    """An actor's condition in a few words: ok, busy, slow in a message, or blocked on something."""
    condition = actor.get("condition", "ok")
    if condition == "slow":
        return f"slow: in {actor['in']} for {actor['for_s']:.1f}s"
    if condition == "blocked":
        return f"blocked: {actor['on']} for {actor['for_s']:.1f}s"
    return condition


def _health(reply: dict[str, Any]) -> str:
    lines = [f"status: {reply['status']}"]
    if not reply.get("durability", {}).get("ok", True):
        lines.append(f"  records cannot be stored: {reply['durability']['reason']}")
    if reply.get("fatal"):
        lines.append(f"  stopping: {reply['fatal']}")
    if reply.get("risk", {}).get("halted"):
        lines.append(f"  trading halted: {reply['risk']['reason']}")
    overload = reply.get("overload") or {}
    if overload.get("overloaded"):
        lines.append(f"  overloaded for {overload['for_s']:.1f}s: {overload['in_flight']:,} ticks in flight "
                     f"(bound {overload['max_in_flight']:,}), {overload['store_backlog']} writes waiting for the store")
    if reply.get("stale"):
        lines.append(f"  stale: {', '.join(reply['stale'])}")
    rows = [[name, a["state"], f"{a['restarts']:,}", f"{a['mailbox']:,}", f"{a['processed']:,}", f"{a['errors']:,}",
             _condition(a)] for name, a in reply["actors"].items()]
    lines.append(table(["actor", "state", "restarts", "mailbox", "processed", "errors", "condition"], rows, "llrrrrl"))
    return "\n".join(lines)


def _positions(reply: dict[str, Any]) -> str:
    rows = [[symbol, _qty(p["qty"]), price_text(p["avg_price"]), price_text(p.get("mark")),
             _money(p["unrealized"], sign=True)] for symbol, p in sorted(reply["positions"].items())]
    lines = [f"equity {_money(reply['equity'])}  cash {_money(reply['cash'])}  realized "
             f"{_money(reply['realized'], sign=True)}  unrealized {_money(reply['unrealized'], sign=True)}"
             + ("  TRADING HALTED" if reply.get("halted") else "")]
    lines.append(table(["symbol", "qty", "avg price", "mark", "unrealized"], rows, "lrrrr") if rows
                 else "  no open positions")
    return "\n".join(lines)


def group_orders(reply: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per client order id, in order of first appearance: the order as last reported (its
    current status), when it was first seen, and what filled of it (quantity, average price, fees)."""
    orders: dict[str, dict[str, Any]] = {}
    for change in reply.get("orders", []):
        first = orders.get(change["client_id"], {}).get("first_ts", change["ts"])
        orders[change["client_id"]] = {**change, "first_ts": first}
    filled: dict[str, list[float]] = {}
    for fill in reply.get("fills", []):
        qty, value, fee = filled.get(fill["client_id"], [0.0, 0.0, 0.0])
        filled[fill["client_id"]] = [qty + fill["qty"], value + fill["qty"] * fill["price"], fee + fill["fee"]]
    open_ids = set(reply.get("open", []))
    rows = []
    for client_id, order in orders.items():
        qty, value, fee = filled.get(client_id, [0.0, 0.0, 0.0])
        rows.append({**order, "open": client_id in open_ids, "filled_qty": qty,
                     "fill_price": value / qty if qty else None, "fees": fee})
    return rows


def _orders(reply: dict[str, Any]) -> str:
    grouped = group_orders(reply)
    if not grouped:
        return "no orders"
    rows = [[o["client_id"], o["symbol"], o["side"], o["kind"], o["status"] + (" (open)" if o["open"] else ""),
             _time(o["first_ts"]), _qty(o["qty"]), _qty(o["filled_qty"]), price_text(o["fill_price"])
             if o["fill_price"] is not None else "", _money(o["fees"]) if o["filled_qty"] else "", o.get("reason", "")]
            for o in grouped]
    body = table(["client id", "symbol", "side", "type", "status", "first seen (UTC)", "qty", "filled", "fill price",
                  "fees", "reason"], rows, "llllllrrrrl")
    return f"{body}\n  {len(grouped)} orders, {sum(o['open'] for o in grouped)} open"


def _pairs(pairs: Any) -> str:
    """``[[key, value], ...]`` or a map as ``key=value`` words, numbers to 8 significant digits."""
    items = pairs.items() if isinstance(pairs, dict) else (p for p in pairs or () if len(p) == 2)
    return " ".join(f"{k}={_number(v)}" for k, v in items)


def _number(value: Any) -> str:
    """An input or parameter: numbers to 8 significant digits, n/a for none (a model that is off)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, bool) or not isinstance(value, float):
        return str(value)
    return price_text(float(f"{value:.8g}"))


def _signals(reply: dict[str, Any]) -> str:
    signals = reply.get("signals", [])
    if not signals:
        return "no signals stored yet"
    rows = [[_time(s["ts"]), s["symbol"], s["timeframe"], s["strategy"], s["side"], price_text(s["price"]),
             s["reason"], _pairs(s.get("inputs"))] for s in signals]
    return table(["time (UTC)", "symbol", "tf", "strategy", "side", "price", "reason", "inputs"], rows, "lllllrll")


_RENDER: dict[str, Callable[[dict[str, Any]], str]] = {
    "health": _health, "positions": _positions, "orders": _orders, "signals": _signals,
}


def render(command: str, reply: dict[str, Any]) -> str | None:
    """The reply to ``command`` as text for people, or None when it has no table of its own."""
    show = _RENDER.get(command)
    return show(reply) if show is not None else None


def event_line(topic: str, body: Any) -> str:
    """One line for an event off the events socket: its time (UTC), topic, and fields as ``key=value``."""
    if not isinstance(body, dict):
        return f"{topic}  {body!r}"
    when = _time(body.get("ts"))
    words = []
    for key, value in body.items():
        if key in ("type", "ts") or value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
            continue  # nothing to say: no limit price, no reason
        if isinstance(value, (list, dict)):
            text = _pairs(value) if value else ""
            if text:
                words.append(f"{key}={{{text}}}")
            continue
        if isinstance(value, str):
            words.append(f"{key}={value!r}" if " " in value or not value else f"{key}={value}")
        else:
            words.append(f"{key}={price_text(value) if isinstance(value, float) else value}")
    return "  ".join(part for part in (when, topic, " ".join(words)) if part)
