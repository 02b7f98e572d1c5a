"""What the dashboard shows, read from the same views the control socket answers from: health,
metrics, positions and orders through the control commands, and the latest signals and equity
from the database (read-only, never through the store actor)."""

from __future__ import annotations

import math
import time
from typing import Any

from actors.control.commands import ControlView, handle_request
from actors.store.errors import StorageError
from actors.store.reader import StoreReader

__all__ = ["EQUITY_POINTS", "SIGNALS", "dashboard_state", "finite"]

EQUITY_POINTS = 600  # the latest equity marks the chart shows
SIGNALS = 20         # the latest signals listed


def finite(value: Any) -> Any:
    """``value`` with every NaN or infinity inside it as None (JSON has neither)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def _open_orders(orders: dict[str, Any]) -> list[dict[str, Any]]:
    """The open orders, each in its latest state, from the ``orders`` reply (whose ``orders`` lists
    state changes, oldest first, and ``open`` the client ids still open)."""
    if not orders.get("ok"):
        return []
    latest = {order["client_id"]: order for order in orders["orders"]}
    return [latest.get(client_id, {"client_id": client_id}) for client_id in orders["open"]]


def _records(db_path: str, run: str) -> dict[str, Any]:
    try:
        with StoreReader(db_path) as store:
            ts, equity = store.equity_tail(run, EQUITY_POINTS)
            return {"signals": store.recent_signals(run, SIGNALS)[::-1], "equity": {"ts": ts, "equity": equity}, "error": ""}
    except StorageError as exc:
        return {"signals": [], "equity": {"ts": [], "equity": []}, "error": f"cannot read {db_path}: {exc}"}


def dashboard_state(view: ControlView, db_path: str, run: str) -> dict[str, Any]:
    """Everything the dashboard shows, as one JSON-ready map. A view that cannot answer (an actor
    restarting) shows as ``{"ok": false, "error": ...}`` in its place; nothing raises for it."""
    orders = handle_request({"cmd": "orders"}, view)
    return finite({
        "ts_ms": time.time_ns() // 1_000_000,
        "health": handle_request({"cmd": "health"}, view),
        "metrics": handle_request({"cmd": "metrics"}, view),
        "positions": handle_request({"cmd": "positions"}, view),
        "open_orders": _open_orders(orders),
        "orders_ok": orders.get("ok", False),
        **_records(db_path, run),
    })
