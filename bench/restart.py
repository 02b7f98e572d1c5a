"""Crash-to-serving time: how long from a crash until a fresh incarnation, with its state
recovered from the checkpoint, answers again. Prints p50/p99 per actor.

    python -m bench.restart [--rounds 200]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pykka

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from actors.feed.actor import IngressSocket  # noqa: E402
from actors.feed.publisher import Publisher  # noqa: E402
from bench.machine import describe  # noqa: E402
from messages.market import Tick  # noqa: E402
from messages.pipeline import MarketBatch, Persist  # noqa: E402
from messages.system import Crash, Heartbeat, Publish, Watch  # noqa: E402
from settings import load_settings  # noqa: E402
from supervisors.deps import Deps  # noqa: E402
from supervisors.logs import setup_logging  # noqa: E402
from supervisors.system import System  # noqa: E402
from tests.conftest import free_endpoint  # noqa: E402

ACTORS = ("feed", "buffer", "feature", "model", "strategy", "executor", "store", "control")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200, help="crashes per actor")
    args = parser.parse_args()
    setup_logging("CRITICAL")
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(env={}, overrides={
            "ingress.endpoint": free_endpoint(), "control.endpoint": free_endpoint(),
            "control.events": free_endpoint(), "store.db": str(Path(tmp) / "bench.db"), "feed.source": "external",
            "supervisor.max_restarts": 1_000_000,
        })
        system = System(settings, "live",
                        Deps.of(settings, "live", ingress=IngressSocket(settings.ingress.endpoint, 1_000_000)))
        system.start()
        try:
            warm(system, settings.ingress.endpoint)
            print(describe())
            print(f"crash-to-serving over {args.rounds} crashes per actor (state: 3 symbols, "
                  f"{system.counters.get('bars'):,} bars seen, checkpoints restored):")
            print(f"  {'actor':<10}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
            for name in ACTORS:
                times = np.array([crash_to_serving(system, name) for _ in range(args.rounds)]) * 1e3
                print(f"  {name:<10}{np.percentile(times, 50):>9.3f}{np.percentile(times, 99):>9.3f}{times.max():>9.3f}")
        finally:
            system.stop()


def warm(system: System, endpoint: str) -> None:
    """Push enough ticks that every stateful actor has real state (bars, indicators, model, positions)."""
    publisher = Publisher(endpoint)
    publisher.wait_for_subscriber()
    t0, n = 1_717_200_000_000_000_000, 60_000
    for i in range(n):
        k = i // 3
        price = 100.0 * (1 + 0.03 * np.sin(k / 150))
        publisher.send_tick(Tick(("BTCUSD", "ETHUSD", "SOLUSD")[i % 3], t0 + k * 6_000_000_000, price - 0.01,
                                 price + 0.01, price, 1.0))
    publisher.close()
    deadline = time.monotonic() + 60
    while system.counters.get("ticks_received") < n and time.monotonic() < deadline:
        time.sleep(0.05)
    system.drain(timeout=60)


def benign(name: str) -> object:
    """A real message each actor handles without effect (so it shows progress between crashes;
    without it, back-to-back crashes are a crash loop and the restart backoff applies)."""
    if name == "store":
        return Persist()
    if name == "control":
        return Publish("bench.noop", {})
    if name == "feed":
        return Watch()
    return MarketBatch(0, time.perf_counter_ns())


def crash_to_serving(system: System, name: str) -> float:
    """Seconds from telling ``name`` to crash until its next incarnation answers a heartbeat."""
    stats = system.stats[name]
    address = system.registry.address(name)
    while True:  # a rest_for_one sibling may still be restarting from the previous round
        try:
            address.ask(benign(name), timeout=5.0)
            break
        except pykka.ActorDeadError:
            time.sleep(0.001)
    before = stats.restarts
    start = time.perf_counter()
    address.tell(Crash("bench"))
    while True:
        time.sleep(0.0001)  # poll gently: a busy loop would hold the GIL the restart needs
        if stats.restarts > before:
            try:
                address.ask(Heartbeat(), timeout=1.0)
                return time.perf_counter() - start
            except (pykka.ActorDeadError, pykka.Timeout):
                pass


if __name__ == "__main__":
    main()
