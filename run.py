"""Command line: live | backtest | optimize | ingest | download | data | ctl | feed-sim | keys.

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
from collections.abc import Callable
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


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 1")
    return value


def _valid(check: Callable[[str], Any], text: str) -> str:
    """``text`` if ``check`` accepts it; its ValueError as argparse's one-line usage error."""
    try:
        check(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _endpoint(text: str) -> str:
    from settings import check_endpoint
    return _valid(check_endpoint, text)


def _listen(text: str) -> str:
    from settings import check_listen
    return _valid(check_listen, text)


def _timeframe(text: str) -> str:
    from messages.market import timeframe_ns
    return _valid(timeframe_ns, text)


def _zone(text: str) -> str:
    from actors.store.cleaning import check_zone
    from supervisors.errors import DataError
    try:
        return check_zone(text) or "UTC"
    except DataError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _file_time_options(parser: argparse.ArgumentParser) -> None:
    """--ts-label and --tz: how to read a bar file's times (ingest, backtest --data)."""
    parser.add_argument("--ts-label", choices=["open", "close"], default="close",
                        help="whether the file's times are bar opens or closes (default close)")
    parser.add_argument("--tz", type=_zone, metavar="ZONE", help="the exchange's time zone (IANA name, e.g. "
                        "Asia/Seoul): times without a UTC offset are read in it, and bars of 1d and longer lie on "
                        "its local midnight (default UTC)")


def _venue_url(text: str) -> str:
    from actors.store.exchange import check_venue_url
    return _valid(check_venue_url, text).rstrip("/")


def _venue_feed_options(live: argparse.ArgumentParser) -> None:
    """``live --feed venue --venue ID [--paper]``: market data from an exchange, orders on paper."""
    live.add_argument("--paper", action="store_true", help="orders filled by the paper broker (simulated fills on "
                      "the prices the feed brings), never sent to --venue, whose market data --feed venue streams "
                      "(venue.paper)")


def _venue_feed_check(settings: Any) -> tuple[dict[str, Any] | None, str, int]:
    """For ``--feed venue``: the venue's markets once every watched symbol is among them; else None, the
    one line to exit with and the code (2: an unknown venue, a symbol it does not list; 1: unreachable)."""
    if settings.feed.source != "venue":
        return None, "", EXIT_OK
    from actors.feed.venue_source import venue_markets
    from actors.store.exchange import VenueError
    from supervisors.errors import DataError

    venue = settings.venue
    try:
        return (venue_markets(venue.id, venue.url or None, settings.feed.symbols, venue.timeout_s, venue.sandbox),
                "", EXIT_OK)
    except DataError as exc:
        return None, str(exc), EXIT_USAGE
    except VenueError as exc:
        return None, f"cannot start: {exc}", EXIT_FAILED


def _whole(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 0")
    return int(text)


def _data_commands(commands: Any) -> None:
    """``download`` and ``data list | gaps | export | delete``."""
    download = commands.add_parser("download", help="download history from an exchange into the database",
                                   description="Download OHLCV bars through ccxt into the database, page by page; "
                                   "only what was not fetched before is asked for, so a repeat resumes or updates.")
    download.add_argument("--venue", required=True, metavar="ID", help="a ccxt exchange id, e.g. binance, kraken")
    download.add_argument("--symbols", required=True, type=_symbols, help="the venue's symbols, e.g. BTC/USDT,ETH/USDT "
                          "(stored under these names)")
    download.add_argument("--timeframe", required=True, type=_timeframe, help="bar length, e.g. 1m, 1h, 1d")
    download.add_argument("--from", dest="start", required=True, metavar="DATE", help="first day, e.g. 2024-01-01")
    download.add_argument("--to", dest="end", metavar="DATE", help="last day, inclusive (default: up to now)")
    download.add_argument("--db", metavar="PATH", help="sqlite database (default trading.db)")
    download.add_argument("--venue-url", type=_venue_url, metavar="URL", help="send every request of the venue "
                          "(REST and websocket) to this base URL instead: a testnet, a proxy, a local double")
    download.add_argument("--retries", type=_whole, default=5, metavar="N",
                          help="repeats of a request that met a rate limit, a 5xx or a network error (default 5)")
    download.add_argument("--backoff", type=_positive, default=1.0, metavar="SECONDS",
                          help="first wait before a repeat, doubled each time, with jitter (default 1)")
    download.add_argument("--timeout", type=_positive, default=10.0, metavar="SECONDS",
                          help="a request with no reply after this long fails and is repeated (default 10)")
    _common(download)

    data = commands.add_parser("data", help="what the database holds: list, gaps, export, delete",
                               description="List the stored series, show a series' gaps, export or delete it.")
    actions = data.add_subparsers(dest="action", required=True, parser_class=_Parser, metavar="ACTION")
    listing = actions.add_parser("list", help="every stored series: extent, rows, gaps, source",
                                 description="Every stored series (symbol and timeframe) with its first and last "
                                 "bar (close times, UTC), rows, gaps (runs of missing bars) and source.")
    gaps = actions.add_parser("gaps", help="a series' gaps, one per line",
                              description="The runs of missing bars of one series, in time order.")
    export = actions.add_parser("export", help="write a series to a CSV or Parquet file",
                                description="Write one series to FILE (.csv, .csv.gz or .parquet), as ingest and "
                                "backtest --data read it.")
    delete = actions.add_parser("delete", help="delete a symbol's series",
                                description="Delete the bars of a symbol (all its timeframes, or one) and say what "
                                "was deleted. Asks nothing.")
    for action in (gaps, export, delete):
        action.add_argument("symbol", metavar="SYMBOL", help="the stored symbol, e.g. BTC/USDT")
        action.add_argument("--timeframe", type=_timeframe, help="the series' timeframe (needed if several are stored)")
    export.add_argument("--out", required=True, metavar="FILE", help="the file to write (.csv, .csv.gz or .parquet)")
    for action in (listing, gaps, delete):
        action.add_argument("--json", action="store_true", help="print JSON")
    for action in (listing, gaps, export, delete):
        action.add_argument("--db", metavar="PATH", help="sqlite database (default trading.db)")
        _common(action)


def _replay_options(parser: argparse.ArgumentParser) -> None:
    """The bars to replay (backtest, optimize): the range, the symbols, and where from."""
    parser.add_argument("--from", dest="start", required=True, metavar="DATE", help="first day, e.g. 2024-01-01")
    parser.add_argument("--to", dest="end", metavar="DATE", help="last day (inclusive)")
    parser.add_argument("--symbols", type=_symbols, help="symbols to replay (default: all in the data)")
    parser.add_argument("--data", metavar="FILE", help="bars from a .csv, .csv.gz or .parquet file (cleaned as "
                        "ingest cleans it; see --ts-label and --tz)")
    _file_time_options(parser)
    parser.add_argument("--db", metavar="PATH", help="sqlite database (default trading.db)")
    parser.add_argument("--timeframe", type=_timeframe, help="timeframe to replay from the database "
                        "(default: each symbol's finest)")


def _grid(text: str) -> str:
    from supervisors.grid import parse_axis
    return _valid(parse_axis, text)


def _one_or_more(text: str) -> int:
    value = _count(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 1")
    return value


def _optimize_parser(commands: Any) -> None:
    optimize = commands.add_parser(
        "optimize", help="backtest a strategy over a grid of parameters, on many cores",
        description="Backtest every point of a parameter grid in worker processes (or on a Dask cluster), rank "
        "the points by a metric, write results.csv (and heatmap.png for two parameters).")
    _replay_options(optimize)
    optimize.add_argument("--strategy", metavar="NAME", help="the strategy to optimise: a built-in one (default "
                          "sma_cross), or your own as FILE.py:ClassName or package.module:ClassName")
    optimize.add_argument("--param", action="append", type=_param, metavar="KEY=VALUE",
                          help="a fixed strategy parameter, repeatable")
    optimize.add_argument("--grid", action="append", type=_grid, required=True, metavar="KEY=SPEC",
                          help="a parameter's values, repeatable: KEY=START:STOP:STEP (stop included) or KEY=A,B,C")
    optimize.add_argument("--metric", default="sharpe", help="what to rank by (default sharpe): sharpe, sortino, "
                          "return, cagr, max_drawdown, drawdown_days, trades, win_rate, profit_factor, avg_trade, "
                          "avg_trade_pct, final_equity")
    optimize.add_argument("--walk-forward", type=_one_or_more, metavar="K", help="fit on K rolling in-sample windows, "
                          "each tested on the window after it")
    where = optimize.add_mutually_exclusive_group()
    where.add_argument("--jobs", type=_one_or_more, metavar="N", help="worker processes (default: every core)")
    where.add_argument("--cluster", type=_endpoint, metavar="tcp://HOST:PORT", help="run on this Dask scheduler")
    optimize.add_argument("--out", metavar="DIR", default="optimize", help="where results.csv and heatmap.png go "
                          "(default optimize/)")
    optimize.add_argument("--top", type=_one_or_more, default=10, metavar="N", help="best points shown (default 10)")
    _common(optimize)


def build_parser() -> argparse.ArgumentParser:
    """The whole command line."""
    parser = _Parser(prog="run.py", description="Actor-model trading engine: live, backtest, control.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")

    live = commands.add_parser("live", help="run live on the simulator or external feeds",
                               description="Run the pipeline live. Ends on Ctrl-C, on 'ctl shutdown', or after --duration.")
    live.add_argument("--symbols", type=_symbols, help="symbols to observe, e.g. BTCUSD,ETHUSD")
    live.add_argument("--feed", choices=["sim", "external", "venue"], help="sim (default) publishes simulated ticks "
                      "into the ingress; external only listens; venue streams the tickers of --venue through ccxt")
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
    live.add_argument("--http", type=_listen, metavar="HOST:PORT", help="serve the dashboard and /metrics here "
                      "(default 127.0.0.1:8780; off: no HTTP server; off loopback only with http.token)")
    live.add_argument("--venue", metavar="ID", help="where orders go: paper (default) or a ccxt exchange id, e.g. "
                      "binance (whose tickers --feed venue streams; --paper keeps orders on paper); credentials "
                      "from TRADING_VENUE_API_KEY / TRADING_VENUE_SECRET / TRADING_VENUE_PASSWORD or "
                      "venue.key_file, never from the command line")
    live.add_argument("--venue-url", type=_venue_url, metavar="URL", help="send every request of the venue to this "
                      "base URL instead: a testnet, a proxy, a local double")
    live.add_argument("--venue-sandbox", action="store_true", help="trade on the exchange's testnet (ccxt sandbox)")
    live.add_argument("--sim-rate", type=_positive, metavar="TICKS_PER_S", help="simulator ticks per second")
    live.add_argument("--sim-speed", type=_positive, metavar="X", help="simulated seconds per wall second")
    _venue_feed_options(live)
    live.add_argument("--allow-fault-injection", action="store_true", help="accept 'ctl crash actor=NAME'")
    live.add_argument("--insecure-ingress", action="store_true", help="let an ingress bound off loopback accept any "
                      "publisher without CURVE (ingress.insecure)")
    _strategy_options(live)
    _common(live)

    backtest = commands.add_parser("backtest", help="replay history through the same actors",
                                   description="Replay bars from --data, else the database, else the bundled sample.")
    _replay_options(backtest)
    backtest.add_argument("--json", action="store_true", help="print the report as JSON")
    backtest.add_argument("--out", metavar="DIR", help="write trades.csv, equity.csv, report.png and report.html")
    _strategy_options(backtest)
    _common(backtest)

    _optimize_parser(commands)

    ingest = commands.add_parser("ingest", help="import historical bars into the database",
                                 description="Clean a bar file (known vendor artifacts dropped or repaired, each "
                                 "counted and its rows named) and upsert it into the database, so backtest and "
                                 "live use it.")
    ingest.add_argument("file", metavar="FILE", help="bars in .csv, .csv.gz or .parquet")
    ingest.add_argument("--symbol", required=True, help="the symbol the bars are of (picks it if the file has a "
                        "symbol column)")
    ingest.add_argument("--timeframe", type=_timeframe, help="bar length, e.g. 1m (default: inferred from the spacing)")
    _file_time_options(ingest)
    ingest.add_argument("--strict", action="store_true", help="refuse the file, naming the rows, if anything "
                        "would be cleaned; nothing is written")
    ingest.add_argument("--db", metavar="PATH", help="sqlite database (default trading.db)")
    _common(ingest)

    _data_commands(commands)

    ctl = commands.add_parser("ctl", help="talk to a running system over the control socket",
                              description="Send one command, e.g. 'ctl health' or 'ctl subscribe symbols=A,B'; "
                              "'ctl events' tails the events socket instead.")
    ctl.add_argument("cmd", metavar="COMMAND", help="ping, health, metrics, positions, orders, signals, subscribe, "
                     "unsubscribe, restart, crash, shutdown, submit, cancel, flatten (e.g. ctl submit "
                     "symbol=BTC/USDT side=buy qty=0.01 type=limit price=30000); or events")
    ctl.add_argument("args", nargs="*", metavar="KEY=VALUE", help="command arguments")
    ctl.add_argument("--json", action="store_true", help="print the raw reply as JSON (events: one JSON per line)")
    ctl.add_argument("--control", type=_endpoint, metavar="ENDPOINT", default="tcp://127.0.0.1:5556",
                     help="control endpoint")
    ctl.add_argument("--events", type=_endpoint, metavar="ENDPOINT", default="tcp://127.0.0.1:5557",
                     help="events endpoint, for 'ctl events' (default tcp://127.0.0.1:5557)")
    ctl.add_argument("--topic", default="", metavar="PREFIX", help="events: only topics starting with this, "
                     "e.g. signal, order., fill.BTCUSD, health")
    ctl.add_argument("--count", type=_count, metavar="N", help="events: stop after N events (default: until Ctrl-C)")
    ctl.add_argument("--last", type=_count, metavar="N", help="signals: how many of the latest (default 20, "
                     "at most 1,000)")
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
        "ingress.cryptofeed": args.cryptofeed, "http.listen": args.http,
        "feed.sim_rate": args.sim_rate, "feed.sim_speed": args.sim_speed,
        "control.allow_fault_injection": True if args.allow_fault_injection else None,
        "ingress.insecure": True if args.insecure_ingress else None,
        "venue.id": args.venue, "venue.url": args.venue_url, "venue.sandbox": True if args.venue_sandbox else None,
        "venue.paper": True if args.paper else None,
        **_strategy_overrides(args),
    })
    from loguru import logger

    from actors.strategy.registry import strategy_plan
    logger.info("strategy: {}", strategy_plan(settings.strategy).describe())
    markets, problem, code = _venue_feed_check(settings)
    if problem:
        return _fail(problem, code)
    if settings.feed.source == "venue":
        logger.info("market data: {}'s tickers; orders: {}", settings.venue.id,
                    settings.venue.id if settings.venue.trades else "the paper broker")
    from settings import SIM_DB, StoreSettings

    if settings.feed.source == "sim" and settings.store.db == StoreSettings().db:
        # the simulator's made-up market gets its own database: trading.db holds real history only
        settings = settings.with_values({"store.db": SIM_DB})
    try:
        checked = live_preflight(settings)  # endpoints and CURVE first: a refusal there leaves nothing behind
        if settings.venue.trades:
            from actors.venue.preflight import venue_preflight
            logger.info(venue_preflight(settings))
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
        result = run_live(settings, args.duration, stop, checked, markets)
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
    """Check ``--out`` and the database, then read the bars that ``--from``, ``--to``, ``--data`` (with
    ``--ts-label`` and ``--tz``), ``--symbols`` and ``--timeframe`` pick: (bars, where from), or the
    usage mistake in one line."""
    from actors.store.history import parse_date
    from supervisors.modes import load_backtest_bars

    problem = _out_problem(args.out) if args.out else ""
    if problem:
        return f"--out {args.out}: {problem}"
    if not args.data and (args.tz or args.ts_label != "close"):
        return "--ts-label and --tz say how to read a --data FILE; give one, or leave them out"
    _check_database(settings)
    start = parse_date(args.start, "--from")
    end = parse_date(args.end, "--to", end_of_day=True) if args.end else None
    if end is not None and end <= start:
        return f"--to {args.end} is before --from {args.start}"
    return load_backtest_bars(args.data, settings.store.db, start, end, args.symbols, args.timeframe,
                              args.ts_label, args.tz)


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
    from actors.executor.output import backtest_document, strategy_rows, write_report
    symbols = [str(s) for s in bars["symbol"].unique()]
    document = backtest_document(report, strategy_rows(strategy_plan(settings.strategy), symbols), summary)
    if args.out:
        written = write_report(args.out, document, bars, report["equity_ts"], report["equity"],
                               f"Backtest: {', '.join(symbols)} ({source})")
        logger.info("report written: {}", ", ".join(str(p) for p in written))
    if args.json:
        print(json.dumps(document, indent=2))
    else:
        _print_backtest(summary, source, _series_used(bars, settings.store.db if source == f"database {settings.store.db}" else None))
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
    from supervisors.grid import GridError, check_axes, metric_named, parse_axis
    from supervisors.optimize import optimize, plan_grid
    from supervisors.optimize_output import report_lines, write_results

    settings = _settings(args, {"store.db": args.db, "strategy.name": args.strategy, "strategy.file": "",
                                "strategy.params": tuple(args.param or ()) if args.param or args.strategy else None})
    spec = strategy_plan(settings.strategy).default
    fixed = {text.partition("=")[0].strip() for text in settings.strategy.params}
    try:
        metric = metric_named(args.metric)
        axes = check_axes([parse_axis(text) for text in args.grid], dict(spec.params), spec.name)
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


def _series_used(bars: Any, db: str | None) -> str:
    """The replayed series, with the source the database ``db`` records for each (None: not from it)."""
    from actors.store.catalog import series_used
    from actors.store.reader import StoreReader

    if db is None:
        return series_used(bars)
    with StoreReader(db) as reader:
        return series_used(bars, reader if reader.present else None)


def _print_backtest(s: dict[str, Any], source: str, series: str) -> None:
    print(f"backtest {s['start']} .. {s['end']}  ({s['bars']:,} bar closes, source: {source})")
    print(f"  series        {series}")
    def num(value: float | None, spec: str) -> str:
        return "n/a" if value is None else format(value, spec)

    print(f"  bars          {s['bars_read']:,} read, {s['bars_processed']:,} processed")
    print(f"  trades        {s['trades']}  (win rate {s['win_rate_pct']:.1f}%, profit factor "
          f"{num(s['profit_factor'], '.2f')}, average {num(s['avg_trade_pct'], '+.2f')}%, open positions "
          f"{s['open_positions']})")
    cagr = "n/a" if s["cagr_pct"] is None else f"{s['cagr_pct']:+.2f}%"
    print(f"  return        {s['total_return_pct']:+.2f}%  (CAGR {cagr})")
    print(f"  risk          Sharpe {num(s['sharpe'], '.2f')}  Sortino {num(s['sortino'], '.2f')}  "
          f"exposure {num(s['exposure_pct'], '.1f')}%")
    print(f"  max drawdown  {s['max_drawdown_pct']:.2f}%  (lasting {s['max_drawdown_days']:.1f} days)")
    print(f"  final equity  {s['final_equity']:,.2f}  (from {s['initial_cash']:,.2f})")
    holding = "n/a" if s["avg_holding_hours"] is None else f"{s['avg_holding_hours']:,.1f} hours"
    print(f"  fees          {s['fees']:,.2f}  (average holding time {holding})")


def cmd_ingest(args: argparse.Namespace) -> int:
    """Import a bar file into the database and say what was imported."""
    from actors.store.ingest import ingest_file

    settings = _settings(args, {"store.db": args.db})
    _check_database(settings)
    print(ingest_file(args.file, settings.store.db, args.symbol, args.timeframe, args.ts_label, tz=args.tz,
                      strict=args.strict))
    return EXIT_OK


def cmd_download(args: argparse.Namespace) -> int:
    """Download history from a venue and say what was stored."""
    from actors.store.download import download
    from actors.store.exchange import Retry
    from actors.store.history import parse_date

    settings = _settings(args, {"store.db": args.db})
    start = parse_date(args.start, "--from")
    end = parse_date(args.end, "--to", end_of_day=True) if args.end else None
    if end is not None and end <= start:
        return _fail(f"--to {args.end} is before --from {args.start}", EXIT_USAGE)
    _check_database(settings)
    try:
        report = download(args.venue, args.symbols, args.timeframe, start, end, settings.store.db, args.venue_url,
                          Retry(retries=args.retries, backoff_s=args.backoff), args.timeout)
    except KeyboardInterrupt:
        return _fail("interrupted: the pages fetched so far are stored; the same command resumes", 130)
    print(report)
    return EXIT_OK


def cmd_data(args: argparse.Namespace) -> int:
    """List, inspect, export or delete stored series."""
    from actors.store import catalog
    from actors.store.connection import stored
    from actors.store.history import iso_utc
    from actors.store.reader import StoreReader
    from actors.store.writer import Database

    settings = _settings(args, {"store.db": args.db})
    db = settings.store.db
    if args.action == "delete":
        if not stored(db):
            return _fail(f"no database at {db}")
        _check_database(settings)
        writer = Database(db)
        try:
            deleted = catalog.delete_series(writer, args.symbol, args.timeframe)
        finally:
            writer.close()
        if args.json:
            print(json.dumps([s.as_json() for s in deleted], indent=2))
        for s in deleted if not args.json else ():
            print(f"deleted {s.rows:,} {s.timeframe} bars of {s.symbol} ({iso_utc(s.first_ts)} .. "
                  f"{iso_utc(s.last_ts)}, source {s.source or '-'}) from {db}")
        return EXIT_OK
    with StoreReader(db) as reader:
        if args.action == "list":
            series = catalog.list_series(reader)
            if args.json:
                print(json.dumps([s.as_json() for s in series], indent=2))
            elif not series:
                print(f"no bars stored in {db}")
            else:
                print(catalog.text_table(
                    ["symbol", "timeframe", "first", "last", "rows", "gaps", "missing", "source"],
                    [[s.symbol, s.timeframe, iso_utc(s.first_ts), iso_utc(s.last_ts), f"{s.rows:,}", f"{s.gaps:,}",
                      f"{s.missing:,}", s.source or "-"] for s in series], right={4, 5, 6}))
        elif args.action == "gaps":
            series, gaps = catalog.find_gaps(reader, args.symbol, args.timeframe)
            if args.json:
                print(json.dumps({"series": series.as_json(), "gaps": [g.as_json() for g in gaps]}, indent=2))
            else:
                print(f"{series.symbol} {series.timeframe}: {len(gaps):,} gap(s), {series.missing:,} bar(s) missing "
                      f"between {iso_utc(series.first_ts)} and {iso_utc(series.last_ts)}")
                if gaps:
                    print(catalog.text_table(["after", "before", "missing"], [
                        [iso_utc(g.after_ts), iso_utc(g.before_ts), f"{g.missing:,}"] for g in gaps], right={2}))
        else:
            series, path = catalog.export_series(reader, args.symbol, args.out, args.timeframe)
            print(f"exported {series.rows:,} {series.timeframe} bars of {series.symbol} to {path}")
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


def cmd_ctl(args: argparse.Namespace) -> int:
    """Send one control command and print the reply (a table where there is one); or tail the events."""
    from actors.control.client import request
    from actors.control.tables import render

    for option, only in (("count", "events"), ("topic", "events"), ("last", "signals")):
        if getattr(args, option) and args.cmd != only:
            return _fail(f"--{option} is for 'ctl {only}' only", EXIT_USAGE)
    if args.cmd == "events":
        return _ctl_events(args)
    message: dict[str, Any] = {"cmd": args.cmd}
    for pair in args.args:
        key, eq, value = pair.partition("=")
        if not eq or not key:
            return _fail(f"argument {pair!r} is not KEY=VALUE", EXIT_USAGE)
        message[key] = _value(value)
    if args.last:
        message["last"] = args.last
    try:
        reply = request(args.control, message, args.timeout, args.server_key, args.client_key)
    except (TimeoutError, ValueError) as exc:
        return _fail(str(exc))
    text = render(args.cmd, reply) if reply.get("ok") and not args.json else None
    if args.json:
        print(json.dumps(reply, indent=2, sort_keys=True))
    elif not reply.get("ok"):
        pass
    elif text is not None:
        print(text)
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


def _ctl_events(args: argparse.Namespace) -> int:
    """Print one line per event (one JSON object with --json) until --count events or Ctrl-C."""
    from actors.control.client import events
    from actors.control.tables import event_line

    if args.args:
        return _fail(f"'ctl events' takes no KEY=VALUE arguments (got {args.args[0]!r}); use --topic", EXIT_USAGE)
    try:  # from the first line on: Ctrl-C as soon as it is read is the normal end
        sys.stderr.write(f"listening to {args.events}" + (f" for topics {args.topic}*" if args.topic else "")
                         + (" (Ctrl-C to stop)" if args.count is None else "") + "\n")
        for topic, body in events(args.events, args.topic, args.count, args.server_key, args.client_key):
            line = json.dumps({"topic": topic, "event": body}, default=str) if args.json else event_line(topic, body)
            print(line, flush=True)
    except ValueError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        pass  # the way to stop a tail
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
                "download": cmd_download, "data": cmd_data,
                "feed-sim": cmd_feed_sim, "keys": cmd_keys, "optimize": cmd_optimize}
    try:
        return handlers[args.command](args)
    except TradingError as exc:  # settings, data, storage, ...: each message is one line for the user
        return _fail(str(exc))
    except KeyboardInterrupt:
        return _fail("interrupted", 130)


if __name__ == "__main__":
    sys.exit(main())
