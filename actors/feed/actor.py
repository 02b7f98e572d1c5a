"""The live feed actor: the ZeroMQ ingress."""

from __future__ import annotations

import ctypes
import ctypes.util
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import zmq

from actors.control.security import CurveKeys
from actors.feed.flow import FlowControl
from actors.feed.ingress import Ingest, IngestResult, WatchList, ingress_limits
from actors.feed.publishers import PublisherGate
from actors.feed.stale import StaleWatch
from messages.codec import MAX_INGRESS_READ
from messages.pipeline import Drain, MarketBatch
from messages.system import Internal, Query, Watch, WatchListChanged
from supervisors.actor import SupervisedActor, publish
from supervisors.owned import FeedView

__all__ = ["FeedActor", "IngressSocket"]

NEXT = "buffer"
CLOCK_NS = 100_000_000  # live: the buffer hears the time at least this often, and stale symbols are checked
SLICE_NS = 50_000_000   # the longest the feed serves its sockets before it looks at its own mailbox again
PAUSE_S = 0.001         # while the pipeline is overloaded, how often the feed looks again


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim  # type: ignore[no-any-return]
    except (OSError, AttributeError):  # not glibc
        return None


_MALLOC_TRIM = _malloc_trim()


def release_free_memory() -> bool:
    """Hand the C heap's free pages back to the system (glibc's ``malloc_trim``); False where there
    is none. After a flood, the socket's queued messages were freed but glibc keeps their pages."""
    return bool(_MALLOC_TRIM is not None and _MALLOC_TRIM(0) >= 0)


class IngressSocket:
    """A bound SUB socket, owned by the system so it outlives feed restarts (the wire-protocol-v1
    ingress, and the cryptofeed endpoint when there is one).

    Created and used by whichever feed instance is alive (one thread at a time); closed by
    the system after the feed has stopped.
    """

    def __init__(self, endpoint: str, rcvhwm: int, curve: CurveKeys | None = None, max_publishers: int = 16) -> None:
        self.endpoint = endpoint
        self.rcvhwm = rcvhwm
        self.curve = curve
        self.max_publishers = max_publishers
        self._socket: zmq.Socket | None = None
        self._gate: PublisherGate | None = None

    def socket(self) -> zmq.Socket:
        """Return the socket, binding it on first use: in its own context, whose ZAP handler (the
        publisher gate, which also checks CURVE keys with ``curve``) clashes with no other socket's."""
        if self._socket is None:
            sock = zmq.Context().socket(zmq.SUB)
            sock.setsockopt(zmq.LINGER, 0)
            if self.curve is not None:
                sock.curve_secretkey = self.curve.secret
                sock.curve_publickey = self.curve.public
                sock.curve_server = True
            sock.setsockopt(zmq.RCVHWM, self.rcvhwm)
            sock.setsockopt(zmq.MAXMSGSIZE, MAX_INGRESS_READ)  # a peer sending a larger frame is cut off unread
            sock.setsockopt(zmq.SUBSCRIBE, b"")
            self._socket = sock
            self._gate = PublisherGate(sock.context, sock, self.max_publishers, self.endpoint,
                                       self.curve.clients_dir if self.curve is not None else None)
            try:
                sock.bind(self.endpoint)
            except zmq.ZMQError as exc:
                self.close()
                raise OSError(f"cannot bind ingress {self.endpoint}: {exc}") from exc
        return self._socket

    def publishers(self) -> tuple[int, int]:
        """The connections open now, and the publishers refused (over ``max_publishers``) since the last call."""
        if self._gate is None:
            return 0, 0
        return self._gate.connected(), self._gate.take_refused()

    def close(self) -> None:
        """Close the socket and stop its gate (after the feed has stopped)."""
        if self._socket is not None:
            context = self._socket.context
            self._socket.close(0)
            self._socket = None
            if self._gate is not None:
                self._gate.stop()
                self._gate = None
            context.term()


_NOBLOCK = int(zmq.NOBLOCK)


class _Poll(Internal):
    __slots__ = ()


_POLL = _Poll()


class RawBatch:
    """Messages drained from the socket, before validation (what a feed failure dead-letters)."""

    __slots__ = ("messages",)

    def __init__(self, messages: list[list[bytes]]) -> None:
        self.messages = messages

    def __repr__(self) -> str:
        return f"RawBatch({len(self.messages)} messages)"


@dataclass(frozen=True, slots=True, eq=False)
class FeedState:
    """What outlives the feed's incarnations: the watch list, sources and symbols taken (in ``ingest``),
    the stale watch and flow control."""

    ingest: Ingest
    stale: StaleWatch
    flow: FlowControl


class FeedActor(SupervisedActor):
    """Drains the ingress sockets into batches: one message when quiet, up to ``batch_max`` per
    socket under load. When nothing arrives it still sends an empty batch every ``CLOCK_NS`` so
    the buffer can close bars by the market clock, and it marks watched symbols with no data
    for ``feed.stale_s`` as stale (``health`` shows them)."""

    downstream = NEXT

    def setup(self) -> None:
        """Take the ingress sockets and start polling (actor thread)."""
        settings = self.ctx.settings
        deps = self.ctx.deps
        self.socket = deps.need("ingress").socket()
        self.poller = zmq.Poller()
        self.poller.register(self.socket, zmq.POLLIN)
        self.cryptofeed = deps.cryptofeed.socket() if deps.cryptofeed is not None else None
        self.ingresses = {"ingress": deps.need("ingress")}
        if deps.cryptofeed is not None:
            self.ingresses["cryptofeed"] = deps.cryptofeed
        if self.cryptofeed is not None:
            self.poller.register(self.cryptofeed, zmq.POLLIN)
        state = self.ctx.keep(FeedState, self._first_state)
        self.ingest, self.stale, self.flow = state.ingest, state.stale, state.flow
        self.watch: WatchList = self.ingest.watch
        self.shown = FeedView(tuple(sorted(self.stale.stale)), self.flow)
        self.ctx.show(self.shown)
        self._tell_watch_list()
        self.store = self.ctx.registry.address("store")
        self.batch_max = settings.ingress.batch_max
        self.poll_ms = settings.ingress.poll_ms
        self.seq = 0
        self.last_sent = self.last_check = time.monotonic_ns()
        self.actor_ref.tell(_POLL)

    def _first_state(self) -> FeedState:
        """The state of the first incarnation: the configured watch list, each symbol watched from now."""
        settings = self.ctx.settings
        watch = WatchList(settings.feed.symbols, settings.feed.max_symbols)
        clock = self.ctx.deps.feed_clock or self.ctx.clock  # the simulator's market runs on its own
        stale = StaleWatch(int(settings.feed.stale_s * 1e9))
        stale.watch(watch.symbols, self.ctx.clock.now_ns())
        return FeedState(Ingest(watch, clock.now_ns, ingress_limits(settings.ingress)), stale,
                         FlowControl(settings.ingress.max_in_flight, settings.ingress.max_store_backlog))

    def _tell_watch_list(self) -> None:
        """Tell the buffer the watch list (it fills quiet intervals with empty bars for watched symbols only)."""
        self.send(NEXT, WatchListChanged(self.watch.everything, tuple(sorted(self.watch.symbols))))

    def handle(self, message: Any) -> Any:
        """Poll the socket, change the watch list, or pass a marker on (actor thread)."""
        if message is _POLL:
            self._serve()
            self.actor_ref.tell(_POLL)
        elif isinstance(message, Watch):
            added, removed = self.ingest.change_watch(message.add, message.remove)
            self.stale.watch(added, self.ctx.clock.now_ns())
            self.stale.unwatch(removed)
            self._publish_stale([], [])
            self._tell_watch_list()
            self.log.info("watch list now {}", self.watch.listed())
            return self.watch.listed()
        elif isinstance(message, Drain):
            # take in what was already delivered to the sockets (for at most 2 s) before the marker,
            # as long as the pipeline keeps up: under overload the rest stays in the socket
            deadline = time.monotonic() + 2.0
            while self._admit() and self._drain(block=False) and time.monotonic() < deadline:
                pass
            self.send(NEXT, message)
        elif isinstance(message, Query):
            return {"watch": self.watch.listed(), "max_symbols": self.watch.limit,
                    "gaps_by_src": dict(self.ingest.gaps_by_src),
                    "stale": sorted(self.stale.stale)}
        else:
            raise TypeError(f"feed cannot handle {type(message).__name__}")
        return None

    def _serve(self) -> None:
        """Drain the sockets and keep the clock, batch after batch, until a message waits for the
        feed (a stop, a watch change, a heartbeat) or ``SLICE_NS`` has passed."""
        inbox = self.actor_inbox
        until = time.monotonic_ns() + SLICE_NS
        while not self.ctx.retired:
            if self._admit():
                self._drain()
            else:
                # flow control: leave the ticks in the socket until the pipeline has caught up
                time.sleep(PAUSE_S)
            self._tick_clock()
            if not inbox.empty() or time.monotonic_ns() >= until:  # type: ignore[attr-defined]
                return

    def _admit(self) -> bool:
        """Whether the pipeline can take more: ticks in flight and the store's backlog under their
        bounds (see FlowControl). The start of an overload episode is logged and published."""
        accepted, processed, dead = self.ctx.counters.values("ticks_accepted", "ticks_processed", "ticks_dead_lettered")
        in_flight = accepted - processed - dead
        flow = self.flow
        episodes = flow.episodes
        admitted = flow.admit(in_flight, self.store.mailbox(), time.monotonic_ns())
        if flow.episodes != episodes:
            self.log.warning("pipeline overloaded: {:,} ticks in flight (bound {:,}), {} writes waiting for the "
                             "store (bound {}); the ingress is not read until it catches up", in_flight,
                             flow.max_in_flight, flow.store_backlog, flow.max_store_backlog)
            self._publish_overload()
        return admitted

    def _read(self, full: bool) -> None:
        """Tell flow control whether the socket had more than a batch waiting; log when the feed
        itself falls behind (its reads all full for a while)."""
        flow = self.flow
        episodes, behind = flow.episodes, flow.behind
        flow.read(full, time.monotonic_ns())
        if flow.behind and not behind:
            self.log.warning("the ingress is behind: every read for {:g}s took a full batch of {:,}; past "
                             "ingress.rcvhwm messages ZeroMQ drops (counted as seq gaps)", flow.behind_ns / 1e9,
                             self.batch_max)
        if flow.episodes != episodes:
            self._publish_overload()

    def _receive(self, sock: zmq.Socket) -> list[list[bytes]]:
        """Take up to ``batch_max`` waiting messages, each as its list of frames.

        Frames are received uncopied, which gives each one's more-flag with the frame: two calls
        per two-frame message instead of ``recv_multipart``'s four.
        """
        raw = []
        recv = sock.recv
        for _ in range(self.batch_max):
            try:
                frame = recv(_NOBLOCK, copy=False)
            except zmq.Again:
                break
            frames = [frame.bytes]
            while frame.more:
                frame = recv(_NOBLOCK, copy=False)
                frames.append(frame.bytes)
            raw.append(frames)
        return raw

    def _drain(self, block: bool = True) -> int:
        """Receive up to ``batch_max`` messages per socket and pass them on; return how many were read."""
        if self.ctx.retired:
            return 0
        timeout = self.poll_ms if block and self.actor_inbox.empty() else 0  # type: ignore[attr-defined]
        ready = dict(self.poller.poll(timeout))
        if not ready:
            self.flow.read(False, 0)  # the socket is empty: the feed keeps up
            return 0
        recv_ns = time.perf_counter_ns()
        v1 = self._receive(self.socket) if self.socket in ready else []
        cf = self._receive(self.cryptofeed) if self.cryptofeed is not None and self.cryptofeed in ready else []
        self._read(len(v1) == self.batch_max or len(cf) == self.batch_max)
        self._current = RawBatch(v1 + cf)
        try:
            results = [self.ingest.accept(v1), self.ingest.accept(cf, wire="cryptofeed")]
        except Exception:
            # Account for what was received before letting the failure restart the feed.
            count = len(v1) + len(cf)
            self.ctx.counters.add(ticks_received=count, ticks_rejected=count, reasons={"internal_error": count})
            raise
        self._current = None
        ticks, bars = [], []
        for result in results:
            self._count(result)
            ticks += result.ticks
            bars += result.bars
        self.ctx.stats.processed += len(v1) + len(cf)
        if ticks or bars:
            recovered = self.stale.seen({t.symbol for t in ticks} | {b.symbol for b in bars}, self.ctx.clock.now_ns())
            if recovered:
                self._publish_stale([], recovered)
            self.seq += 1
            self.send(NEXT, MarketBatch(self.seq, recv_ns, tuple(ticks), tuple(bars)))
            self.ctx.stats.latency.add(time.perf_counter_ns() - recv_ns)
            self.last_sent = time.monotonic_ns()
        return len(v1) + len(cf)

    def _count(self, result: IngestResult) -> None:
        self.ctx.counters.add(reasons=result.rejected_by_reason, **result.counter_deltas())
        if result.last_rejection is not None:
            self.log.debug("rejected {} messages; last: {}", sum(result.rejected_by_reason.values()),
                           result.last_rejection)

    def _tick_clock(self) -> None:
        """Send the buffer an empty batch when it heard nothing for a while; check for stale symbols."""
        now = time.monotonic_ns()
        if now - self.last_sent >= CLOCK_NS and not self.ctx.retired:
            self.send(NEXT, MarketBatch(self.seq, 0))  # no market data: not timed
            self.last_sent = now
        if now - self.last_check >= CLOCK_NS:
            self.last_check = now
            if self.flow.settle(now):
                released = release_free_memory()
                self.log.info("pipeline keeps up again: reading the ingress{}", " (free memory returned to the "
                              "system)" if released else "")
                self._publish_overload()
            newly = self.stale.check(self.ctx.clock.now_ns())
            if newly:
                self.ctx.counters.add(stale_episodes=len(newly))
                self.log.warning("no data for {:g}s from {}: stale", self.ctx.settings.feed.stale_s, ", ".join(newly))
                self._publish_stale(newly, [])
            self._check_publishers()

    def _check_publishers(self) -> None:
        """Count the publishers the ingress sockets refused, and show how many are connected."""
        connected = []
        for name, ingress in self.ingresses.items():
            count, refused = ingress.publishers()
            connected.append((name, count))
            if refused:
                self.ctx.counters.add(publishers_refused=refused)
        if tuple(connected) != self.shown.publishers:
            self.shown = replace(self.shown, publishers=tuple(connected))
            self.ctx.show(self.shown)

    def _publish_overload(self) -> None:
        """Say on the events socket that an overload episode began or ended."""
        publish(self.ctx, "health.feed", {"actor": "feed", "change": "overload",
                                          **self.flow.view(time.monotonic_ns())})

    def _publish_stale(self, newly: list[str], recovered: list[str]) -> None:
        """Show the stale symbols in health, and say what changed on the events socket."""
        stale = tuple(sorted(self.stale.stale))
        if stale == self.shown.stale:
            return
        self.shown = replace(self.shown, stale=stale)
        self.ctx.show(self.shown)
        if recovered:
            self.log.info("data again from {}", ", ".join(recovered))
        publish(self.ctx, "health.feed", {"actor": "feed", "change": "stale", "stale": list(stale),
                                          "became_stale": newly, "recovered": recovered})
