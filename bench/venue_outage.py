"""The venue feed through an exchange outage: ``live --feed venue`` against the loopback Binance double.

    python -m bench.venue_outage [--away 30] [--before 50] [--after 70] [--websocket] [--stale 10] [--poll 1]

Starts the double (tests/doubles/binance_ticker.py; its prices walk through the monthly BTCUSD closes
shipped in ``backtesting``), then ``run.py live --feed venue --venue binance --paper`` as a subprocess on
fresh loopback ports and a fresh database. After --before seconds the double goes away (refuses
connections, closes open ones) for --away seconds, then comes back; --after seconds later the run is shut
down. ``health`` and ``metrics`` are read every 0.25 s and each change of status, stale symbols or feed
state is printed with the time since the start, then the run's summary and its venue feed log lines.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from backtesting.test import BTCUSD

from tests.conftest import free_endpoint
from tests.doubles.binance_ticker import TickerBinance
from tests.helpers import ROOT, ctl, wait_for_control

SYMBOLS = ("BTC/USDT", "ETH/USDT")


def _state(control: str) -> tuple[tuple[Any, ...], dict[str, Any], dict[str, Any]]:
    health = ctl(control, "health")
    counters = ctl(control, "metrics")["counters"]
    feed = health["sources"]["venue_feed"]
    return (health["status"], tuple(health["stale"]), feed["state"]), feed, counters


def main() -> None:
    """Run the drill and print what it saw."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--away", type=float, default=30.0, help="seconds the exchange is away")
    parser.add_argument("--before", type=float, default=50.0, help="seconds of data before it goes away")
    parser.add_argument("--after", type=float, default=70.0, help="seconds of data after it comes back")
    parser.add_argument("--websocket", action="store_true", help="the double serves its websocket")
    parser.add_argument("--stale", type=float, default=10.0, help="feed.stale_s")
    parser.add_argument("--poll", type=float, default=1.0, help="venue.poll_s")
    args = parser.parse_args()
    endpoints = {name: free_endpoint() for name in ("ingress", "control", "events")}
    pause = threading.Event()
    with TickerBinance(SYMBOLS, path=tuple(BTCUSD["Close"].astype(float)), websocket=args.websocket) as venue, \
            tempfile.TemporaryDirectory() as tmp:
        settings = Path(tmp) / "settings.toml"
        settings.write_text(f"[feed]\nstale_s = {args.stale}\n[venue]\npoll_s = {args.poll}\n")
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "run.py"), "live", "--feed", "venue", "--venue", "binance", "--venue-url",
             venue.url, "--symbols", ",".join(SYMBOLS), "--paper", "--db", str(Path(tmp) / "venue.db"),
             "--settings", str(settings), *(f"--{k}={v}" for k, v in endpoints.items())],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for_control(endpoints["control"], process, 60)
        began = time.monotonic()
        phase, shown = "up", None
        while (now := time.monotonic() - began) < args.before + args.away + args.after:
            if phase == "up" and now >= args.before:
                venue.away()
                phase = "away"
                print(f"{now:6.1f}s the exchange goes away", flush=True)
            elif phase == "away" and now >= args.before + args.away:
                venue.back()
                phase = "back"
                print(f"{now:6.1f}s the exchange is back", flush=True)
            key, feed, counters = _state(endpoints["control"])
            if key != shown:
                print(f"{now:6.1f}s status={key[0]} stale={list(key[1])} feed={key[2]} via={feed['via']} "
                      f"failures={feed['failures']} ticks={counters['ticks_accepted']:,} bars={counters['bars']:,}",
                      flush=True)
                shown = key
            pause.wait(0.25)
        _, feed, counters = _state(endpoints["control"])
        print(f"end: ticks accepted {counters['ticks_accepted']:,}, rejected {counters['ticks_rejected']:,}, bars "
              f"{counters['bars']:,}, stale episodes {counters['stale_episodes']}; feed {json.dumps(feed)}")
        ctl(endpoints["control"], "shutdown")
        out, err = process.communicate(timeout=60)
        print(out, end="")
        print("\n".join(line for line in err.splitlines() if "venue feed" in line or "stale" in line
                        or "data again" in line))
        print(f"exit code {process.returncode}")


if __name__ == "__main__":
    main()
