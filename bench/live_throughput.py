"""Live throughput and latency, end to end: `python run.py live --feed external` in one process, a
publisher in another, over real ZeroMQ on loopback.

    python -m bench.live_throughput [--ticks 1000000] [--rate 10000] [--seconds 10] [--burst 100] [--runs 1]

1. Throughput: the publisher sends ``--ticks`` ticks (3 symbols, one tick per message, all encoded
   before the first is sent, as fast as it can, into an ingress queue deep enough for all of them)
   and the figure is ticks/s through the whole pipeline (feed to executor), from the first to the
   last tick processed; it also says whether anything was lost (sent == received == accepted ==
   processed), and how many `seq` gaps the ingress saw.
2. Latency: a fresh system, the publisher paced at ``--rate`` ticks/s for ``--seconds``, sending
   ``--burst`` ticks back to back between pauses; the figure is the system's own measurement from
   ingress receive to the executor's decision (`ctl metrics` latency p50/p99/max over the last
   10,000 batches), and to the end of each stage before it (`latency_by_stage`).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from actors.control.client import request  # noqa: E402
from bench.machine import describe  # noqa: E402
from tests.conftest import free_endpoint  # noqa: E402

SYMBOLS = ("BTCUSD", "ETHUSD", "SOLUSD")


def messages(count: int) -> Iterator[list[bytes]]:
    """``count`` distinct ticks (3 symbols, 20 ms apart), encoded."""
    from messages.codec import encode_tick
    from messages.market import Tick

    t0 = 1_717_200_000_000_000_000
    for i in range(count):
        price = 100.0 + (i % 500) * 0.01
        yield encode_tick(Tick(SYMBOLS[i % 3], t0 + i * 20_000_000, price - 0.01, price + 0.01, price, 1.0))


def publish(endpoint: str, count: int, rate: float | None, burst: int = 100) -> None:
    """Send ``count`` ticks flat out, all encoded before the first is sent (so the publisher is not
    what is measured), or at ``rate`` per second, ``burst`` at a time, encoded as they go."""
    import zmq

    frames: Iterable[list[bytes]] = messages(count) if rate else list(messages(count))
    sock = zmq.Context.instance().socket(zmq.XPUB)
    sock.setsockopt(zmq.SNDHWM, 0)
    sock.setsockopt(zmq.LINGER, 10_000)
    sock.connect(endpoint)
    if not sock.poll(10_000):
        raise SystemExit("no subscriber")
    sock.recv()
    send, more = sock.send, int(zmq.SNDMORE)  # two plain sends: about twice as fast as send_multipart
    began = time.perf_counter()
    for i, (topic, payload) in enumerate(frames):
        send(topic, more)
        send(payload)
        if rate and i % burst == burst - 1:
            ahead = (i + 1) / rate - (time.perf_counter() - began)
            if ahead > 0:
                time.sleep(ahead)
    sock.close()


def start_system(db: Path, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str, str]:
    """Start ``run.py live --feed external`` (with ``env`` added to the environment, e.g. settings
    as ``TRADING_...`` variables); return the process, its ingress and its control endpoint."""
    ingress, control = free_endpoint(), free_endpoint()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "run.py"), "live", "--feed", "external", "--db", str(db), "--ingress", ingress,
         "--control", control, "--events", free_endpoint(), "--log-level", "WARNING"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT, env={**os.environ, **(env or {})})
    deadline = time.monotonic() + 30
    while True:
        try:
            if request(control, {"cmd": "ping"}, 0.5).get("ok"):
                return process, ingress, control
        except TimeoutError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit("the system did not start") from None


def counters(control: str) -> dict:
    return request(control, {"cmd": "metrics"}, 10.0)["counters"]


def stop(process: subprocess.Popen, control: str) -> None:
    request(control, {"cmd": "shutdown"}, 10.0)
    process.wait(timeout=60)


def throughput(ticks: int, db: Path) -> None:
    # The publisher sends its pre-encoded ticks about three times faster than the pipeline takes
    # them: a queue deep enough for the whole burst (ingress.rcvhwm, default 250,000) keeps them all
    process, ingress, control = start_system(db, {"TRADING_INGRESS_RCVHWM": str(max(ticks, 250_000))})
    publisher = multiprocessing.get_context("spawn").Process(target=publish, args=(ingress, ticks, None))
    publisher.start()
    first = last = None
    seen = 0
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        c = counters(control)
        now = time.perf_counter()
        if c["ticks_processed"] and first is None:
            first = (now, c["ticks_processed"])
        if c["ticks_processed"] > seen:
            seen, last = c["ticks_processed"], (now, c["ticks_processed"])
        if c["ticks_processed"] >= ticks or (not publisher.is_alive() and last and now - last[0] > 5):
            break
        time.sleep(0.05)
    publisher.join()
    c = counters(control)
    stop(process, control)
    rate = (last[1] - first[1]) / (last[0] - first[0]) if first and last and last[0] > first[0] else 0.0
    lost = ticks - c["ticks_processed"]
    print(f"throughput: {ticks:,} ticks sent, {c['ticks_received']:,} received, {c['ticks_accepted']:,} accepted, "
          f"{c['ticks_processed']:,} processed, {c['seq_gaps']} seq gaps -> {'nothing lost' if lost == 0 else f'{lost:,} LOST'}")
    print(f"  sustained {rate:,.0f} ticks/s through the pipeline (first to last processed), {c['bars']:,} bars, "
          f"{c['orders']:,} orders")


def latency(rate: float, seconds: float, burst: int, db: Path) -> None:
    process, ingress, control = start_system(db)
    count = int(rate * seconds)
    publisher = multiprocessing.get_context("spawn").Process(target=publish, args=(ingress, count, rate, burst))
    publisher.start()
    publisher.join()
    deadline = time.monotonic() + 60
    while counters(control)["ticks_processed"] < count and time.monotonic() < deadline:
        time.sleep(0.05)
    metrics = request(control, {"cmd": "metrics"}, 10.0)
    stop(process, control)
    lat = metrics["latency"]
    print(f"latency at {rate:,.0f} ticks/s ({burst} at a time) for {seconds:g}s ({metrics['counters']['ticks_processed']:,} ticks, "
          f"{lat.get('samples', 0):,} batches): ingress receive -> executor decision "
          f"p50 {lat.get('p50_us', float('nan')):,.0f} us, p99 {lat.get('p99_us', float('nan')):,.0f} us, "
          f"max {lat.get('max_us', float('nan')):,.0f} us")
    print("  ingress receive -> each stage done with the batch (p50 / p99 us): " + ", ".join(
        f"{name} {stage['p50_us']:,.0f} / {stage['p99_us']:,.0f}" for name, stage in metrics["latency_by_stage"].items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=1_000_000)
    parser.add_argument("--rate", type=float, default=10_000.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--burst", type=int, default=100, help="latency run: ticks sent back to back between pauses")
    parser.add_argument("--runs", type=int, default=1, help="repeat both measurements this many times")
    args = parser.parse_args()
    print(describe())
    for run in range(1, args.runs + 1):
        if args.runs > 1:
            print(f"run {run} of {args.runs}")
        with tempfile.TemporaryDirectory() as tmp:
            throughput(args.ticks, Path(tmp) / "throughput.db")
            latency(args.rate, args.seconds, args.burst, Path(tmp) / "latency.db")


if __name__ == "__main__":
    main()
