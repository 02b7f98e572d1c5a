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

__all__ = ["Publisher", "run_simulator"]


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


def run_simulator(endpoint: str, symbols: tuple[str, ...], rate: float, speed: float, seed: int,
                  stop: threading.Event, count: int | None = None, start_ns: int | None = None,
                  prices: dict[str, float] | None = None) -> int:
    """Publish simulated ticks at ``rate`` per second until ``stop`` is set (or ``count`` sent).

    Tick timestamps run on a simulated clock that starts at ``start_ns`` (default: now, on a
    whole minute) and advances ``speed`` simulated seconds per wall-clock second, so a short
    demo still spans many one-minute bars. Prices start at ``prices`` where given. Returns how
    many ticks were sent.
    """
    simulator = MarketSimulator(symbols, seed, prices=prices)
    publisher = Publisher(endpoint)
    try:
        publisher.wait_for_subscriber()
        if start_ns is None:
            start_ns = time.time_ns() // 60_000_000_000 * 60_000_000_000
        step_ns = speed / rate * 1e9
        began = time.perf_counter()
        sent = 0
        while not stop.is_set() and (count is None or sent < count):
            due = int((time.perf_counter() - began) * rate) + 1
            if count is not None:
                due = min(due, count)
            while sent < due:
                publisher.send_tick(simulator.next_tick(start_ns + int(sent * step_ns)))
                sent += 1
            stop.wait(0.001)
        return sent
    finally:
        publisher.close()
