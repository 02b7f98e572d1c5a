"""Flood: millions of ticks into `python run.py live --feed external` from a separate publisher
process, as fast as it can send them, to show that memory stays bounded under overload and that
the system recovers by itself.

    python -m bench.flood [--ticks 2000000] [--spacing 60] [--runs 1] [--sndhwm 1000]

The publisher encodes every tick first (3 symbols, numbered with ``src``/``seq``), then sends
them back to back. ``--spacing`` is the market time between two ticks of one symbol, in seconds:
60 makes every tick close a one-minute bar (the worst case for the store: a bar and its derived
timeframes written per tick); 0.02 is the throughput bench's spacing. With ``--sndhwm`` (the
publisher's send high-water mark, ZeroMQ's default 1000) the publisher drops what the system does
not take, as a real PUB socket does; the system counts that loss through ``seq`` gaps.

Prints, per run: ticks sent, received, accepted, processed, dead-lettered, seq gaps; the peak
RSS of the system while flooded and its RSS after; whether health showed the overload while it
lasted; and whether it recovered: health healthy again and fresh ticks processed afterwards.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from actors.control.client import request  # noqa: E402
from bench.live_memory import rss_mib  # noqa: E402
from bench.live_throughput import start_system, stop  # noqa: E402
from bench.machine import describe  # noqa: E402

SYMBOLS = ("BTCUSD", "ETHUSD", "SOLUSD")


def flood_messages(count: int, spacing_s: float, src: str, end_ns: int) -> Iterator[list[bytes]]:
    """``count`` ticks over 3 symbols, each symbol's ticks ``spacing_s`` of market time apart, the
    last ones at ``end_ns``, numbered from 1 under ``src``."""
    from messages.codec import encode_tick
    from messages.market import Tick

    step = int(spacing_s * 1e9)
    t0 = end_ns - (count - 1) // len(SYMBOLS) * step
    for i in range(count):
        price = 100.0 + (i % 500) * 0.01
        yield encode_tick(Tick(SYMBOLS[i % 3], t0 + (i // 3) * step, price - 0.01, price + 0.01, price, 1.0,
                               src, 1 + i))


def publish(endpoint: str, count: int, spacing_s: float, sndhwm: int, src: str, end_ns: int,
            rate: float = 0.0) -> None:
    """Connect a PUB (XPUB, to wait for the subscription) and send ``count`` ticks, flat out or at ``rate``."""
    import zmq

    frames = list(flood_messages(count, spacing_s, src, end_ns))
    sock = zmq.Context.instance().socket(zmq.XPUB)
    sock.setsockopt(zmq.SNDHWM, sndhwm)
    sock.setsockopt(zmq.LINGER, 10_000)
    sock.connect(endpoint)
    if not sock.poll(10_000):
        raise SystemExit("no subscriber")
    sock.recv()
    send, more, noblock = sock.send, int(zmq.SNDMORE), int(zmq.NOBLOCK)
    began = time.perf_counter()
    for i, (topic, payload) in enumerate(frames):
        try:
            send(topic, more | noblock)
            send(payload, noblock)
        except zmq.Again:  # a PUB never blocks; kept for an XPUB at its high-water mark: that tick is lost
            pass
        if rate and i % 100 == 99:
            ahead = (i + 1) / rate - (time.perf_counter() - began)
            if ahead > 0:
                time.sleep(ahead)
    sock.close()


def metrics(control: str) -> dict[str, int]:
    return request(control, {"cmd": "metrics"}, 10.0)["counters"]


def settled(c: dict[str, int]) -> bool:
    """Every accepted tick processed or dead-lettered."""
    return c["ticks_accepted"] == c["ticks_processed"] + c["ticks_dead_lettered"]


def run_once(ticks: int, spacing_s: float, sndhwm: int, db: Path, env: dict[str, str]) -> dict:
    """One flood against a fresh system (``env``: settings as ``TRADING_...`` variables); return its figures."""
    process, ingress, control = start_system(db, env)
    spawn = multiprocessing.get_context("spawn")
    now, step = time.time_ns(), int(spacing_s * 1e9)
    after_ticks = 3000  # sent once it has recovered, continuing each symbol's series up to now
    publisher = spawn.Process(target=publish, args=(ingress, ticks, spacing_s, sndhwm, "flood",
                                                    now - (after_ticks // len(SYMBOLS)) * step))
    publisher.start()
    peak = rss_mib(process.pid)
    overload_seen = False
    began = time.monotonic()
    quiet_since, received = time.monotonic(), -1
    while True:
        c = metrics(control)
        health = request(control, {"cmd": "health"}, 10.0)
        overload = health.get("overload", {})
        overload_seen |= overload.get("overloaded", False) and health["status"] == "degraded"
        if c["ticks_received"] != received or not settled(c) or overload.get("paused") or publisher.is_alive():
            quiet_since, received = time.monotonic(), c["ticks_received"]
        elif time.monotonic() - quiet_since > 1.0:  # all taken in: nothing new for a second, reading
            break
        peak = max(peak, rss_mib(process.pid))
        if time.monotonic() - began > 900:
            raise SystemExit("the flood did not settle within 15 minutes")
        time.sleep(0.05)
    publisher.join()
    flood_seconds = time.monotonic() - began
    during = metrics(control)
    deadline = time.monotonic() + 30
    while (health := request(control, {"cmd": "health"}, 10.0))["status"] != "healthy" and time.monotonic() < deadline:
        time.sleep(0.1)
    healthy_again = health["status"] == "healthy"
    after = spawn.Process(target=publish, args=(ingress, after_ticks, spacing_s, sndhwm, "after", now, 3000.0))
    after.start()
    after.join()
    deadline = time.monotonic() + 30
    while ((c := metrics(control))["ticks_processed"] < during["ticks_processed"] + after_ticks
           and time.monotonic() < deadline):
        time.sleep(0.05)
    flowing = c["ticks_processed"] - during["ticks_processed"] == after_ticks and c["seq_gaps"] == during["seq_gaps"]
    why = "" if healthy_again and flowing else (
        f" (health {health['status']}, overload {health['overload']}, stale {health['stale']}; after the flood "
        f"{c['ticks_processed'] - during['ticks_processed']:,} of {after_ticks:,} ticks processed, "
        f"{c['seq_gaps'] - during['seq_gaps']:,} new seq gaps)")
    rss_after = rss_mib(process.pid)
    stop(process, control)
    return {"sent": ticks, "received": during["ticks_received"], "accepted": during["ticks_accepted"],
            "rejected": during["ticks_rejected"], "processed": during["ticks_processed"],
            "dead_lettered": during["ticks_dead_lettered"], "seq_gaps": during["seq_gaps"], "bars": during["bars"],
            "seconds": flood_seconds, "peak_rss": peak, "rss_after": rss_after, "overload_seen": overload_seen,
            "recovered": healthy_again and flowing, "why": why}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=2_000_000)
    parser.add_argument("--spacing", type=float, default=60.0, help="market seconds between a symbol's ticks "
                        "(60: every tick closes a one-minute bar)")
    parser.add_argument("--sndhwm", type=int, default=1000, help="the publisher's send high-water mark")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="a setting of the system, e.g. ingress.rcvhwm=100000 (repeatable)")
    args = parser.parse_args()
    env = {}
    for item in args.set:
        key, _, value = item.partition("=")
        env["TRADING_" + key.replace(".", "_").upper()] = value
    print(describe())
    results = []
    for run in range(1, args.runs + 1):
        with tempfile.TemporaryDirectory() as tmp:
            r = run_once(args.ticks, args.spacing, args.sndhwm, Path(tmp) / "flood.db", env)
        results.append(r)
        print(f"run {run}: sent {r['sent']:,}, received {r['received']:,}, accepted {r['accepted']:,}, "
              f"processed {r['processed']:,}, dead-lettered {r['dead_lettered']:,}, seq gaps {r['seq_gaps']:,} "
              f"(sent - received {r['sent'] - r['received']:,}), {r['bars']:,} bars, {r['seconds']:.1f}s; "
              f"peak RSS {r['peak_rss']:.1f} MiB, after {r['rss_after']:.1f} MiB; overload shown in health: "
              f"{'yes' if r['overload_seen'] else 'no'}; recovered: {'yes' if r['recovered'] else 'NO'}{r['why']}",
              flush=True)
    if args.runs > 1:
        def med(key: str) -> float:
            return statistics.median(r[key] for r in results)
        print(f"median of {args.runs}: received {med('received'):,.0f} of {args.ticks:,}, processed "
              f"{med('processed'):,.0f}, seq gaps {med('seq_gaps'):,.0f}, {med('seconds'):.1f}s, peak RSS "
              f"{med('peak_rss'):.1f} MiB (max {max(r['peak_rss'] for r in results):.1f}), after "
              f"{med('rss_after'):.1f} MiB; recovered in {sum(r['recovered'] for r in results)} of {args.runs}")


if __name__ == "__main__":
    main()
