"""Memory over a long live run: `python run.py live --feed external` fed at a steady rate by a
separate publisher process; samples the system's resident set size (RSS) as it runs.

    python -m bench.live_memory [--rate 20000] [--minutes 10] [--warmup 1] [--every 10]

Prints RSS at each sample, the growth from the end of warm-up to the end, in MiB and MiB per
minute, and the growth in each 5-minute stretch; flat means bounded windows and no leak.

Warm-up is what it takes the bounded parts to fill, and the bench's ticks are 20 ms of market
time apart: at 20,000 ticks/s the market clock runs 400 times faster than the wall clock, so the
15-minute bars' 500-bar window fills after about 19 minutes, and sqlite's page cache (2 MiB a
connection) after about 14. ``--minutes 30 --warmup 20`` measures past both.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from actors.control.client import request  # noqa: E402
from bench.live_throughput import publish, start_system, stop  # noqa: E402
from bench.machine import describe  # noqa: E402


def rss_mib(pid: int) -> float:
    """Resident set size of ``pid`` in MiB (Linux /proc)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=20_000.0, help="ticks per second")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=1.0, help="minutes before growth is counted")
    parser.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    args = parser.parse_args()
    if not 0 <= args.warmup < args.minutes:
        parser.error("--warmup must be at least 0 and shorter than --minutes")
    print(describe())
    with tempfile.TemporaryDirectory() as tmp:
        process, ingress, control = start_system(Path(tmp) / "memory.db")
        count = int(args.rate * args.minutes * 60)
        publisher = multiprocessing.get_context("spawn").Process(target=publish, args=(ingress, count, args.rate))
        publisher.start()
        began = time.monotonic()
        samples: list[tuple[float, float, int]] = []
        while publisher.is_alive():
            time.sleep(args.every)
            counters = request(control, {"cmd": "metrics"}, 10.0)["counters"]
            samples.append((time.monotonic() - began, rss_mib(process.pid), counters["ticks_processed"]))
            t, rss, ticks = samples[-1]
            print(f"  {t:7.0f}s  RSS {rss:7.1f} MiB  ticks processed {ticks:,}", flush=True)
        publisher.join()
        final = request(control, {"cmd": "metrics"}, 10.0)["counters"]
        stop(process, control)
    warm = next((s for s in samples if s[0] >= args.warmup * 60.0), samples[0])
    end = samples[-1]
    minutes = max((end[0] - warm[0]) / 60.0, 1e-9)
    marks = [samples[0]] + [next(s for s in samples if s[0] >= k * 300.0) for k in range(1, int(end[0] // 300) + 1)]
    if marks[-1] is not end:
        marks.append(end)
    print("RSS growth per stretch: " + ", ".join(
        f"{a[0] / 60:.0f}-{b[0] / 60:.0f} min {(b[1] - a[1]) / max((b[0] - a[0]) / 60.0, 1e-9):+.2f} MiB/min"
        for a, b in zip(marks, marks[1:])))
    print(f"{args.rate:,.0f} ticks/s for {args.minutes:g} min: {final['ticks_processed']:,} ticks processed "
          f"of {count:,} sent; RSS after {args.warmup:g} min of warm-up {warm[1]:.1f} MiB, "
          f"at the end {end[1]:.1f} MiB: "
          f"{end[1] - warm[1]:+.1f} MiB ({(end[1] - warm[1]) / minutes:+.2f} MiB/min)")


if __name__ == "__main__":
    main()
