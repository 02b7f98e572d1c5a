"""A wire-protocol-v1 publisher: connects a PUB socket to an ingress and sends ticks.

Used by the built-in simulator (``live --feed sim`` and ``feed-sim``), the tests and the
benchmarks. It uses XPUB so it can wait until the ingress has subscribed: nothing is sent
into the void while the connection is still being made.
"""

from __future__ import annotations

import threading
import time

import zmq

from actors.feed.simulator import MarketSimulator
from messages.codec import encode_tick
from messages.market import Tick

__all__ = ["CompressedClock", "Publisher", "run_simulator"]


class Publisher:
    """A connected publisher; use from one thread."""

    def __init__(self, endpoint: str, sndhwm: int = 1_000_000) -> None:
        self.endpoint = endpoint
        self.socket = zmq.Context.instance().socket(zmq.XPUB)
        self.socket.setsockopt(zmq.LINGER, 2000)
        self.socket.setsockopt(zmq.SNDHWM, sndhwm)
        self.socket.connect(endpoint)
        self.sent = 0

    def wait_for_subscriber(self, timeout: float = 10.0) -> None:
        """Block until the ingress's subscription arrives; TimeoutError if it does not."""
        if not self.socket.poll(int(timeout * 1000), zmq.POLLIN):
            raise TimeoutError(f"no ingress subscribed at {self.endpoint} within {timeout:g}s")
        self.socket.recv()

    def send_frames(self, frames: list[bytes]) -> None:
        """Send one raw multipart message (any frames, valid or not)."""
        self.socket.send_multipart(frames)
        self.sent += 1

    def send_tick(self, tick: Tick) -> None:
        """Send one tick."""
        self.socket.send_multipart(encode_tick(tick))
        self.sent += 1

    def close(self) -> None:
        """Close, giving queued messages up to two seconds to leave."""
        self.socket.close()


class CompressedClock:
    """The simulated market's clock: ``origin_ns`` when made, then ``speed`` simulated seconds per
    wall-clock second. The built-in simulator stamps its ticks from it and the feed judges their
    times against it (``live --feed sim``), so a compressed market is never "in the future"."""

    def __init__(self, origin_ns: int, speed: float) -> None:
        self.origin_ns = origin_ns
        self.speed = speed
        self._began = time.perf_counter_ns()

    def now_ns(self) -> int:
        """Return the simulated time now."""
        return self.origin_ns + int((time.perf_counter_ns() - self._began) * self.speed)


MINUTE_NS = 60_000_000_000
BACKFILL_S = 86_400.0  # a standalone simulator starts this far back and catches up with the wall clock


def run_simulator(endpoint: str, symbols: tuple[str, ...], rate: float, speed: float, seed: int,
                  stop: threading.Event, count: int | None = None, start_ns: int | None = None,
                  prices: dict[str, float] | None = None, clock: CompressedClock | None = None) -> int:
    """Publish simulated ticks at ``rate`` per second until ``stop`` is set (or ``count`` sent).

    Tick timestamps advance ``speed`` simulated seconds per wall-clock second, so a short demo
    still spans many one-minute bars. With ``clock`` (the system's own simulator) they start at
    its origin and never run ahead of it. Without (a standalone publisher into a system judging
    ticks by the wall clock) they start at ``start_ns``, by default ``BACKFILL_S`` before now on a
    whole minute, and are never stamped later than the wall clock: once caught up, the market
    runs in real time. Prices start at ``prices`` where given. Returns how many ticks were sent.
    """
    simulator = MarketSimulator(symbols, seed, prices=prices)
    publisher = Publisher(endpoint)
    try:
        publisher.wait_for_subscriber()
        if clock is not None:
            start_ns, cap = clock.origin_ns, None
        else:
            if start_ns is None:
                start_ns = (time.time_ns() - int(BACKFILL_S * 1e9)) // MINUTE_NS * MINUTE_NS
            cap = time.time_ns
        step_ns = speed / rate * 1e9
        began = time.perf_counter()
        sent = 0
        while not stop.is_set() and (count is None or sent < count):
            due = int((time.perf_counter() - began) * rate) + 1
            if count is not None:
                due = min(due, count)
            now = cap() if cap is not None else None
            while sent < due:
                ts = start_ns + int(sent * step_ns)  # never ahead of ``clock``, which began before ``began``
                publisher.send_tick(simulator.next_tick(ts if now is None or ts <= now else now))
                sent += 1
            stop.wait(0.001)
        return sent
    finally:
        publisher.close()
