"""Memory over a long live run: `python run.py live --feed external` fed at a steady rate by a
separate publisher process; samples the system's resident set size (RSS) as it runs.

    python -m bench.live_memory [--rate 20000] [--minutes 10] [--every 10]

Prints RSS at each sample, and the growth from the end of warm-up (the first minute) to the
end, in MiB and MiB per minute; flat means bounded windows and no leak.
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
    parser.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    args = parser.parse_args()
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
    warm = next((s for s in samples if s[0] >= 60.0), samples[0])
    end = samples[-1]
    minutes = max((end[0] - warm[0]) / 60.0, 1e-9)
    print(f"{args.rate:,.0f} ticks/s for {args.minutes:g} min: {final['ticks_processed']:,} ticks processed "
          f"of {count:,} sent; RSS after warm-up {warm[1]:.1f} MiB, at the end {end[1]:.1f} MiB: "
          f"{end[1] - warm[1]:+.1f} MiB ({(end[1] - warm[1]) / minutes:+.2f} MiB/min)")


if __name__ == "__main__":
    main()
