"""Control protocol v1: validate a request map and answer it from a view of the system.

Every reply is a map with ``ok``; errors are ``{"ok": false, "error": "..."}`` and change nothing.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Protocol

from actors.feed.ingress import WatchList
from actors.store.errors import StorageError
from actors.store.reader import StoreReader
from messages.market import check_symbols
from messages.venue import CancelRequest, FlattenRequest, ManualOrder

if TYPE_CHECKING:
    from supervisors.deps import Deps

__all__ = ["COMMANDS", "ControlView", "handle_request"]


class ControlView(Protocol):
    """What the control socket may see and do."""

    fault_injection: bool
    actor_names: tuple[str, ...]
    deps: Deps

    def health(self) -> dict[str, Any]: ...
    def metrics(self) -> dict[str, Any]: ...
    def query(self, actor: str, what: str) -> Any: ...
    def ask(self, actor: str, message: Any) -> Any: ...
    def watch(self, add: tuple[str, ...], remove: tuple[str, ...]) -> list[str]: ...
    def restart(self, actor: str) -> None: ...
    def crash(self, actor: str) -> None: ...
    def shutdown(self, reason: str) -> None: ...


def _symbols(request: dict[str, Any]) -> tuple[str, ...]:
    value = request.get("symbols")
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ValueError('"symbols" must be a non-empty list of symbols or a comma-separated string')
    return check_symbols(value)


def _change_watch(view: ControlView, add: tuple[str, ...], remove: tuple[str, ...]) -> dict[str, Any]:
    """Check the whole change against the feed's current list and limit, then make it: all or nothing."""
    state = view.query("feed", "watch")
    WatchList(state["watch"], state["max_symbols"]).after(add, remove)  # raises ValueError, changing nothing
    return {"symbols": view.watch(add, remove)}


def _actor(request: dict[str, Any], view: ControlView) -> str:
    actor = request.get("actor")
    if not isinstance(actor, str) or actor not in view.actor_names:
        raise ValueError(f'"actor" must be one of {", ".join(view.actor_names)}')
    return actor


def _ping(request: dict[str, Any], view: ControlView) -> dict[str, Any]:
    return {"pong": True}


def _health(request: dict[str, Any], view: ControlView) -> dict[str, Any]:
    return view.health()


def _metrics(request: dict[str, Any], view: ControlView) -> dict[str, Any]:
    return view.metrics()


def _positions(request: dict[str, Any], view: ControlView) -> dict[str, Any]:
    return view.query("executor", "positions")


def _orders(request: dict[str, Any], view: ControlView) -> dict[str, Any]:
    reply = view.query("executor", "orders")
    if "venue" in view.actor_names:  # each order as the venue sees it: its id there, state, filled, fee
        try:
            venue = view.query("venue", "orders")
        except (TimeoutError, LookupError) as exc:  # busy with a request the rate limiter holds back
            reply["venue_error"] = str(exc)
            venue = {}
        for order in reply["orders"]:
            order["venue"] = venue.get(order["client_id"])
    return reply


def _manual(view: ControlView, message: Any) -> dict[str, Any]:
    """Ask the executor to act on a manual request; a refusal is an error reply."""
    reply = view.ask("executor", message)
    if "error" in reply:
        raise ValueError(reply["error"])
    if reply.get("status") == "rejected":
        raise ValueError(f"{reply['client_id']} rejected: {reply['reason']}")
    return reply


def _submit(request: dict[str, Any], view: ControlView) -> dict[str, Any]:
    symbol, side, kind = request.get("symbol"), request.get("side"), request.get("type", "market")
    qty, price = request.get("qty"), request.get("price")
    if not isinstance(symbol, str):
        raise ValueError('"symbol" must be a symbol, e.g. BTC/USDT')
    check_symbols([symbol])
    if side not in ("buy", "sell"):
        raise ValueError('"side" must be buy or sell')
    if kind not in ("market", "limit"):
        raise ValueError('"type" must be market or limit')
    if isinstance(qty, bool) or not isinstance(qty, int | float) or not math.isfinite(qty) or qty <= 0:
        raise ValueError('"qty" must be a number > 0')
    if kind == "limit":
        if isinstance(price, bool) or not isinstance(price, int | float) or not math.isfinite(price) or price <= 0:
            raise ValueError('a limit order needs "price", a number > 0')
    elif price is not None:
        raise ValueError('"price" is for limit orders only')
    return _manual(view, ManualOrder(symbol, side, float(qty), kind, float(price) if price is not None else math.nan))


def _cancel(request: dict[str, Any], view: ControlView) -> dict[str, Any]:
    client_id = request.get("client_id")
    if not isinstance(client_id, str) or not client_id:
        raise ValueError('"client_id" must be the id of an open order (see orders)')
    return _manual(view, CancelRequest(client_id))


def _flatten(request: dict[str, Any], view: ControlView) -> dict[str, Any]:
    symbol = request.get("symbol", "")
    if not isinstance(symbol, str):
        raise ValueError('"symbol" must be a symbol, or left out to flatten every position')
    if symbol:
        check_symbols([symbol])
    return _manual(view, FlattenRequest(symbol))


MAX_SIGNALS = 1_000


def _signals(request: dict[str, Any], view: ControlView) -> dict[str, Any]:
    """The latest ``last`` signals (default 20, at most 1,000) with their reasons and inputs, from the store:
    they outlive a restart of any actor or of the process, and need no subscriber to have been listening."""
    last = request.get("last", 20)
    if isinstance(last, bool) or not isinstance(last, int) or not 1 <= last <= MAX_SIGNALS:
        raise ValueError(f'"last" must be a whole number from 1 to {MAX_SIGNALS:,}')
    with StoreReader(view.deps.db_path, busy_ms=1_000) as store:  # never holds the control socket long
        return {"signals": store.recent_signals(view.deps.run, last)}


def _subscribe(request: dict[str, Any], view: ControlView) -> dict[str, Any]:
    return _change_watch(view, _symbols(request), ())


def _unsubscribe(request: dict[str, Any], view: ControlView) -> dict[str, Any]:
    return _change_watch(view, (), _symbols(request))


def _restart(request: dict[str, Any], view: ControlView) -> dict[str, Any]:
    actor = _actor(request, view)
    view.restart(actor)
    return {"restarting": actor}


def _crash(request: dict[str, Any], view: ControlView) -> dict[str, Any]:
    if not view.fault_injection:
        raise PermissionError("fault injection is off; start with --allow-fault-injection to use crash")
    actor = _actor(request, view)
    view.crash(actor)
    return {"crashing": actor}


def _shutdown(request: dict[str, Any], view: ControlView) -> dict[str, Any]:
    view.shutdown("shutdown requested over the control socket")
    return {"stopping": True}


COMMANDS = {
    "ping": _ping, "health": _health, "metrics": _metrics, "positions": _positions, "orders": _orders,
    "signals": _signals, "subscribe": _subscribe, "unsubscribe": _unsubscribe, "restart": _restart, "crash": _crash,
    "shutdown": _shutdown, "submit": _submit, "cancel": _cancel, "flatten": _flatten,
}


def handle_request(request: dict[str, Any], view: ControlView) -> dict[str, Any]:
    """Answer one decoded request map."""
    name = request.get("cmd")
    command = COMMANDS.get(name) if isinstance(name, str) else None
    if command is None:
        return {"ok": False, "error": f"unknown command {name!r}; valid: {', '.join(COMMANDS)}"}
    try:
        reply = command(request, view)
    except (ValueError, PermissionError, LookupError, StorageError) as exc:
        return {"ok": False, "error": str(exc)}
    except TimeoutError as exc:
        return {"ok": False, "error": f"timed out: {exc}"}
    return {"ok": True, **reply}
