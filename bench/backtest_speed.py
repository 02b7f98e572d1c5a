"""Backtest speed of the canonical sma_cross 10/30: our actors against backtesting.py, backtrader, vectorbt.

    python -m bench.backtest_speed [--runs 3] [--peer-bars 200000] [--seed 7]

Every engine gets the same deterministic random walk of one-minute bars (numpy default_rng(seed), open =
previous close, 0.07% per minute). Rule: fast SMA 10, slow SMA 30 on close; buy on a cross up while flat,
sell all on a cross down; market orders fill at the next bar's open; commission 0.1% per side; long only.
Each measurement runs --runs times; the table shows the median bars/s and, in brackets, every run.

  ours 1 x 1,000,000       run_backtest(settings, bars, db, progress=False) in-process on 1,000,000 bars of
                           one symbol. Only that call is timed (actors start, replay, drain, report, stop);
                           not data generation, imports or settings.
  ours 10 x 100,000        the same on 10 symbols x 100,000 bars (1,000,000 bars in all).
  ours run.py (subprocess) `python run.py backtest --from 2024-01-01 --db DB` on the 1 x 1,000,000 bars stored
                           in sqlite (timeframe 1m): wall clock from process start to the report's last line
                           (interpreter start, imports, reading the DB, replay, printing).
  ours first N             run_backtest on the first --peer-bars bars: the peers' data, for the trade counts.
  peers                    each on the first --peer-bars bars (all with --peer-bars 0), its loop only (see
                           bench/peers.py); ours/theirs = bars/s of "ours 1 x 1,000,000" / theirs.
  trades                   closed trades; a position still open at the end is not counted.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from actors.store.writer import Database  # noqa: E402
from bench.machine import describe  # noqa: E402
from bench.peers import PEERS, PeerMissing, peer_version  # noqa: E402
from messages.market import BarFrame  # noqa: E402
from settings import Settings, load_settings  # noqa: E402
from supervisors.logs import setup_logging  # noqa: E402
from supervisors.modes import run_backtest  # noqa: E402

T0 = int(pd.Timestamp("2024-01-01", tz="UTC").value)  # the first bar closes at 00:01
MINUTE = 60_000_000_000
SIGMA = 0.0007  # per-minute volatility of the close (0.07%)
COLUMNS = ["symbol", "timeframe", "ts", "open", "high", "low", "close", "volume"]
ONE_SYMBOL, SYMBOLS, PER_SYMBOL = 1_000_000, 10, 100_000


def random_walk(n: int, rng: np.random.Generator, symbol: str) -> pd.DataFrame:
    """``n`` one-minute bars of a driftless geometric random walk from 100, labelled by close time."""
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, SIGMA, n)))
    open_ = np.r_[100.0, close[:-1]]
    wick = np.abs(rng.normal(0.0, SIGMA / 2, (2, n)))
    return pd.DataFrame({
        "symbol": symbol, "timeframe": "1m", "ts": T0 + MINUTE * np.arange(1, n + 1, dtype=np.int64),
        "open": open_, "high": np.maximum(open_, close) * (1 + wick[0]),
        "low": np.minimum(open_, close) * (1 - wick[1]), "close": close,
        "volume": np.round(rng.gamma(2.0, 50.0, n), 4),
    })[COLUMNS]


def many_symbols(seed: int) -> pd.DataFrame:
    """10 independent walks of 100,000 bars, interleaved by time as a replay expects."""
    frames = [random_walk(PER_SYMBOL, np.random.default_rng([seed, i]), f"SYM{i:02d}") for i in range(SYMBOLS)]
    return pd.concat(frames).sort_values(["ts", "symbol"], kind="stable").reset_index(drop=True)


def write_db(bars: pd.DataFrame, path: Path, batch: int = 100_000) -> None:
    """Store the bars through the store's API, as ``run.py ingest`` does: upserts in batches, one
    transaction each, then the columnar copy brought up to date."""
    db = Database(path)
    try:
        for (symbol, timeframe), series in bars.groupby(["symbol", "timeframe"], sort=False):
            for start in range(0, len(series), batch):
                chunk = series.iloc[start:start + batch]
                db.write_frames([BarFrame.from_columns(symbol, timeframe, **{
                    k: chunk[k].to_numpy() for k in ("ts", "open", "high", "low", "close", "volume")})])
                db.commit()
        db.refresh_bar_copy()
    finally:
        db.close()


def peer_input(bars: pd.DataFrame) -> pd.DataFrame:
    """OHLCV indexed by bar open time (naive UTC), as the peers label bars."""
    frame = bars[["open", "high", "low", "close", "volume"]].copy()
    frame.index = pd.DatetimeIndex(pd.to_datetime(bars["ts"].to_numpy() - MINUTE).tz_localize(None), name="time")
    return frame


def ours(settings: Settings, bars: pd.DataFrame, tmp: Path) -> tuple[float, int]:
    """Seconds of one in-process run_backtest call on a fresh database, and its closed trades."""
    db = tmp / f"replay-{time.monotonic_ns()}.db"
    start = time.perf_counter()
    report = run_backtest(settings, bars, str(db), progress=False)
    seconds = time.perf_counter() - start
    for leftover in tmp.glob(db.name + "*"):
        leftover.unlink()
    return seconds, int(report["summary"]["trades"])


def whole_command(db: Path) -> tuple[float, int]:
    """Wall seconds from starting ``run.py backtest`` to its report's last line, and its trade count."""
    command = [sys.executable, "run.py", "backtest", "--from", "2024-01-01", "--db", str(db)]
    trades, seconds = -1, None
    with tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=err, text=True) as proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                words = line.split()
                if words[:1] == ["trades"]:
                    trades = int(words[1].replace(",", ""))
                elif words[:2] == ["final", "equity"]:
                    seconds = time.perf_counter() - start
        if proc.returncode != 0 or seconds is None:
            err.seek(0)
            raise RuntimeError(f"{' '.join(command)} failed ({proc.returncode}): {err.read()[-2000:]}")
    return seconds, trades


def repeat(what: str, runs: int, once: Callable[[], tuple[float, int]]) -> tuple[list[float], int]:
    """Run ``once`` ``runs`` times; the seconds of each run and the (last) trade count."""
    seconds, trades = [], -1
    for i in range(runs):
        print(f"  {what}: run {i + 1}/{runs}", file=sys.stderr, flush=True)
        took, trades = once()
        seconds.append(took)
    return seconds, trades


def rates(bars: int, seconds: list[float]) -> tuple[float, str]:
    """Median bars/s and every run's bars/s, compact."""
    each = [bars / s for s in seconds]
    return statistics.median(each), "[" + " ".join(f"{r / 1e3:,.0f}k" for r in each) + "]"


def row(label: str, bars: int, seconds: list[float], trades: int, ratio: str = "") -> str:
    median, each = rates(bars, seconds)
    return f"  {label:<32}{bars:>10,}{median:>12,.0f}  {each:<24}{trades:>8,}{ratio:>11}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="repeats of every measurement (median shown)")
    parser.add_argument("--peer-bars", type=int, default=200_000,
                        help="peers run on the first N bars of the 1M series (0 = all of them)")
    parser.add_argument("--seed", type=int, default=7, help="random-walk seed")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be >= 1")
    setup_logging("WARNING")
    began = time.perf_counter()
    settings = load_settings(env={})
    single = random_walk(ONE_SYMBOL, np.random.default_rng(args.seed), "SYM")
    multi = many_symbols(args.seed)
    n_peer = len(single) if args.peer_bars <= 0 or args.peer_bars >= len(single) else args.peer_bars
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-backtest-") as tmp_name:
        tmp = Path(tmp_name)
        one_s, one_trades = repeat("ours 1x1M", args.runs, lambda: ours(settings, single, tmp))
        ours_rate = rates(len(single), one_s)[0]
        lines.append(row("ours 1 x 1,000,000 (replay)", len(single), one_s, one_trades))
        multi_s, multi_trades = repeat("ours 10x100k", args.runs, lambda: ours(settings, multi, tmp))
        lines.append(row("ours 10 x 100,000 (replay)", len(multi), multi_s, multi_trades))
        db = tmp / "bars.db"
        write_db(single, db)
        cmd_s, cmd_trades = repeat("run.py backtest", args.runs, lambda: whole_command(db))
        lines.append(row("ours run.py backtest (process)", len(single), cmd_s, cmd_trades))
        if n_peer < len(single):
            head = single.iloc[:n_peer].reset_index(drop=True)
            same_s, same_trades = repeat(f"ours first {n_peer:,}", args.runs, lambda: ours(settings, head, tmp))
            lines.append(row(f"ours first {n_peer:,} (replay)", n_peer, same_s, same_trades))
        else:
            same_trades = one_trades
    frame = peer_input(single.iloc[:n_peer])
    counts = [f"ours {same_trades:,}"]
    for label, package, runner in PEERS:
        version = peer_version(package)
        if version is None:
            lines.append(f"  {label}: not installed (pip install -r requirements-bench.txt)")
            continue
        try:
            peer_s, peer_trades = repeat(label, args.runs, lambda runner=runner: runner(frame))
        except PeerMissing as exc:
            lines.append(f"  {label}: not installed ({exc})")
            continue
        ratio = f"{ours_rate / rates(n_peer, peer_s)[0]:.2f}x"
        lines.append(row(f"{label} {version}", n_peer, peer_s, peer_trades, ratio))
        counts.append(f"{label} {peer_trades:,}")

    print(describe())
    print(f"sma_cross 10/30 on close, market orders at the next open, 0.1% commission per side, long only; "
          f"random walk seed {args.seed}, {SIGMA:.2%}/min, one-minute bars; {args.runs} run(s) per figure")
    print(f"  {'engine / workload':<32}{'bars':>10}{'bars/s':>12}  {'runs (bars/s)':<24}{'trades':>8}{'ours/them':>11}")
    print("\n".join(lines))
    wall = statistics.median(cmd_s)
    print(f"notes: replay rows time the run_backtest(progress=False) call only (actors up, replay, report, down);\n"
          f"  run.py row = process wall clock from start to the printed report, median {wall:.2f} s "
          f"({', '.join(f'{s:.2f}' for s in cmd_s)});\n"
          f"  peers: loop only, on the first {n_peer:,} bars of the 1 x 1,000,000 series; ours/them = ours "
          f"1 x 1,000,000 bars/s over theirs;\n  vectorbt: init cash 100,000 (its default is 100), numba "
          f"compiled in an untimed warm-up; backtrader/backtesting.py: cash 1e9 (fixed/whole-unit sizing)")
    print(f"closed trades on the same first {n_peer:,} bars: {', '.join(counts)}")
    print(f"whole benchmark: {time.perf_counter() - began:.1f} s")


if __name__ == "__main__":
    main()
