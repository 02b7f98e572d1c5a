"""Command line: live | backtest | optimize | ingest | ctl | feed-sim | keys.

Thin: parse the arguments, load the settings, build and run the tree. User mistakes are
one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import gc
import json
import signal
import sys
import threading
from typing import Any, NoReturn

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument in one line."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--settings", metavar="FILE", help="settings file (TOML)")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="log level (default INFO)")


def _strategy_options(parser: argparse.ArgumentParser) -> None:
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument("--strategy", metavar="NAME", help="one strategy for every symbol: sma_cross (default), "
                        "macd_rsi, rsi_trend, bollinger_breakout, sr_breakout, ma_model")
    choice.add_argument("--strategies", metavar="FILE", help="TOML file giving symbols their own strategies")
    parser.add_argument("--param", action="append", type=_param, metavar="KEY=VALUE",
                        help="a strategy parameter, repeatable, e.g. --param fast=20 (others keep their defaults)")


def _param(text: str) -> str:
    key, eq, value = text.partition("=")
    if not eq or not key.strip() or not value.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE, e.g. fast=10")
    return text


def _strategy_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """--strategy NAME picks one strategy for the run (no strategies file); --param replaces its parameters."""
    return {
        "strategy.name": args.strategy,
        "strategy.params": tuple(args.param or ()) if args.param or args.strategy else None,
        "strategy.file": "" if args.strategy else args.strategies,
    }


def _symbols(text: str) -> tuple[str, ...]:
    symbols = tuple(part.strip() for part in text.split(",") if part.strip())
    if not symbols:
        raise argparse.ArgumentTypeError("expected symbols separated by commas, e.g. BTCUSD,ETHUSD")
    return symbols


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be > 0")
    return value


def _checked(check: Any, text: str) -> Any:
    """``check(text)``, its ValueError as argparse's (one line naming the argument)."""
    try:
        return check(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _endpoint(text: str) -> str:
    from settings import check_endpoint
    return _checked(check_endpoint, text)


def _timeframe(text: str) -> str:
    from messages.market import timeframe_ns
    _checked(timeframe_ns, text)
    return text


def _grid(text: str) -> Any:
    from supervisors.grid import parse_axis
    return _checked(parse_axis, text)


def _count(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return int(text)


def _optimize_parser(commands: Any) -> None:
    optimize = commands.add_parser(
        "optimize", help="backtest a strategy over a grid of parameters, on many cores",
        description="Backtest every point of a parameter grid in worker processes (or on a Dask cluster), rank "
        "the points by a metric, write results.csv (and heatmap.png for two parameters).")
    optimize.add_argument("--from", dest="start", required=True, metavar="DATE", help="first day, e.g. 2024-01-01")
    optimize.add_argument("--to", dest="end", metavar="DATE", help="last day (inclusive)")
    optimize.add_argument("--symbols", type=_symbols, help="symbols to replay (default: all in the data)")
    optimize.add_argument("--data", metavar="FILE", help="bars from a .csv, .csv.gz or .parquet file")
    optimize.add_argument("--db", metavar="PATH", help="sqlite database to read bars from (default trading.db)")
    optimize.add_argument("--timeframe", type=_timeframe, help="timeframe to replay from the database")
    optimize.add_argument("--strategy", metavar="NAME", help="the strategy to optimise (default sma_cross)")
    optimize.add_argument("--param", action="append", type=_param, metavar="KEY=VALUE",
                          help="a fixed strategy parameter, repeatable")
    optimize.add_argument("--grid", action="append", type=_grid, required=True, metavar="KEY=SPEC",
                          help="a parameter's values, repeatable: KEY=START:STOP:STEP (stop included) or KEY=A,B,C")
    optimize.add_argument("--metric", default="sharpe", help="what to rank by (default sharpe): sharpe, sortino, "
                          "return, cagr, max_drawdown, drawdown_days, trades, win_rate, profit_factor, avg_trade, "
                          "avg_trade_pct, final_equity")
    optimize.add_argument("--walk-forward", type=_count, metavar="K", help="fit on K rolling in-sample windows, "
                          "each tested on the window after it")
    where = optimize.add_mutually_exclusive_group()
    where.add_argument("--jobs", type=_count, metavar="N", help="worker processes (default: every core)")
    where.add_argument("--cluster", type=_endpoint, metavar="tcp://HOST:PORT", help="run on this Dask scheduler")
    optimize.add_argument("--out", metavar="DIR", default="optimize", help="where results.csv and heatmap.png go "
                          "(default optimize/)")
    optimize.add_argument("--top", type=_count, default=10, metavar="N", help="best points shown (default 10)")
    _common(optimize)


def build_parser() -> argparse.ArgumentParser:
    """The whole command line."""
    parser = _Parser(prog="run.py", description="Actor-model trading engine: live, backtest, control.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")

    live = commands.add_parser("live", help="run live on the simulator or external feeds",
                               description="Run the pipeline live. Ends on Ctrl-C, on 'ctl shutdown', or after --duration.")
    live.add_argument("--symbols", type=_symbols, help="symbols to observe, e.g. BTCUSD,ETHUSD")
    live.add_argument("--feed", choices=["sim", "external"], help="sim (default) publishes simulated ticks into the "
                      "ingress; external only listens")
    live.add_argument("--duration", type=_positive, metavar="SECONDS", help="stop after this many seconds")
    live.add_argument("--db", metavar="PATH", help="sqlite database (default trading.db)")
    live.add_argument("--ingress", type=_endpoint, metavar="ENDPOINT",
                      help="ingress SUB endpoint (default tcp://127.0.0.1:5555)")
    live.add_argument("--control", type=_endpoint, metavar="ENDPOINT",
                      help="control endpoint (default tcp://127.0.0.1:5556)")
    live.add_argument("--events", type=_endpoint, metavar="ENDPOINT",
                      help="events PUB endpoint (default tcp://127.0.0.1:5557)")
    live.add_argument("--cryptofeed", type=_endpoint, metavar="ENDPOINT",
                      help="also bind a SUB here for cryptofeed's ZeroMQ backends")
    live.add_argument("--sim-rate", type=_positive, metavar="TICKS_PER_S", help="simulator ticks per second")
    live.add_argument("--sim-speed", type=_positive, metavar="X", help="simulated seconds per wall second")
    live.add_argument("--allow-fault-injection", action="store_true", help="accept 'ctl crash actor=NAME'")
    live.add_argument("--insecure-ingress", action="store_true", help="let an ingress bound off loopback accept any "
                      "publisher without CURVE (ingress.insecure)")
    _strategy_options(live)
    _common(live)

    backtest = commands.add_parser("backtest", help="replay history through the same actors",
                                   description="Replay bars from --data, else the database, else the bundled sample.")
    backtest.add_argument("--from", dest="start", required=True, metavar="DATE", help="first day, e.g. 2024-01-01")
    backtest.add_argument("--to", dest="end", metavar="DATE", help="last day (inclusive)")
    backtest.add_argument("--symbols", type=_symbols, help="symbols to replay (default: all in the data)")
    backtest.add_argument("--data", metavar="FILE", help="bars from a .csv, .csv.gz or .parquet file")
    backtest.add_argument("--db", metavar="PATH", help="sqlite database (default trading.db)")
    backtest.add_argument("--timeframe", type=_timeframe, help="timeframe to replay from the database "
                          "(default: each symbol's finest)")
    backtest.add_argument("--json", action="store_true", help="print the report as JSON")
    backtest.add_argument("--out", metavar="DIR", help="write trades.csv, equity.csv, report.png and report.html")
    _strategy_options(backtest)
    _common(backtest)

    _optimize_parser(commands)

    ingest = commands.add_parser("ingest", help="import historical bars into the database",
                                 description="Validate a bar file (every bad row is named; nothing is written if "
                                 "any is bad) and upsert it into the database, so backtest and live use it.")
    ingest.add_argument("file", metavar="FILE", help="bars in .csv, .csv.gz or .parquet")
    ingest.add_argument("--symbol", required=True, help="the symbol the bars are of (picks it if the file has a "
                        "symbol column)")
    ingest.add_argument("--timeframe", type=_timeframe, help="bar length, e.g. 1m (default: inferred from the spacing)")
    ingest.add_argument("--ts-label", choices=["open", "close"], default="close",
                        help="whether the file's times are bar opens or closes (default close)")
    ingest.add_argument("--db", metavar="PATH", help="sqlite database (default trading.db)")
    _common(ingest)

    ctl = commands.add_parser("ctl", help="talk to a running system over the control socket",
                              description="Send one command, e.g. 'ctl health' or 'ctl subscribe symbols=A,B'.")
    ctl.add_argument("cmd", metavar="COMMAND", help="ping, health, metrics, positions, orders, subscribe, "
                     "unsubscribe, restart, crash, shutdown")
    ctl.add_argument("args", nargs="*", metavar="KEY=VALUE", help="command arguments")
    ctl.add_argument("--json", action="store_true", help="print the raw reply as JSON")
    ctl.add_argument("--control", type=_endpoint, metavar="ENDPOINT", default="tcp://127.0.0.1:5556",
                     help="control endpoint")
    ctl.add_argument("--timeout", type=_positive, default=5.0, metavar="SECONDS", help="reply timeout (default 5)")
    ctl.add_argument("--server-key", metavar="FILE", help="CURVE: the server's public key file (NAME.key)")
    ctl.add_argument("--client-key", metavar="FILE", help="CURVE: this client's secret key file (NAME.key_secret)")

    keys = commands.add_parser("keys", help="generate a CURVE key pair for the control socket",
                               description="Write NAME.key (public) and NAME.key_secret (private) into DIR.")
    keys.add_argument("directory", metavar="DIR", help="where to write the key files")
    keys.add_argument("--name", default="server", help="file name stem (default server)")

    sim = commands.add_parser("feed-sim", help="publish simulated ticks into an ingress",
                              description="An external publisher speaking wire protocol v1.")
    sim.add_argument("--ingress", type=_endpoint, default="tcp://127.0.0.1:5555", metavar="ENDPOINT",
                     help="ingress to connect to")
    sim.add_argument("--symbols", type=_symbols, default=("BTCUSD", "ETHUSD", "SOLUSD"), help="symbols")
    sim.add_argument("--rate", type=_positive, default=3000.0, help="ticks per second (default 3000)")
    sim.add_argument("--speed", type=_positive, default=600.0, help="simulated seconds per wall second")
    sim.add_argument("--count", type=int, help="stop after this many ticks")
    sim.add_argument("--duration", type=_positive, metavar="SECONDS", help="stop after this many seconds")
    sim.add_argument("--seed", type=int, default=7, help="random seed")
    sim.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser


def _fail(message: str, code: int = EXIT_FAILED) -> int:
    sys.stderr.write(f"run.py: error: {message}\n")
    return code


def _settings(args: argparse.Namespace, overrides: dict[str, Any]) -> Any:
    from settings import load_settings
    return load_settings(args.settings, overrides={k: v for k, v in overrides.items() if v is not None})


def _check_database(settings: Any, live: bool = False) -> Any:
    """Refuse a database that cannot be written (StorageError, one line); live also takes its lock,
    held until the process ends, so a second live on the same database refuses."""
    from actors.store.guard import check_database, hold

    lock = hold(settings.store.db) if live else None
    check_database(settings.store.db, settings.store.lock_patience_s)
    return lock


def cmd_live(args: argparse.Namespace) -> int:
    """Run live."""
    from actors.store.errors import StorageError
    from supervisors.modes import StopRequest, live_preflight, run_live
    from supervisors.system import StartupError

    settings = _settings(args, {
        "feed.symbols": args.symbols, "feed.source": args.feed, "store.db": args.db,
        "ingress.endpoint": args.ingress, "control.endpoint": args.control, "control.events": args.events,
        "ingress.cryptofeed": args.cryptofeed,
        "feed.sim_rate": args.sim_rate, "feed.sim_speed": args.sim_speed,
        "control.allow_fault_injection": True if args.allow_fault_injection else None,
        "ingress.insecure": True if args.insecure_ingress else None,
        **_strategy_overrides(args),
    })
    from loguru import logger

    from actors.strategy.registry import strategy_plan
    logger.info("strategy: {}", strategy_plan(settings.strategy).describe())
    from settings import SIM_DB, StoreSettings

    if settings.feed.source == "sim" and settings.store.db == StoreSettings().db:
        # the simulator's made-up market gets its own database: trading.db holds real history only
        settings = settings.with_values({"store.db": SIM_DB})
    try:
        checked = live_preflight(settings)  # endpoints and CURVE first: a refusal there leaves nothing behind
        lock = _check_database(settings, live=True)
    except (StartupError, StorageError) as exc:
        return _fail(f"cannot start: {exc}")
    stop = StopRequest()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda number, _frame: stop.request(f"{signal.Signals(number).name} received"))
    # What is loaded by now (modules, settings) lives as long as the process: the collector's full
    # passes skip it instead of walking it again every time, which stalled the pipeline for tens of ms
    gc.freeze()
    try:
        result = run_live(settings, args.duration, stop, checked)
    except StartupError as exc:
        return _fail(f"cannot start: {exc}")
    except StorageError as exc:
        return _fail(str(exc))
    finally:
        if lock is not None:
            lock.release()
    c = result.counters
    equity = f"{result.equity:,.2f}" if result.equity is not None else "n/a"
    print(f"live run ended after {result.seconds:.1f}s ({result.reason})")
    print(f"  ticks     received {c['ticks_received']:,}  accepted {c['ticks_accepted']:,}  "
          f"rejected {c['ticks_rejected']:,}  processed {c['ticks_processed']:,}  "
          f"dead-lettered {c['ticks_dead_lettered']:,}  dropped at stop {c['ticks_dropped_at_stop']:,}")
    print(f"  bars      {c['bars']:,}")
    print(f"  signals   {c['signals']:,}")
    print(f"  orders    {c['orders']:,} (stored {c['orders_stored']:,})  fills {c['fills']:,} "
          f"(stored {c['fills_stored']:,})")
    print(f"  equity    {equity}")
    if result.fatal:
        return _fail(result.fatal)
    return EXIT_OK


def _out_problem(path: str) -> str:
    """Why the report cannot be written into folder ``path`` (made if missing), or "". Tried by
    making and removing a scratch folder where the report's would go, so nothing is left behind."""
    import tempfile
    from pathlib import Path

    target = Path(path)
    if target.exists() and not target.is_dir():
        return "is a file, not a folder (the report is several files: give a folder)"
    existing = target
    while not existing.exists():  # the nearest folder that exists: the report's folders are made in it
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is a file, not a folder"
    try:
        Path(tempfile.mkdtemp(prefix=".report-check-", dir=existing)).rmdir()
    except OSError as exc:
        return f"cannot write in folder {existing}: {exc.strerror}"
    return ""


def _replay_input(args: argparse.Namespace, settings: Any) -> tuple[Any, str] | str:
    """Check ``--out`` and the database, then read the bars that ``--from``, ``--to``, ``--data``,
    ``--symbols`` and ``--timeframe`` pick: (bars, where from), or the usage mistake in one line."""
    from actors.store.history import parse_date
    from supervisors.modes import load_backtest_bars

    problem = _out_problem(args.out) if args.out else ""
    if problem:
        return f"--out {args.out}: {problem}"
    _check_database(settings)
    start = parse_date(args.start, "--from")
    end = parse_date(args.end, "--to", end_of_day=True) if args.end else None
    if end is not None and end <= start:
        return f"--to {args.end} is before --from {args.start}"
    return load_backtest_bars(args.data, settings.store.db, start, end, args.symbols, args.timeframe)


def cmd_backtest(args: argparse.Namespace) -> int:
    """Run a backtest and print its report."""
    from actors.strategy.registry import strategy_plan
    from supervisors.modes import run_backtest

    settings = _settings(args, {"store.db": args.db, **_strategy_overrides(args)})
    loaded = _replay_input(args, settings)
    if isinstance(loaded, str):
        return _fail(loaded, EXIT_USAGE)
    bars, source = loaded
    from loguru import logger
    logger.info("replaying {:,} bars of {} from {}", len(bars), ",".join(bars["symbol"].unique()), source)
    logger.info("strategy: {}", strategy_plan(settings.strategy).describe())
    from supervisors.modes import BacktestFailed, bars_lost
    try:
        report = run_backtest(settings, bars, settings.store.db)
    except BacktestFailed as exc:
        return _fail(str(exc))
    c = report["counters"]
    summary = {**report["summary"], "bars_read": c["bars_read"], "bars_processed": c["bars_processed"],
               "bars_dead_lettered": c["bars_dead_lettered"], "dead_letters": c["dead_letters"]}
    if args.out:
        from actors.executor.output import write_report
        written = write_report(args.out, report["summary"], report["trades"], report["equity_ts"], report["equity"],
                               f"Backtest: {', '.join(bars['symbol'].unique())} ({source})")
        logger.info("report written: {}", ", ".join(str(p) for p in written))
    if args.json:
        print(json.dumps({"summary": summary, "trades": report["trades"]}, indent=2))
    else:
        _print_backtest(summary, source)
    lost = bars_lost(c)
    if c["dead_letters"] or lost:
        return _fail(f"backtest incomplete: {c['dead_letters']:,} messages dead-lettered ({c['bars_dead_lettered']:,} "
                     f"bars), {lost:,} bars lost; the figures above miss them (see the log)")
    return EXIT_OK


def cmd_optimize(args: argparse.Namespace) -> int:
    """Backtest every point of the grid, print the best, write the results."""
    from concurrent.futures.process import BrokenProcessPool

    from loguru import logger

    from actors.store.history import iso_utc
    from actors.strategy.registry import strategy_plan
    from supervisors.grid import GridError, check_axes, metric_named
    from supervisors.optimize import optimize, plan_grid
    from supervisors.optimize_output import report_lines, write_results

    settings = _settings(args, {"store.db": args.db, "strategy.name": args.strategy, "strategy.file": "",
                                "strategy.params": tuple(args.param or ()) if args.param or args.strategy else None})
    spec = strategy_plan(settings.strategy).default
    fixed = {text.partition("=")[0].strip() for text in settings.strategy.params}
    try:
        metric = metric_named(args.metric)
        axes = check_axes(args.grid, dict(spec.params), spec.name)
        both = [axis.key for axis in axes if axis.key in fixed]
        if both:
            raise GridError(f"parameter {both[0]!r} is both fixed (--param, or strategy.params in the settings) and "
                            "varied by --grid; give it one")
        plan = plan_grid(settings, axes)
    except GridError as exc:
        return _fail(str(exc), EXIT_USAGE)
    loaded = _replay_input(args, settings)
    if isinstance(loaded, str):
        return _fail(loaded, EXIT_USAGE)
    bars, source = loaded
    symbols = ",".join(bars["symbol"].unique())
    logger.info("optimising {} on {:,} bars of {} from {}", spec.name, len(bars), symbols, source)
    try:
        search = optimize(settings, bars, plan, metric, jobs=args.jobs, cluster=args.cluster,
                          walk_forward=args.walk_forward or 0,
                          on_start=lambda where: logger.info("backtests run on {}", where))
    except GridError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except BrokenProcessPool as exc:
        return _fail(f"a worker process died: {exc}")
    print(f"optimize {spec.name} on {symbols} {iso_utc(int(bars['ts'].min()))} .. {iso_utc(int(bars['ts'].max()))}  "
          f"(source: {source})")
    for line in report_lines(search, args.top):
        print(line)
    written = write_results(args.out, search, f"{spec.name} on {symbols}")
    print(f"written: {', '.join(str(p) for p in written)}")
    if search.failed:
        return _fail(f"{len(search.failed):,} backtests failed; the ranking misses them (see the error column of "
                     f"{written[0]})")
    return EXIT_OK


def _print_backtest(s: dict[str, Any], source: str) -> None:
    print(f"backtest {s['start']} .. {s['end']}  ({s['bars']:,} bar closes, source: {source})")
    def num(value: float | None, spec: str) -> str:
        return "n/a" if value is None else format(value, spec)

    print(f"  bars          {s['bars_read']:,} read, {s['bars_processed']:,} processed")
    print(f"  trades        {s['trades']}  (win rate {s['win_rate_pct']:.1f}%, profit factor "
          f"{num(s['profit_factor'], '.2f')}, average {num(s['avg_trade_pct'], '+.2f')}%, open positions "
          f"{s['open_positions']})")
    print(f"  return        {s['total_return_pct']:+.2f}%  (CAGR {num(s['cagr_pct'], '+.2f')}%)")
    print(f"  risk          Sharpe {num(s['sharpe'], '.2f')}  Sortino {num(s['sortino'], '.2f')}  "
          f"exposure {num(s['exposure_pct'], '.1f')}%")
    print(f"  max drawdown  {s['max_drawdown_pct']:.2f}%  (lasting {s['max_drawdown_days']:.1f} days)")
    print(f"  final equity  {s['final_equity']:,.2f}  (from {s['initial_cash']:,.2f})")


def cmd_ingest(args: argparse.Namespace) -> int:
    """Import a bar file into the database and say what was imported."""
    from actors.store.ingest import ingest_file

    settings = _settings(args, {"store.db": args.db})
    _check_database(settings)
    print(ingest_file(args.file, settings.store.db, args.symbol, args.timeframe, args.ts_label))
    return EXIT_OK


def _value(text: str) -> Any:
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _condition(actor: dict[str, Any]) -> str:
    """An actor's condition in a few words: ok, busy, slow in a message, or blocked on something."""
    condition = actor.get("condition", "ok")
    if condition == "slow":
        return f"slow: in {actor['in']} for {actor['for_s']:.1f}s"
    if condition == "blocked":
        return f"blocked: {actor['on']} for {actor['for_s']:.1f}s"
    return condition


def cmd_ctl(args: argparse.Namespace) -> int:
    """Send one control command and print the reply."""
    from actors.control.client import request

    message: dict[str, Any] = {"cmd": args.cmd}
    for pair in args.args:
        key, eq, value = pair.partition("=")
        if not eq or not key:
            return _fail(f"argument {pair!r} is not KEY=VALUE", EXIT_USAGE)
        message[key] = _value(value)
    try:
        reply = request(args.control, message, args.timeout, args.server_key, args.client_key)
    except (TimeoutError, ValueError) as exc:
        return _fail(str(exc))
    if args.json:
        print(json.dumps(reply, indent=2, sort_keys=True))
    elif not reply.get("ok"):
        pass
    elif args.cmd == "health":
        print(f"status: {reply['status']}")
        if not reply.get("durability", {}).get("ok", True):
            print(f"  records cannot be stored: {reply['durability']['reason']}")
        if reply.get("fatal"):
            print(f"  stopping: {reply['fatal']}")
        if reply.get("risk", {}).get("halted"):
            print(f"  trading halted: {reply['risk']['reason']}")
        overload = reply.get("overload") or {}
        if overload.get("overloaded"):
            print(f"  overloaded for {overload['for_s']:.1f}s: {overload['in_flight']:,} ticks in flight "
                  f"(bound {overload['max_in_flight']:,}), {overload['store_backlog']} writes waiting for the store")
        if reply.get("stale"):
            print(f"  stale: {', '.join(reply['stale'])}")
        print(f"  {'actor':<10}{'state':<12}{'restarts':>9}{'mailbox':>9}{'processed':>12}{'errors':>8}  condition")
        for name, a in reply["actors"].items():
            print(f"  {name:<10}{a['state']:<12}{a['restarts']:>9}{a['mailbox']:>9}{a['processed']:>12}{a['errors']:>8}"
                  f"  {_condition(a)}")
    elif args.cmd == "metrics":
        print(json.dumps(reply["counters"], indent=2, sort_keys=True))
        print(f"latency from ingress receive, us{'batches':>12}{'p50':>10}{'p99':>10}{'max':>10}")
        stages = reply.get("latency_by_stage") or {"executor": reply["latency"]}  # nothing timed yet
        for name, lat in stages.items():
            label = "to the executor's decision" if name == "executor" else f"to {name} done"
            figures = "".join(f"{lat[k]:>10,.0f}" for k in ("p50_us", "p99_us", "max_us")) if lat["samples"] else ""
            print(f"  {label:<30}{lat['samples']:>12,}{figures}")
    else:
        body = {k: v for k, v in reply.items() if k != "ok"}
        print(json.dumps(body, indent=2, sort_keys=True) if body else "ok")
    if not reply.get("ok"):
        return _fail(str(reply.get("error", "request failed")))
    return EXIT_OK


def cmd_keys(args: argparse.Namespace) -> int:
    """Generate a CURVE key pair."""
    from actors.control.security import generate_keypair

    try:
        public, secret = generate_keypair(args.directory, args.name)
    except (FileExistsError, OSError) as exc:
        return _fail(str(exc))
    print(f"public key (share; put clients' ones in control.curve_clients): {public}")
    print(f"secret key (keep private; server: control.curve_secret_key, client: ctl --client-key): {secret}")
    return EXIT_OK


def cmd_feed_sim(args: argparse.Namespace) -> int:
    """Publish simulated ticks until --count, --duration or Ctrl-C."""
    from loguru import logger

    from actors.feed.publisher import run_simulator

    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if args.duration:
        threading.Timer(args.duration, stop.set).start()
    try:
        sent = run_simulator(args.ingress, args.symbols, args.rate, args.speed, args.seed, stop, args.count)
    except TimeoutError as exc:
        return _fail(str(exc))
    finally:
        stop.set()
    logger.info("sent {:,} ticks to {}", sent, args.ingress)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = build_parser().parse_args(argv)
    from supervisors.errors import TradingError
    from supervisors.logs import setup_logging

    setup_logging(getattr(args, "log_level", "WARNING") if args.command not in ("ctl", "keys") else "WARNING")
    handlers = {"live": cmd_live, "backtest": cmd_backtest, "ingest": cmd_ingest, "ctl": cmd_ctl,
                "feed-sim": cmd_feed_sim, "keys": cmd_keys, "optimize": cmd_optimize}
    try:
        return handlers[args.command](args)
    except TradingError as exc:  # settings, data, storage, ...: each message is one line for the user
        return _fail(str(exc))
    except KeyboardInterrupt:
        return _fail("interrupted", 130)


if __name__ == "__main__":
    sys.exit(main())
