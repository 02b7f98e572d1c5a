"""Brackets, shorts and trailing stops give the same closed trades (times and prices) as backtesting.py
on real bars: GOOG daily 2004-2013 (shipped with backtesting.py) and the bundled 2024 hourly sample.

Each strategy enters on a 10/30 SMA cross and leaves on the opposite cross unless a protective order
fills first: a stop-loss 3% and a take-profit 6% from the decision's close (long, and short mirrored),
or a trailing stop 5% under the highest high since entry. backtesting.py gets the same rules through
``sl=``/``tp=`` and, for the trail, a ``trade.sl`` raised at each bar's close.
"""

from __future__ import annotations

import sqlite3
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from actors.store.history import load_bar_file
from settings import SAMPLE_DATA, load_settings
from supervisors.modes import run_backtest

backtesting = pytest.importorskip("backtesting")
from backtesting import Backtest  # noqa: E402
from backtesting import Strategy as PeerStrategy  # noqa: E402
from backtesting.lib import crossover  # noqa: E402
from backtesting.test import GOOG, SMA  # noqa: E402

pytestmark = pytest.mark.timeout(120)

HEAD = '''from actors.strategy import Strategy


class {name}(Strategy):
    params = {{"fast": 10, "slow": 30}}
    indicators = ("sma:{{fast}}", "sma:{{slow}}")
    last = None

    def next(self, bar, ind, position):
        fast, slow = ind["sma_%d" % self.fast], ind["sma_%d" % self.slow]
        last, self.last = self.last, (fast, slow)
        if last is None:
            return None
        up, down = last[0] < last[1] and fast > slow, last[0] > last[1] and fast < slow
'''
OURS = {
    "Bracket": HEAD + '''        if up and not position:
            return self.buy(stop_loss=bar.close * 0.97, take_profit=bar.close * 1.06)
        if down and position:
            return "sell"
        return None
''',
    "Short": HEAD + '''        if down and not position:
            return self.sell(stop_loss=bar.close * 1.03, take_profit=bar.close * 0.94)
        if up and position:
            return "buy"
        return None
''',
    "Trail": HEAD + '''        if up and not position:
            return self.buy(trail=0.05)
        if down and position:
            return "sell"
        return None
''',
}


class Peer(PeerStrategy):
    kind = "Bracket"

    def init(self) -> None:
        self.fast = self.I(SMA, self.data.Close, 10)
        self.slow = self.I(SMA, self.data.Close, 30)

    def next(self) -> None:
        close = self.data.Close[-1]
        up, down = crossover(self.fast, self.slow), crossover(self.slow, self.fast)
        if self.kind == "Trail":
            for trade in self.trades:  # the highest high since entry, this bar's included, from the next bar on
                best = max(trade.entry_price, float(np.max(self.data.High[trade.entry_bar:])))
                trade.sl = max(trade.sl or 0.0, best * 0.95)
        if self.kind == "Short":
            if down and not self.position:
                self.sell(sl=close * 1.03, tp=close * 0.94)
            elif up and self.position:
                self.position.close()
        elif up and not self.position:
            self.buy(**({"sl": close * 0.97, "tp": close * 1.06} if self.kind == "Bracket" else {}))
        elif down and self.position:
            self.position.close()


def iso(value: object) -> str:
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.isoformat().replace("+00:00", "Z")


def peer_trades(bars: pd.DataFrame, kind: str) -> list[tuple[str, float, str, float]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = Backtest(bars, type(kind, (Peer,), {"kind": kind}), cash=1e9, commission=0.001,
                         trade_on_close=False, finalize_trades=False).run()
    t = stats._trades
    return [(iso(a), float(b), iso(c), float(d))
            for a, b, c, d in zip(t.EntryTime, t.EntryPrice, t.ExitTime, t.ExitPrice, strict=True)]


def our_trades(bars: pd.DataFrame, kind: str, tmp_path: Path) -> tuple[list[tuple[str, float, str, float]], set[str]]:
    """Our closed trades, and the kinds of exit filled (``sl``, ``tp``, ``trail``, ``sell``, ``buy``)."""
    path = tmp_path / "peer_strategy.py"
    path.write_text(OURS[kind].format(name=kind))
    settings = load_settings(env={}, overrides={"strategy.name": f"{path}:{kind}",
                                                "executor.allow_short": kind == "Short"})
    db = tmp_path / "ours.db"
    report = run_backtest(settings, bars, str(db), progress=False)
    with sqlite3.connect(db) as conn:
        exits = {cid.rsplit(":", 1)[-1] for (cid,) in conn.execute("SELECT client_id FROM fills")}
    return [(t["entry_time"], t["entry_price"], t["exit_time"], t["exit_price"]) for t in report["trades"]], exits


def goog(tmp_path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    path = tmp_path / "goog.csv"
    real = GOOG.copy()
    real.index = real.index.tz_localize("UTC") + pd.Timedelta(days=1)  # our ts is the close: the next midnight
    real.rename(columns=str.lower).rename_axis("ts").to_csv(path)
    return load_bar_file(path, symbol="GOOG"), GOOG


def sample(symbol: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    ours = load_bar_file(SAMPLE_DATA, symbol=symbol)
    theirs = ours.copy()
    theirs.index = pd.to_datetime(theirs["ts"], utc=True) - pd.Timedelta(hours=1)  # the peer labels a bar by its open
    return ours, theirs.rename(columns=str.capitalize)[["Open", "High", "Low", "Close", "Volume"]]


@pytest.mark.parametrize("kind", ["Bracket", "Short", "Trail"])
@pytest.mark.parametrize("data", ["GOOG", "SOLUSD"])
def test_same_trades_as_backtesting_py_with_protective_orders(kind: str, data: str, tmp_path: Path) -> None:
    ours_in, theirs_in = goog(tmp_path) if data == "GOOG" else sample(data)
    ours, exits = our_trades(ours_in, kind, tmp_path)
    theirs = peer_trades(theirs_in, kind)
    assert len(ours) > 30
    # the protective orders did the exiting, not only the crosses
    assert {"Bracket": {"sl", "tp"}, "Short": {"sl", "tp"}, "Trail": {"trail"}}[kind] <= exits
    assert ours == theirs
