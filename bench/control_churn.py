"""Control-socket churn: clients that open a new connection for every `metrics` request, while
ticks flow, against `python run.py live` (the built-in simulator feeding it); samples the
system's resident set size (RSS).

    python -m bench.control_churn [--clients 50] [--seconds 90] [--every 10] [--sim-rate 3000]

Each client thread loops: a new REQ socket, connect, `metrics`, wait for the reply, close. Prints
RSS at each sample, requests answered, and the growth from the first sample to the last, then
RSS again 10 s after the clients stop (whether anything is given back).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import zmq  # noqa: E402

from actors.control.client import request  # noqa: E402
from bench.live_memory import rss_mib  # noqa: E402
from bench.machine import describe  # noqa: E402
from messages.codec import encode_control  # noqa: E402
from tests.conftest import free_endpoint  # noqa: E402


def churn(endpoint: str, stop: threading.Event, answered: list[int]) -> None:
    """Until ``stop``: a new connection per ``metrics`` request, closed after the reply."""
    context = zmq.Context.instance()
    body = encode_control({"cmd": "metrics"})
    while not stop.is_set():
        sock = context.socket(zmq.REQ)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(endpoint)
        sock.send(body)
        if sock.poll(10_000):
            sock.recv()
            answered[0] += 1
        sock.close(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=90.0)
    parser.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--sim-rate", type=float, default=3000.0, help="ticks per second from the simulator")
    args = parser.parse_args()
    print(describe())
    with tempfile.TemporaryDirectory() as tmp:
        control = free_endpoint()
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "run.py"), "live", "--db", str(Path(tmp) / "churn.db"),
             "--ingress", free_endpoint(), "--control", control, "--events", free_endpoint(),
             "--sim-rate", str(args.sim_rate), "--log-level", "WARNING"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
        deadline = time.monotonic() + 30
        while True:
            try:
                if request(control, {"cmd": "ping"}, 0.5).get("ok"):
                    break
            except TimeoutError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise SystemExit("the system did not start") from None
        stop, answered = threading.Event(), [0]
        clients = [threading.Thread(target=churn, args=(control, stop, answered), daemon=True)
                   for _ in range(args.clients)]
        for client in clients:
            client.start()
        began = time.monotonic()
        first = rss_mib(process.pid)
        print(f"  {0:5.0f}s  RSS {first:7.1f} MiB", flush=True)
        while time.monotonic() - began < args.seconds:
            time.sleep(args.every)
            print(f"  {time.monotonic() - began:5.0f}s  RSS {rss_mib(process.pid):7.1f} MiB  "
                  f"requests answered {answered[0]:,}", flush=True)
        last, minutes = rss_mib(process.pid), (time.monotonic() - began) / 60
        stop.set()
        for client in clients:
            client.join()
        time.sleep(10)
        after = rss_mib(process.pid)
        request(control, {"cmd": "shutdown"}, 10.0)
        process.wait(timeout=60)
    print(f"{args.clients} clients, a new connection per metrics request, {answered[0]:,} requests in "
          f"{args.seconds:g}s: RSS {first:.1f} -> {last:.1f} MiB ({last - first:+.1f} MiB, "
          f"{(last - first) / minutes:+.1f} MiB/min, {(last - first) * 1024 / max(answered[0], 1):.2f} KiB a request); "
          f"10 s after the clients stopped {after:.1f} MiB")


if __name__ == "__main__":
    main()
