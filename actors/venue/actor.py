"""Venue actor: the exchange session through ccxt beside the executor.

It sends the orders the executor accepted (each once, by client id), cancels, and takes in order
updates and executions: from the venue's websocket where ccxt.pro has ``watch_orders`` and
``watch_my_trades`` for it (an :class:`~actors.venue.stream.OrderStream` in a thread and event loop of its
own relays them here as they come; ``venue.order_stream`` off turns it off), else, and whenever that
stream is down or stays silent past ``venue.timeout_s`` after an order, by REST polling every
``venue.poll_s`` (``fetch_open_orders``, ``fetch_order``, ``fetch_my_trades``). Each switch between the
two is logged once. An execution is taken in once, by its trade id, whichever path sees it first. It
reconciles at start and every ``venue.reconcile_s``, always over REST: balances, open orders and recent
executions against what the executor holds. Stop orders are held here and sent as market orders once the
venue's last price crosses their stop (spot venues through ccxt do not offer one stop-market order type everywhere).

At its first start in a process the executor's account is set from the venue's balances (cash = the
quote currency's, positions = the base currencies' of the traded symbols); executions from before
are recorded, not applied again. A restarted incarnation rebuilds its book from the executor's open
orders and the venue; the executions it took in are kept across incarnations.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from actors.executor.orderbook import trail_of
from actors.store.exchange import Retry, VenueError
from actors.venue.book import VenueBook
from actors.venue.breaker import CircuitBreaker
from actors.venue.credentials import load_credentials
from actors.venue.session import OrderRefused, VenueSession, open_trading, venue_client_id
from actors.venue.stream import OrderStream, StreamDown, StreamOrders, StreamTrades, StreamUp, streams_orders
from messages.pipeline import Persist
from messages.system import Query
from messages.trading import Order
from messages.venue import CancelOrder, PlaceOrders, Poll, VenueAccount, VenueOrderUpdate
from supervisors.actor import SupervisedActor, publish
from supervisors.owned import VenueView

__all__ = ["VenueActor", "quote_of"]


def quote_of(markets: dict[str, Any], symbols: tuple[str, ...]) -> str:
    """The one quote currency of ``symbols`` on the venue; ValueError naming what does not fit."""
    missing = [s for s in symbols if s not in markets]
    if missing:
        raise ValueError(f"the venue lists no {', '.join(missing)} (symbols are the venue's, e.g. BTC/USDT)")
    quotes = sorted({markets[s]["quote"] for s in symbols})
    if len(quotes) != 1:
        raise ValueError(f"the traded symbols are quoted in {', '.join(quotes)}; the account has one cash "
                         "currency: trade symbols of one quote currency")
    return quotes[0]


@dataclass(slots=True)
class _Kept:
    """What outlives an incarnation: the executions taken in, whether the account was set at start."""

    seen: set[str] = field(default_factory=set)
    started: bool = False
    since_ms: int = 0


class VenueActor(SupervisedActor):
    """Sends orders to the venue and reports what it did with them (actor thread throughout)."""

    def setup(self) -> None:
        """Open the session, rebuild the book, reconcile; start the poll clock."""
        settings = self.ctx.settings.venue
        self.settings = settings
        self.symbols = tuple(s for s in self.ctx.deps.symbols if s != "*")
        credentials = load_credentials(settings.id, settings.key_file)
        exchange = open_trading(settings.id, credentials, settings.url, settings.sandbox, settings.timeout_s)
        self.breaker = CircuitBreaker(settings.breaker_failures)
        self.session = VenueSession(exchange, Retry(retries=settings.retries, backoff_s=settings.backoff_s,
                                                    cap_s=max(settings.backoff_s, 5.0)), self.breaker)
        self.kept = self.ctx.keep(_Kept, _Kept)
        self.stops: dict[str, Order] = {}
        self.trail_best: dict[str, float] = {}  # a held trailing stop's best price since it was placed
        self.last_reconcile = 0.0
        self.halted: dict[str, str] = {}
        self.via = "rest"                       # where order updates come from: rest | websocket
        self.expecting: dict[str, float] = {}   # venue order id -> when a stream update for it became due
        self.last_rest = 0.0
        self.stream: OrderStream | None = None
        self.stream_tried = False               # a subscription of the stream was tried (its failure said once)
        with self.waiting(f"{settings.id}: loading markets"):
            markets = self.session.load()
        self.quote = quote_of(markets, self.symbols)
        self.book = VenueBook({s: markets[s] for s in self.symbols}, self._fee_rate)
        self.book.seen = self.kept.seen
        self._start()
        self.last_rest = time.monotonic()
        self._show()
        self._open_stream(credentials, markets)
        self._stop_clock = threading.Event()
        self._clock = threading.Thread(target=self._tick, name="venue-poll", daemon=True)
        self._clock.start()

    def teardown(self) -> None:
        """Stop the poll clock and the order stream (actor thread)."""
        stop = getattr(self, "_stop_clock", None)
        if stop is not None:
            stop.set()
        if getattr(self, "stream", None) is not None:
            self.stream.stop()

    def _open_stream(self, credentials: Any, markets: dict[str, Any]) -> None:
        """Start the order stream where the venue has one and it is wanted; else say updates are polled."""
        settings = self.settings
        if not settings.order_stream or not streams_orders(settings.id):
            why = "venue.order_stream is off" if not settings.order_stream else "ccxt has no watch_orders and " \
                                                                                 f"watch_my_trades for {settings.id}"
            self.log.info("{}: order updates and fills polled over REST every {:g}s ({})", settings.id,
                          settings.poll_s, why)
            return
        self.stream = OrderStream(settings.id, credentials, settings.url, settings.sandbox, settings.timeout_s,
                                  markets, Retry(backoff_s=settings.backoff_s, cap_s=max(settings.backoff_s, 5.0)),
                                  self.ctx.address.tell)
        self.stream.start()

    def _tick(self) -> None:
        """Tell this actor to poll (poll thread): every ``venue.poll_s``, or sooner when reconciling or
        watching the order stream for silence needs it; a poll queued is not doubled."""
        self._due = threading.Event()
        self._due.set()
        settings = self.settings
        step = min(settings.poll_s, settings.reconcile_s, settings.timeout_s)
        while not self._stop_clock.wait(step):
            if self._due.is_set():
                self._due.clear()
                self.ctx.address.tell(Poll())

    # -- messages ---------------------------------------------------------------------------------------

    def handle(self, message: Any) -> Any:
        """Send, cancel, poll, or answer a query (actor thread)."""
        if isinstance(message, PlaceOrders):
            for order in message.orders:
                self._place(order)
        elif isinstance(message, CancelOrder):
            self._cancel(message.order, message.reason)
        elif isinstance(message, Poll):
            try:
                self._poll()
            finally:
                self._due.set()
        elif isinstance(message, StreamTrades):
            self._streamed_trades(message.trades)
        elif isinstance(message, StreamOrders):
            self._streamed_orders(message.orders)
        elif isinstance(message, (StreamUp, StreamDown)):
            self._stream_changed(message)
        elif isinstance(message, Query):
            return self._query(message.what)
        else:
            raise TypeError(f"venue cannot handle {type(message).__name__}")
        return None

    def _start(self) -> None:
        """Take the executor's open orders, find them on the venue, record what filled meanwhile, adopt
        outside orders; at the first start of the process, set the account from the balances."""
        open_orders = self.ctx.registry.address("executor").ask(Query("venue_orders"), timeout=10.0)
        for order in open_orders:
            if order.kind == "stop" and order.strategy != "outside":
                self.stops[order.client_id] = order
            else:
                self.book.track(order)
        first = not self.kept.started
        now_ms = int(time.time() * 1000)
        since = now_ms - int(self.settings.lookback_s * 1000) if first else self.kept.since_ms
        with self.waiting(f"{self.settings.id}: reconciling at start"):
            for tracked in list(self.book.open_orders()):
                self._refresh(tracked.order.client_id)
            self._executions(since, in_balance=first)
            for tracked in list(self.book.open_orders()):
                self._closed_without_executions(tracked.order.client_id)
            self._adopt_open()
            self._account(start=first)
        self.kept.started, self.kept.since_ms = True, now_ms - 60_000
        self.log.info("{}: reconciled at start: {} open orders of ours, {} executions known", self.settings.id,
                      len(self.book.open_orders()), len(self.book.seen))

    # -- orders -----------------------------------------------------------------------------------------

    def _place(self, order: Order) -> None:
        if order.kind == "stop":
            self.stops[order.client_id] = order  # emulated: sent as a market order when the price crosses
            return
        if self.breaker.open:
            self._tell(VenueOrderUpdate(order._replace(status="rejected", reason=(
                f"circuit breaker open after {self.breaker.failures} failed requests: {self.breaker.last_error}")[:300])))
            return
        self.book.track(order)
        try:
            price = order.limit_price if order.kind == "limit" else self.session.last_price(order.symbol)
            amount, limit = self.session.checked(order, price)
            self.book.track(order, amount)
            placed = self.session.place(order, amount, limit)
        except OrderRefused as exc:
            self.book.tracked.pop(order.client_id, None)
            self._tell(VenueOrderUpdate(order._replace(status="rejected", reason=str(exc))))
            return
        except VenueError as exc:  # fate unknown: the next polls ask for it by client id
            self.log.error("{}; asked for again on the next poll", exc)
            self._after_failure()
            return
        self.book.placed(order.client_id, placed)
        self._expect(order.client_id)
        self.send("store", Persist(venue_ids=((order.client_id, venue_client_id(order.client_id),
                                               str(placed.get("id") or "")),)))
        self.log.info("{} sent to {} as {} ({} {} {:g})", order.client_id, self.settings.id,
                      venue_client_id(order.client_id), order.side, order.symbol, amount)
        self._executions_of(order.symbol)

    def _cancel(self, order: Order, reason: str) -> None:
        self.trail_best.pop(order.client_id, None)
        if self.stops.pop(order.client_id, None) is not None:
            self._tell(VenueOrderUpdate(order._replace(status="cancelled", reason=reason)))
            return
        tracked = self.book.tracked.get(order.client_id) or self.book.track(order)
        try:
            state = self.session.cancel(tracked.order)
        except VenueError as exc:
            self.log.error("cancel of {} failed: {}", order.client_id, exc)
            self._after_failure()
            return
        self._executions_of(order.symbol)
        self._expect(order.client_id)
        update = self.book.state(order.client_id, state, reason if state is not None else "")
        if update is not None:
            self._tell(update)

    # -- polling and reconciling ---------------------------------------------------------------------------

    def _poll(self, rest: bool = False) -> None:
        """Poll what is due: order updates and fills over REST (every ``venue.poll_s`` unless the order
        stream brings them, or at once with ``rest``), emulated stops, the reconciliation."""
        now, settings = time.monotonic(), self.settings
        silent = [t for t in self.expecting.values() if now - t > settings.timeout_s]
        if self.via == "websocket" and silent:
            self._switch("rest", f"no update on the websocket {now - min(silent):.1f}s after an order")
        due = now - self.last_rest >= settings.poll_s - min(settings.poll_s, settings.reconcile_s,
                                                             settings.timeout_s) / 2
        if due:
            self.last_rest = now
        try:  # requests are short (venue.timeout_s); a venue failing repeatedly shows as slow, then the breaker
            for tracked in [t for t in self.book.open_orders() if not t.order_id]:
                self._refresh(tracked.order.client_id)  # fate unknown: ask by client id first
            if rest or (due and self.via == "rest"):
                self._executions(self.kept.since_ms)
                listed = self._adopt_open()
                for tracked in [t for t in self.book.open_orders() if t.order_id not in listed]:
                    self._closed_without_executions(tracked.order.client_id)
            if due:
                self._trigger_stops()
            if now - self.last_reconcile >= settings.reconcile_s:
                self._account()
        except VenueError as exc:
            self.log.warning("poll of {} failed: {}", self.settings.id, exc)
            self._after_failure()
            return
        if self.breaker.changed:
            self._breaker_changed()

    def _refresh(self, client_id: str) -> None:
        """Ask the venue for our order by client id; note what it says."""
        tracked = self.book.tracked[client_id]
        found = self.session.find(tracked.order.symbol, client_id)
        if found is not None:
            self.book.placed(client_id, found)

    def _closed_without_executions(self, client_id: str) -> None:
        """An order not listed open on the venue (any more): its final state, unless executions not
        taken in yet explain it (they are fetched first)."""
        tracked = self.book.tracked[client_id]
        if tracked.outside:
            found: dict[str, Any] | None = {"status": "canceled"}
        else:
            found = self.session.find(tracked.order.symbol, client_id)
            if found is not None and float(found.get("filled") or 0.0) > tracked.filled:
                self.book.placed(client_id, found)
                self._executions_of(tracked.order.symbol)
                return
        update = self.book.state(client_id, found)
        if update is not None:
            self._tell(update)

    def _executions(self, since_ms: int, in_balance: bool = False) -> None:
        for symbol in self.symbols:
            self._executions_of(symbol, since_ms, in_balance)

    def _executions_of(self, symbol: str, since_ms: int | None = None, in_balance: bool = False) -> None:
        self._take(self.session.trades(symbol, self.kept.since_ms if since_ms is None else since_ms), in_balance)

    def _take(self, trades: Any, in_balance: bool = False) -> None:
        """Take in executions (REST or stream): each once, by trade id; outside ones adopted with an event."""
        for trade in sorted(trades, key=lambda t: (t.get("timestamp") or 0, str(t.get("id")))):
            outside = str(trade.get("order") or "") not in self.book.by_order_id
            fill = self.book.execution(trade, in_balance)
            if fill is None:
                continue
            if outside and not in_balance:
                self._event("adopted", f"an execution outside the system: {fill.fill.side} {fill.fill.qty:g} "
                            f"{fill.fill.symbol} at {fill.fill.price:g} (order {fill.order.client_id})")
            self._tell(fill)

    # -- the order stream -----------------------------------------------------------------------------

    def _expect(self, client_id: str) -> None:
        """While updates come from the stream, note that one is due for this order (placed, cancelled)."""
        tracked = self.book.tracked.get(client_id)
        if self.via == "websocket" and tracked is not None and tracked.order_id:
            self.expecting.setdefault(tracked.order_id, time.monotonic())

    def _stream_changed(self, message: StreamUp | StreamDown) -> None:
        if isinstance(message, StreamUp):
            self._poll(rest=True)  # what the stream missed before it stood
            self._switch("websocket", "subscribed")
        elif message.final or self.via == "websocket":
            self._switch("rest", message.error)
            self._poll(rest=True)
        elif not self.stream_tried:
            self.log.warning("{}: order stream not subscribed ({}); polling REST every {:g}s meanwhile, trying "
                             "again with backoff", self.settings.id, message.error, self.settings.poll_s)
        else:
            self.log.debug("{}: order stream not subscribed ({}); retrying", self.settings.id, message.error)
        self.stream_tried = True

    def _switch(self, via: str, why: str) -> None:
        """Take order updates from ``via`` (rest | websocket) from now on; logged once per switch."""
        if via == self.via:
            return
        self.via = via
        self.expecting.clear()
        if via == "websocket":
            self.log.info("{}: order updates and fills through its websocket now ({}); REST reconciles every {:g}s",
                          self.settings.id, why, self.settings.reconcile_s)
        else:
            self.log.warning("{}: order stream unusable ({}); polling REST every {:g}s until it is back",
                             self.settings.id, why, self.settings.poll_s)
        self._show()

    def _heard(self, order_ids: Any) -> None:
        """The stream spoke: updates for these venue order ids are no longer due; trust it again."""
        for order_id in order_ids:
            self.expecting.pop(str(order_id), None)
        if self.via == "rest" and self.stream is not None and not self.expecting:
            self._switch("websocket", "it speaks again")

    def _streamed_trades(self, trades: tuple[dict[str, Any], ...]) -> None:
        try:
            if any(str(t.get("order") or "") not in self.book.by_order_id for t in trades):
                for tracked in [t for t in self.book.open_orders() if not t.order_id]:
                    self._refresh(tracked.order.client_id)  # fate unknown: it may be ours
            self._take(trades)
        except VenueError as exc:
            self.log.warning("{}: lookup for a streamed execution failed: {}", self.settings.id, exc)
            self._after_failure()

    def _streamed_orders(self, orders: tuple[dict[str, Any], ...]) -> None:
        ours = {venue_client_id(cid): cid for cid in self.book.tracked}
        try:
            for venue_order in orders:
                order_id = str(venue_order.get("id") or "")
                client_id = self.book.by_order_id.get(order_id) or ours.get(venue_order.get("clientOrderId") or "")
                if client_id is None:
                    if venue_order.get("status") == "open":
                        self._adopt([venue_order], set(ours))
                    continue
                tracked = self.book.tracked[client_id]
                if venue_order.get("status") in ("canceled", "expired", "rejected"):
                    if float(venue_order.get("filled") or 0.0) > tracked.filled + 1e-12:
                        self._executions_of(tracked.order.symbol)  # executions not taken in yet come first
                    update = self.book.state(client_id, venue_order)
                    if update is not None:
                        self._tell(update)
                elif not tracked.done:
                    self.book.placed(client_id, venue_order)
        except VenueError as exc:
            self.log.warning("{}: lookup for a streamed order update failed: {}", self.settings.id, exc)
            self._after_failure()
        self._heard(o.get("id") for o in orders)

    def _adopt_open(self) -> set[str]:
        """Adopt open orders placed outside; return the venue ids of every open order."""
        listed = self.session.open_orders()
        self._adopt(listed, {venue_client_id(cid) for cid in self.book.tracked})
        return {str(o.get("id")) for o in listed}

    def _adopt(self, venue_orders: Any, ours: set[str]) -> None:
        for venue_order in venue_orders:
            update = self.book.adopt(venue_order, ours)
            if update is not None:
                self._event("adopted", f"an order placed outside the system: {update.order.side} "
                            f"{update.order.qty:g} {update.order.symbol} ({update.order.client_id})")
                self._tell(update)

    def _fee_rate(self, currency: str, quote: str) -> float:
        """The price of one ``currency`` in ``quote`` on the venue (a fee charged in a third currency);
        NaN, with a warning, where the venue lists no such market or cannot say."""
        symbol = f"{currency}/{quote}"
        try:
            if symbol in self.session.exchange.markets:
                return self.session.last_price(symbol)
        except VenueError as exc:
            self.log.warning("a fee in {} cannot be valued: {}", currency, exc)
            return math.nan
        self.log.warning("a fee in {} cannot be valued: {} lists no {}", currency, self.settings.id, symbol)
        return math.nan

    def _trigger_stops(self) -> None:
        """Send each held stop as a market order once the last price crosses it. A trailing stop first
        follows the best last price seen here since it was placed (for a sell: the highest, less its
        ``trail``), polled every ``poll_s``."""
        for client_id, order in list(self.stops.items()):
            price = self.session.last_price(order.symbol)
            trail = trail_of(order)
            if trail == trail and price == price:
                best = self.trail_best.get(client_id)
                if best is None:  # from where the account placed it: its stop is trail away from the best
                    best = order.stop_price / (1.0 - trail if order.side == "sell" else 1.0 + trail)
                best = max(best, price) if order.side == "sell" else min(best, price)
                self.trail_best[client_id] = best
                order = self.stops[client_id] = order._replace(
                    stop_price=best * (1.0 - trail) if order.side == "sell" else best * (1.0 + trail))
            crossed = price >= order.stop_price if order.side == "buy" else price <= order.stop_price
            if crossed:
                self.trail_best.pop(client_id, None)
                del self.stops[client_id]
                self.log.info("stop {} triggered at {:g}: sent as a market order", client_id, price)
                self._place(order._replace(kind="market"))

    def _account(self, start: bool = False) -> None:
        """Send the executor the venue's balances, between two reads of the executions (a balance read
        while an execution came in is read again on the next reconcile)."""
        before = len(self.book.seen)
        balances = self.session.balances()
        self._executions(self.kept.since_ms if not start else int(time.time() * 1000) - 60_000, start)
        if len(self.book.seen) != before and not start:
            return
        prices = {s: self.session.last_price(s) for s in self.symbols
                  if abs(balances.get(self.book.markets[s]["base"], 0.0)) > 0}
        positions = tuple((s, balances.get(self.book.markets[s]["base"], 0.0), prices.get(s, math.nan))
                          for s in self.symbols)
        self._tell(VenueAccount(balances.get(self.quote, 0.0), positions, start))
        self.last_reconcile = time.monotonic()

    # -- failures, health, events -------------------------------------------------------------------------

    def _after_failure(self) -> None:
        if self.breaker.changed:
            self._breaker_changed()
        self._show()

    def _breaker_changed(self) -> None:
        self.breaker.changed = False
        if self.breaker.open:
            self.log.error("{}: circuit breaker open after {} failed requests ({}); no new orders until a "
                           "request succeeds", self.settings.id, self.breaker.failures, self.breaker.last_error)
            self._event("breaker_open", self.breaker.last_error)
        else:
            self.log.info("{}: circuit breaker closed: the venue answers again", self.settings.id)
            self._event("breaker_closed", "the venue answers again")
        self._show()

    def _show(self) -> None:
        self.ctx.show(VenueView(self.settings.id, self.breaker.open, self.breaker.failures, self.breaker.last_error,
                                len(self.book.open_orders()) if hasattr(self, "book") else 0, len(self.stops),
                                getattr(self, "via", "rest")))

    def _event(self, change: str, detail: str) -> None:
        publish(self.ctx, "health.venue", {"actor": self.name, "venue": self.settings.id, "change": change,
                                           "detail": detail})

    def _tell(self, message: Any) -> None:
        self.send("executor", message)

    def _query(self, what: str) -> Any:
        if what == "orders":
            return {cid: {"venue_client_id": venue_client_id(cid) if not t.outside else "", "venue_id": t.order_id,
                          "venue_status": t.venue_status, "filled": t.filled, "amount": t.amount,
                          "average": t.cost / t.filled if t.filled else None, "fee": t.fee}
                    for cid, t in self.book.tracked.items()} | {
                cid: {"venue_status": "held here (stop emulated)", "stop_price": o.stop_price}
                for cid, o in self.stops.items()}
        raise ValueError(f"unknown query {what!r}; valid: orders")
