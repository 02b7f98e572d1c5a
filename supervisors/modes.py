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

from actors.control.security import CurveKeys, control_security, ingress_security
from actors.web.security import http_access
from actors.feed.actor import IngressSocket
from actors.feed.replay import ReplayPlan, in_flight
from actors.feed.replay_actor import StartReplay
from actors.feed.publisher import MINUTE_NS, CompressedClock, run_simulator
from actors.store.errors import StorageError
from actors.store.history import DataError, finest_per_symbol, load_bar_file, read_bar_file, select_range
from actors.store.reader import StoreReader
from actors.store.writer import clear_run
from messages.pipeline import Drain
from messages.system import Query
from settings import SAMPLE_DATA, Settings, check_listen
from supervisors.clock import SimClock
from supervisors.deps import Deps
from supervisors.errors import BacktestFailed
from supervisors.system import StartupError, System
from supervisors.tree import tree_for

__all__ = ["ACCOUNTING", "BacktestFailed", "LiveResult", "StopRequest", "bars_lost", "check_endpoints_free",
           "live_preflight", "load_backtest_bars", "run_backtest", "run_live"]


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


def live_preflight(settings: Settings) -> tuple[CurveKeys | None, CurveKeys | None]:
    """Check what a live run needs before it touches anything: its endpoints free, CURVE where a
    socket is bound off loopback, and a token where the HTTP server is. Return the control's and the
    ingress's keys (None: plain sockets); StartupError (one line) otherwise. Nothing is bound, written
    or locked."""
    control = settings.control
    check_endpoints_free(settings)
    try:
        http_access(settings.http.listen, settings.http.token)
        curve = control_security((control.endpoint, control.events), control.curve_secret_key, control.curve_clients)
        bound = tuple(e for e in (settings.ingress.endpoint, settings.ingress.cryptofeed) if e)
        ingress_curve = ingress_security(bound, control.curve_secret_key, control.curve_clients,
                                         settings.ingress.insecure)
    except ValueError as exc:
        raise StartupError(str(exc)) from None
    if ingress_curve is not None and settings.feed.source == "sim":
        raise StartupError("the built-in simulator cannot publish into a CURVE ingress; use --feed external, "
                           "or bind the ingress to loopback")
    return curve, ingress_curve


def run_live(settings: Settings, duration: float | None, stop: threading.Event | None = None,
             checked: tuple[CurveKeys | None, CurveKeys | None] | None = None) -> LiveResult:
    """Run live until ``duration`` passes, ``stop`` is set, or a shutdown request or fatal failure.
    ``checked``: what ``live_preflight`` returned, when the caller ran it already."""
    feed = settings.feed
    curve, ingress_curve = checked if checked is not None else live_preflight(settings)
    sim_clock, prices = None, {}
    if feed.source == "sim":  # its ticks are judged by its own compressed clock, not the wall clock
        start_ns, prices = _stored_end(settings)
        sim_clock = CompressedClock(time.time_ns() // MINUTE_NS * MINUTE_NS if start_ns is None else start_ns,
                                    feed.sim_speed)
    ingress = IngressSocket(settings.ingress.endpoint, settings.ingress.rcvhwm, ingress_curve,
                            settings.ingress.max_publishers)
    cryptofeed = (IngressSocket(settings.ingress.cryptofeed, settings.ingress.rcvhwm, ingress_curve,
                                settings.ingress.max_publishers)
                  if settings.ingress.cryptofeed else None)
    try:  # bound here, before anything starts; the feed's thread takes them over
        for sock in (ingress, cryptofeed):
            if sock is not None:
                sock.socket()
    except OSError as exc:
        for sock in (ingress, cryptofeed):
            if sock is not None:
                sock.close()
        raise StartupError(str(exc)) from None
    system = System(settings, "live", Deps.of(settings, "live", ingress=ingress, cryptofeed=cryptofeed, curve=curve,
                                              feed_clock=sim_clock),
                    tree=tree_for("live", web=check_listen(settings.http.listen) is not None,
                                  venue=settings.venue.id != "paper"))
    system.start()
    began = time.monotonic()
    sim_stop = threading.Event()
    sim_thread = None
    if sim_clock is not None:
        sim_thread = threading.Thread(
            target=_simulate, name="simulator", daemon=True,
            args=(settings.ingress.endpoint, feed.symbols, feed.sim_rate, feed.sim_speed, feed.sim_seed, sim_stop,
                  sim_clock, prices),
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
    http = check_listen(settings.http.listen)
    if http is not None:
        wanted.append(("http", f"tcp://[{http[0]}]:{http[1]}" if ":" in http[0] else f"tcp://{http[0]}:{http[1]}"))
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
    with StoreReader(settings.store.db) as store:
        return store.series_end(settings.feed.symbols, settings.buffer.timeframe)


def _simulate(endpoint: str, symbols: tuple[str, ...], rate: float, speed: float, seed: int,
              stop: threading.Event, clock: CompressedClock, prices: dict[str, float]) -> None:
    try:
        sent = run_simulator(endpoint, symbols, rate, speed, seed, stop, prices=prices, clock=clock)
        logger.info("simulator sent {:,} ticks", sent)
    except Exception:
        logger.exception("the simulator failed")


def load_backtest_bars(data: str | None, db_path: str, start_ns: int | None, end_ns: int | None,
                       symbols: tuple[str, ...] | None, timeframe: str | None = None, ts_label: str = "close",
                       tz: str | None = None) -> tuple[pd.DataFrame, str]:
    """Bars for a backtest, and where they came from: ``data`` if given (cleaned as ``ingest`` cleans a
    file, with ``ts_label`` and ``tz``; what was cleaned is logged), else the database if it has bars in
    the range, else the bundled sample. From the database, each symbol replays ``timeframe``, or by
    default its finest stored timeframe in the range."""
    if data:
        only = symbols[0] if symbols and len(symbols) == 1 else None
        bars, reports = read_bar_file(data, symbol=only, ts_label=ts_label, tz=tz)
        for report in reports:
            logger.log("WARNING" if report.cleaned else "INFO", "{}", report)
        return select_range(bars, start_ns, end_ns, symbols), data
    with StoreReader(db_path) as store:
        stored = store.replay_bars(symbols, start_ns, end_ns, timeframe)
    if stored is not None and not stored.empty:
        return finest_per_symbol(stored), f"database {db_path}"
    sample = load_bar_file(SAMPLE_DATA)
    if timeframe and timeframe not in set(sample["timeframe"]):
        raise DataError(f"no {timeframe} bars in the database or the bundled sample (which has "
                        f"{', '.join(sorted(set(sample['timeframe'])))} bars)")
    return select_range(sample, start_ns, end_ns, symbols), f"bundled sample {SAMPLE_DATA.name}"


ACCOUNTING = ("bars", "bars_read", "bars_processed", "bars_dead_lettered", "bars_dropped_at_stop", "signals", "orders",
              "fills", "dead_letters", "late_output_dropped", "hangs")


def bars_lost(counters: dict[str, Any]) -> int:
    """Bars that entered the pipeline and were neither processed, dead-lettered nor dropped at stop."""
    return (counters["bars"] - counters["bars_processed"] - counters["bars_dead_lettered"]
            - counters["bars_dropped_at_stop"])


def run_backtest(settings: Settings, bars: pd.DataFrame, db_path: str, progress: bool = True,
                 faults: tuple[tuple[int, str], ...] = ()) -> dict[str, Any]:
    """Replay ``bars`` through the actors and return the executor's report, with ``counters``
    (see ``ACCOUNTING``; ``bars_read``: bars replayed, ``bars_processed``: bars the executor
    processed, derived timeframes included). Raises BacktestFailed if the system stopped.

    ``faults``: ``(bars, actor)`` crashes injected mid-replay (see StartReplay).
    """
    if bars.empty:
        raise DataError("no bars to replay")
    clear_run(db_path, "backtest")
    symbols = tuple(bars["symbol"].unique())  # in order of appearance, vectorised
    plan = ReplayPlan(bars, settings.backtest.chunk)
    system = System(settings, "backtest", Deps.of(settings, "backtest", replay=plan, symbols=symbols, db_path=db_path),
                    clock=SimClock(int(bars["ts"].iloc[0])))
    system.start()
    failed = ""
    try:
        with _replay_collection():
            report = _replay(system, plan.bars, progress, faults)
        stopped = system.health()["risk"]["strategies_stopped"]
        if not stopped:
            return report
        failed = next(iter(stopped.values()))  # a strategy's own code raised: its result would mislead
    except BacktestFailed as exc:
        failed = system.fatal or exc.reason
    finally:
        system.stop()  # counts what the stop dropped
    raise BacktestFailed(failed, _accounting(system))


def _accounting(system: System) -> dict[str, Any]:
    counters = system.counters.snapshot()
    return {k: counters[k] for k in ACCOUNTING}


def _replay(system: System, total: int, progress: bool, faults: tuple[tuple[int, str], ...]) -> dict[str, Any]:
    """Send the bars down the pipeline, follow the progress, drain, and return the executor's report."""
    sent = pykka.ThreadingFuture()
    system.registry.tell("feed", StartReplay(faults, sent))
    with tqdm(total=total, unit="bar", unit_scale=True, disable=None if progress else True,
              desc="backtest", leave=False) as bar:
        _await(system, sent, bar)
        drained = pykka.ThreadingFuture()
        system.registry.tell("feed", Drain(drained))
        _await(system, drained, bar)
    report = _await(system, _ask(system, "executor", Query("report")), None)
    report["counters"] = _accounting(system)
    return report


def _ask(system: System, actor: str, message: Any) -> pykka.ThreadingFuture:
    """Ask ``actor`` without a deadline (``_await`` watches the answer), once it runs (it may be restarting)."""
    address = system.registry.address(actor)
    while (ref := address.ref) is None:
        if system.stop_requested.wait(0.01):
            raise BacktestFailed(system.fatal or system.stop_reason, {})
    return ref.ask(message, block=False)


def _await(system: System, future: pykka.ThreadingFuture, bar: Any) -> Any:
    """Wait for ``future`` as long as the system runs and the pipeline moves (counters change, actors
    finish messages, or one is blocked, which it bounds itself); BacktestFailed if the system stops, or
    if nothing moves for twice ``supervisor.stuck_timeout_s`` (a stuck actor stops the system before,
    with its name; this catches anything else, so a backtest never hangs)."""
    s = system.settings.supervisor
    patience = 2 * s.stuck_timeout_s + s.heartbeat_s
    moved = time.monotonic()
    last = None
    while True:
        try:
            return future.get(timeout=0.1)
        except pykka.Timeout:
            pass
        except StorageError as exc:  # a drain or a commit the store could not keep: the run's reason is set
            raise BacktestFailed(system.fatal or str(exc), {}) from None
        if system.fatal:
            raise BacktestFailed(system.fatal, {})
        c = system.counters.snapshot()
        now = (c["bars"], c["bars_processed"], c["bars_dead_lettered"], c["dead_letters"],
               sum(s.processed for s in system.stats.values()))
        if now != last or any(s.waiting for s in system.stats.values()):
            last, moved = now, time.monotonic()
        elif time.monotonic() - moved > patience:
            system.give_up(f"the pipeline stopped moving for {patience:g}s with {in_flight(c):,} bars in flight")
            raise BacktestFailed(system.fatal or "the pipeline stopped moving", {})
        if bar is not None:
            bar.update(c["bars_processed"] - bar.n)


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
