"""Feed actors: the live ZeroMQ ingress, and the backtest replay."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pandas as pd
import zmq

from actors.feed.ingress import Ingest
from actors.feed.replay import replay_chunks
from messages.pipeline import Drain, MarketBatch
from messages.system import Crash, Internal, Query, Watch
from supervisors.actor import SupervisedActor
from supervisors.clock import SimClock

__all__ = ["FeedActor", "IngressSocket", "ReplayActor", "StartReplay"]

NEXT = "buffer"


class IngressSocket:
    """The bound SUB socket, owned by the system so it outlives feed restarts.

    Created and used by whichever feed instance is alive (one thread at a time); closed by
    the system after the feed has stopped.
    """

    def __init__(self, endpoint: str, rcvhwm: int) -> None:
        self.endpoint = endpoint
        self.rcvhwm = rcvhwm
        self._socket: zmq.Socket | None = None

    def socket(self) -> zmq.Socket:
        """Return the socket, binding it on first use."""
        if self._socket is None:
            sock = zmq.Context.instance().socket(zmq.SUB)
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.RCVHWM, self.rcvhwm)
            sock.setsockopt(zmq.MAXMSGSIZE, 1 << 20)  # a peer sending over 1 MiB is cut off (memory bound)
            sock.setsockopt(zmq.SUBSCRIBE, b"")
            try:
                sock.bind(self.endpoint)
            except zmq.ZMQError as exc:
                sock.close(0)
                raise OSError(f"cannot bind ingress {self.endpoint}: {exc}") from exc
            self._socket = sock
        return self._socket

    def close(self) -> None:
        """Close the socket (after the feed has stopped)."""
        if self._socket is not None:
            self._socket.close(0)
            self._socket = None


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


class FeedActor(SupervisedActor):
    """Drains the ingress socket into batches: one message when quiet, up to ``batch_max`` under load."""

    downstream = NEXT

    def setup(self) -> None:
        """Take the ingress socket and start polling (actor thread)."""
        settings = self.ctx.settings
        self.socket = self.ctx.resources["ingress"].socket()
        self.watch: set[str] = self.ctx.resources.setdefault("watch", set(settings.feed.symbols))
        self.ingest: Ingest = self.ctx.resources.setdefault("ingest", Ingest())
        self.ingest.watch = self.watch
        self.batch_max = settings.ingress.batch_max
        self.poll_ms = settings.ingress.poll_ms
        self.seq = 0
        self.actor_ref.tell(_POLL)

    def handle(self, message: Any) -> Any:
        """Poll the socket, change the watch list, or pass a marker on (actor thread)."""
        if message is _POLL:
            self._drain()
            self.actor_ref.tell(_POLL)
        elif isinstance(message, Watch):
            self.watch.update(message.add)
            self.watch.difference_update(message.remove)
            self.log.info("watch list now {}", sorted(self.watch))
            return sorted(self.watch)
        elif isinstance(message, Drain):
            # take in everything already delivered to the socket (for at most 2 s) before the marker
            deadline = time.monotonic() + 2.0
            while self._drain(block=False) and time.monotonic() < deadline:
                pass
            self.send(NEXT, message)
        elif isinstance(message, Query):
            return {"watch": sorted(self.watch), "gaps_by_src": dict(self.ingest.gaps_by_src)}
        else:
            raise TypeError(f"feed cannot handle {type(message).__name__}")
        return None

    def _drain(self, block: bool = True) -> int:
        """Receive up to ``batch_max`` messages and pass them on; return how many were read."""
        if self.ctx.retired:
            return 0
        sock = self.socket
        timeout = self.poll_ms if block and self.actor_inbox.empty() else 0  # type: ignore[attr-defined]
        if not sock.poll(timeout, zmq.POLLIN):
            return 0
        recv_ns = time.perf_counter_ns()
        raw = []
        for _ in range(self.batch_max):
            try:
                raw.append(sock.recv_multipart(zmq.NOBLOCK))
            except zmq.Again:
                break
        self._current = RawBatch(raw)
        try:
            result = self.ingest.accept(raw)
        except Exception:
            # Account for what was received before letting the failure restart the feed.
            self.ctx.counters.add(ticks_received=len(raw), ticks_rejected=len(raw), reasons={"internal_error": len(raw)})
            raise
        self._current = None
        self.ctx.counters.add(reasons=result.rejected_by_reason, **result.counter_deltas())
        self.ctx.stats.processed += len(raw)
        if result.last_rejection is not None:
            self.log.debug("rejected {} of {} messages; last: {}", sum(result.rejected_by_reason.values()),
                           len(raw), result.last_rejection)
        if result.ticks or result.bars:
            self.seq += 1
            self.send(NEXT, MarketBatch(self.seq, recv_ns, tuple(result.ticks), tuple(result.bars)))
        return len(raw)


@dataclass(frozen=True, slots=True)
class StartReplay:
    """Tell the replay actor to send the whole data set down the pipeline.

    ``faults`` is fault injection for chaos runs: ``(bars, actor)`` pairs; once ``bars`` bars
    have been sent, the replay tells ``actor`` to crash, so the crash lands mid-stream.
    """

    faults: tuple[tuple[int, str], ...] = ()


class ReplayActor(SupervisedActor):
    """Backtest feed: replays bars in time order, in batches, moving the simulated clock."""

    downstream = NEXT

    def setup(self) -> None:
        """Nothing to open; the data is given by the runner (actor thread)."""
        self.bars: pd.DataFrame = self.ctx.resources["replay"]
        self.chunk = self.ctx.settings.backtest.chunk

    def handle(self, message: Any) -> Any:
        """Replay everything, or pass a marker on (actor thread)."""
        if isinstance(message, StartReplay):
            clock = self.ctx.clock
            faults = sorted(message.faults)
            sent = 0
            for seq, frames in enumerate(replay_chunks(self.bars, self.chunk), start=1):
                if isinstance(clock, SimClock):
                    clock.advance_to(max(int(f.ts[-1]) for f in frames))
                self.send(NEXT, MarketBatch(seq, time.perf_counter_ns(), frames=frames))
                count = sum(len(f) for f in frames)
                sent += count
                self.ctx.counters.add(bars=count)
                while faults and faults[0][0] <= sent:
                    _, victim = faults.pop(0)
                    self.send(NEXT, Crash(f"injected after {sent} replayed bars", target=victim))
        elif isinstance(message, Drain):
            self.send(NEXT, message)
        else:
            raise TypeError(f"replay cannot handle {type(message).__name__}")
