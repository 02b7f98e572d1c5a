"""Running a system in each mode: live until told to stop, backtest until the replay is done."""

from __future__ import annotations

import errno
import gc
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
import time
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pykka
from loguru import logger
from tqdm import tqdm

from actors.control.security import control_security
from actors.feed.actor import IngressSocket
from actors.feed.replay_actor import StartReplay
from actors.feed.publisher import run_simulator
from actors.store.db import Database, open_existing, read_stored_bars
from actors.store.history import DataError, finest_per_symbol, load_bar_file, select_range
from messages.pipeline import Drain
from settings import SAMPLE_DATA, Settings
from supervisors.clock import SimClock
from supervisors.system import StartupError, System

__all__ = ["LiveResult", "StopRequest", "check_endpoints_free", "load_backtest_bars", "run_backtest", "run_live"]


class StopRequest(threading.Event):
    """An event that says why it was set: what a signal handler sets to stop ``run_live``."""

    def __init__(self) -> None:
        super().__init__()
        self.reason = ""

    def request(self, reason: str) -> None:
        """Set the event (safe in a signal handler: no lock is held across the call)."""
        if not self.reason:
            self.reason = reason
        self.set()


@dataclass
class LiveResult:
    """How a live run ended."""

    counters: dict[str, Any]
    equity: float | None
    seconds: float
    fatal: str | None
    reason: str


def _equity(system: System) -> float | None:
    try:
        return float(system.query("executor", "positions")["equity"])
    except (LookupError, TimeoutError):
        return None


def _summary(system: System, previous: int, elapsed: float) -> tuple[str, int]:
    c = system.counters.snapshot()
    rate = (c["ticks_received"] - previous) / elapsed if elapsed > 0 else 0.0
    equity = _equity(system)
    line = (f"ticks/s={rate:,.0f} ticks={c['ticks_received']:,} rejected={c['ticks_rejected']:,} "
            f"bars={c['bars']:,} signals={c['signals']:,} orders={c['orders']:,} fills={c['fills']:,} "
            f"equity={equity:,.2f}" if equity is not None else "equity=n/a")
    return line, c["ticks_received"]


def run_live(settings: Settings, duration: float | None, stop: threading.Event | None = None) -> LiveResult:
    """Run live until ``duration`` passes, ``stop`` is set, or a shutdown request or fatal failure."""
    control = settings.control
    check_endpoints_free(settings)
    try:
        curve = control_security((control.endpoint, control.events), control.curve_secret_key, control.curve_clients)
    except ValueError as exc:
        raise StartupError(str(exc)) from None
    ingress = IngressSocket(settings.ingress.endpoint, settings.ingress.rcvhwm)
    cryptofeed = IngressSocket(settings.ingress.cryptofeed, settings.ingress.rcvhwm) if settings.ingress.cryptofeed else None
    try:  # bound here, before anything starts; the feed's thread takes them over
        for sock in (ingress, cryptofeed):
            if sock is not None:
                sock.socket()
    except OSError as exc:
        for sock in (ingress, cryptofeed):
            if sock is not None:
                sock.close()
        raise StartupError(str(exc)) from None
    system = System(settings, "live", {"ingress": ingress, "cryptofeed": cryptofeed, "symbols": settings.feed.symbols,
                                       "curve": curve})
    system.start()
    began = time.monotonic()
    sim_stop = threading.Event()
    sim_thread = None
    if settings.feed.source == "sim":
        feed = settings.feed
        start_ns, prices = _stored_end(settings)
        sim_thread = threading.Thread(
            target=_simulate, name="simulator", daemon=True,
            args=(settings.ingress.endpoint, feed.symbols, feed.sim_rate, feed.sim_speed, feed.sim_seed, sim_stop,
                  start_ns, prices),
        )
        sim_thread.start()
        logger.info("simulator publishing {} at {:g} ticks/s into {}", ",".join(feed.symbols), feed.sim_rate,
                    settings.ingress.endpoint)
    else:
        logger.info("listening for external feeds on {}", settings.ingress.endpoint)
    if cryptofeed is not None:
        logger.info("listening for cryptofeed's ZeroMQ backends on {}", settings.ingress.cryptofeed)
    stop = stop or threading.Event()
    _wake_on(system.stop_requested, stop)
    last_t, last_n = began, 0
    interval = settings.control.summary_s
    while True:
        remaining = None if duration is None else duration - (time.monotonic() - began)
        if remaining is not None and remaining <= 0:
            system.request_stop(f"--duration {duration:g}s reached")
        wait = interval if remaining is None else max(0.0, min(interval, remaining))
        # One event wakes this wait: a signal handler sets ``stop`` itself, and a stop the system
        # asks for (shutdown, a fatal failure) is copied onto it, so either ends the wait at once
        if stop.wait(wait) or system.stop_requested.is_set():
            system.request_stop(stop.reason if isinstance(stop, StopRequest) and stop.reason else "stop requested")
            break
        now = time.monotonic()
        line, last_n = _summary(system, last_n, now - last_t)
        last_t = now
        logger.info(line)
    logger.info("stopping: {}", system.stop_reason)
    sim_stop.set()
    if sim_thread is not None:
        sim_thread.join(timeout=5.0)
    if system.fatal is None:
        system.drain(timeout=10.0)
    equity = _equity(system) if system.fatal is None else None
    system.stop()
    return LiveResult(system.counters.snapshot(), equity, time.monotonic() - began, system.fatal, system.stop_reason)


def check_endpoints_free(settings: Settings) -> None:
    """Raise StartupError naming the first endpoint ``live`` would bind that is given twice or whose
    TCP port is taken (another ``live`` on the same ports) or whose host is unknown here, before
    anything starts."""
    wanted = [("ingress", settings.ingress.endpoint), ("cryptofeed", settings.ingress.cryptofeed),
              ("control", settings.control.endpoint), ("events", settings.control.events)]
    seen: dict[str, str] = {}
    for name, endpoint in wanted:
        if not endpoint:
            continue
        if endpoint in seen:
            raise StartupError(f"the {seen[endpoint]} and {name} endpoints are both {endpoint}; give each its own")
        seen[endpoint] = name
        problem = _port_problem(endpoint)
        if problem:
            raise StartupError(f"{name} endpoint {endpoint} {problem}")


def _port_problem(endpoint: str) -> str:
    """Why a plain TCP socket cannot bind ``endpoint`` as ZeroMQ would (SO_REUSEADDR), or ""."""
    scheme, _, rest = endpoint.partition("://")
    host, _, port = rest.rpartition(":")
    if scheme != "tcp" or not port.isdigit():
        return ""
    host = "" if host == "*" else host.strip("[]")
    try:
        infos = socket.getaddrinfo(host or None, int(port), type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError):
        if host in {name for _, name in socket.if_nameindex()}:
            return ""  # a network interface's name, which ZeroMQ binds to
        return f"cannot be bound: {host!r} is not an address, a known host name or a network interface"
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return "is in use (is another live running on these ports?)"
            return f"cannot be bound: {exc.strerror}"
    return ""


def _wake_on(source: threading.Event, target: threading.Event) -> None:
    """Set ``target`` as soon as ``source`` is set (from a daemon thread)."""
    def copy() -> None:
        source.wait()
        target.set()

    threading.Thread(target=copy, name="stop-relay", daemon=True).start()


def _stored_end(settings: Settings) -> tuple[int | None, dict[str, float]]:
    """Where the stored series of the simulated symbols ends: the simulator continues from there
    (its clock runs ahead of the wall clock, so starting at "now" would go back in time)."""
    db = open_existing(settings.store.db)
    if db is None:
        return None, {}
    try:
        last = [bars[-1] for s in settings.feed.symbols if (bars := db.last_bars(s, settings.buffer.timeframe, 1))]
    finally:
        db.close()
    if not last:
        return None, {}
    return max(bar.ts for bar in last), {bar.symbol: bar.close for bar in last}


def _simulate(endpoint: str, symbols: tuple[str, ...], rate: float, speed: float, seed: int,
              stop: threading.Event, start_ns: int | None = None, prices: dict[str, float] | None = None) -> None:
    try:
        sent = run_simulator(endpoint, symbols, rate, speed, seed, stop, start_ns=start_ns, prices=prices)
        logger.info("simulator sent {:,} ticks", sent)
    except Exception:
        logger.exception("the simulator failed")


def load_backtest_bars(data: str | None, db_path: str, start_ns: int | None, end_ns: int | None,
                       symbols: tuple[str, ...] | None, timeframe: str | None = None) -> tuple[pd.DataFrame, str]:
    """Bars for a backtest, and where they came from: ``data`` if given, else the database if it
    has bars in the range, else the bundled sample. From the database, each symbol replays
    ``timeframe``, or by default its finest stored timeframe in the range."""
    if data:
        only = symbols[0] if symbols and len(symbols) == 1 else None
        return select_range(load_bar_file(data, symbol=only), start_ns, end_ns, symbols), data
    stored = read_stored_bars(db_path, symbols, start_ns, end_ns, timeframe)
    if stored is not None and not stored.empty:
        return finest_per_symbol(stored), f"database {db_path}"
    sample = load_bar_file(SAMPLE_DATA)
    if timeframe and timeframe not in set(sample["timeframe"]):
        raise DataError(f"no {timeframe} bars in the database or the bundled sample (which has "
                        f"{', '.join(sorted(set(sample['timeframe'])))} bars)")
    return select_range(sample, start_ns, end_ns, symbols), f"bundled sample {SAMPLE_DATA.name}"


def run_backtest(settings: Settings, bars: pd.DataFrame, db_path: str, progress: bool = True,
                 faults: tuple[tuple[int, str], ...] = ()) -> dict[str, Any]:
    """Replay ``bars`` through the actors and return the executor's report.

    ``faults``: ``(bars, actor)`` crashes injected mid-replay (see StartReplay).
    """
    if bars.empty:
        raise DataError("no bars to replay")
    db = Database(db_path)
    db.clear_run("backtest")
    db.close()
    symbols = tuple(bars["symbol"].unique())  # in order of appearance, vectorised
    system = System(settings, "backtest",
                    {"replay": bars, "symbols": symbols, "run": "backtest", "db_path": db_path},
                    clock=SimClock(int(bars["ts"].iloc[0])))
    system.start()
    try:
        with _replay_collection():
            return _replay(system, bars, progress, faults)
    finally:
        system.stop()


def _replay(system: System, bars: pd.DataFrame, progress: bool, faults: tuple[tuple[int, str], ...]) -> dict[str, Any]:
    """Send the bars down the pipeline, follow the progress, and return the executor's report."""
    system.registry.tell("feed", StartReplay(faults))
    done = pykka.ThreadingFuture()
    system.registry.tell("feed", Drain(done))
    with tqdm(total=len(bars), unit="bar", unit_scale=True, disable=None if progress else True,
              desc="backtest", leave=False) as bar:
        while True:
            try:
                done.get(timeout=0.1)
                break
            except pykka.Timeout:
                if system.fatal:
                    raise RuntimeError(system.fatal) from None
                bar.update(system.counters.get("bars_processed") - bar.n)
        bar.update(system.counters.get("bars_processed") - bar.n)
    report = system.query("executor", "report")
    report["counters"] = {k: v for k, v in system.counters.snapshot().items()
                          if k in ("bars", "signals", "orders", "fills", "dead_letters")}
    return report


@contextmanager
def _replay_collection() -> Iterator[None]:
    """Garbage collection tuned for a replay: it allocates orders, fills and signals by the
    hundred thousand and frees few, so young collections run 70 times less often, and what
    exists before it starts (modules, the bars) is frozen out of full collections. Restored after."""
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(50_000, 20, 10)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
