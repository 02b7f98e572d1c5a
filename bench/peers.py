"""Peer backtesters running the canonical ``sma_cross`` 10/30 (used by ``bench.backtest_speed``).

Each runner takes the same bars (a DataFrame indexed by bar *open* time, columns open/high/low/close/volume)
and returns ``(seconds, closed_trades)`` for the timed part only. Every peer is optional: ``run_peer`` raises
``PeerMissing`` when its package is not installed.

Rule (as ours): cross up = fast[t] > slow[t] and fast[t-1] < slow[t-1] (cross down mirrored); buy while flat,
sell all while long, market orders fill at bar t+1's open, commission 0.1% per side, long only.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from importlib import metadata

import pandas as pd

__all__ = ["PEERS", "PeerMissing", "peer_version"]

FAST, SLOW, FEE, CASH = 10, 30, 0.001, 100_000.0


class PeerMissing(RuntimeError):
    """The peer's package is not installed."""


def peer_version(package: str) -> str | None:
    """The installed version of ``package``, or None."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def run_backtesting_py(bars: pd.DataFrame) -> tuple[float, int]:
    """backtesting.py: ``Backtest.run()`` timed (includes its indicator pass); Backtest built outside."""
    try:
        from backtesting import Backtest, Strategy
        from backtesting.lib import crossover
        from backtesting.test import SMA
    except ImportError as exc:
        raise PeerMissing(str(exc)) from None

    class SmaCross(Strategy):
        def init(self) -> None:
            self.fast = self.I(SMA, self.data.Close, FAST)
            self.slow = self.I(SMA, self.data.Close, SLOW)

        def next(self) -> None:
            if crossover(self.fast, self.slow) and not self.position:
                self.buy()
            elif crossover(self.slow, self.fast) and self.position:
                self.position.close()

    frame = bars.rename(columns=str.capitalize)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # cash 1e9: whole-unit sizing never runs short of cash at the next open (trade count is what matters)
        test = Backtest(frame, SmaCross, cash=1e9, commission=FEE, trade_on_close=False, finalize_trades=False)
        start = time.perf_counter()
        stats = test.run()
        seconds = time.perf_counter() - start
    return seconds, len(stats._trades)


def run_backtrader(bars: pd.DataFrame) -> tuple[float, int]:
    """backtrader: ``cerebro.run()`` timed (preload, indicators, the bar loop); the feed is built outside."""
    try:
        import backtrader as bt
    except ImportError as exc:
        raise PeerMissing(str(exc)) from None

    class SmaCross(bt.Strategy):
        def __init__(self) -> None:
            fast = bt.indicators.SMA(self.data.close, period=FAST)
            slow = bt.indicators.SMA(self.data.close, period=SLOW)
            self.cross = bt.indicators.CrossOver(fast, slow)
            self.closed = 0

        def next(self) -> None:
            if self.cross[0] > 0 and not self.position:
                self.buy()  # market: fills at the next bar's open
            elif self.cross[0] < 0 and self.position:
                self.close()

        def notify_trade(self, trade: bt.Trade) -> None:
            if trade.isclosed:
                self.closed += 1

    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(bt.feeds.PandasData(dataname=bars, openinterest=None))
    cerebro.addstrategy(SmaCross)
    cerebro.broker.setcash(1e9)  # a fixed stake of 1,000 units is always affordable
    cerebro.broker.setcommission(commission=FEE)
    cerebro.addsizer(bt.sizers.FixedSize, stake=1000)
    start = time.perf_counter()
    strategy = cerebro.run()[0]
    return time.perf_counter() - start, strategy.closed


def run_vectorbt(bars: pd.DataFrame) -> tuple[float, int]:
    """vectorbt: MA, crossings and ``Portfolio.from_signals`` timed, after an untimed numba warm-up.

    Signals are shifted one bar and filled at ``price=open`` (next open); init cash 100,000 (vectorbt's
    default is 100), all cash per entry, fractional size."""
    try:
        import vectorbt as vbt
    except ImportError as exc:
        raise PeerMissing(str(exc)) from None

    def once(frame: pd.DataFrame) -> int:
        fast = vbt.MA.run(frame["close"], FAST)
        slow = vbt.MA.run(frame["close"], SLOW)
        entries = fast.ma_crossed_above(slow).vbt.fshift(1).fillna(False).astype(bool)
        exits = fast.ma_crossed_below(slow).vbt.fshift(1).fillna(False).astype(bool)
        pf = vbt.Portfolio.from_signals(frame["close"], entries, exits, price=frame["open"], fees=FEE,
                                        init_cash=CASH, freq="1min")
        return int(pf.trades.closed.count())

    once(bars.iloc[:1000])  # compile the numba kernels outside the timing
    start = time.perf_counter()
    closed = once(bars)
    return time.perf_counter() - start, closed


# (label, package for its version, runner)
PEERS: tuple[tuple[str, str, Callable[[pd.DataFrame], tuple[float, int]]], ...] = (
    ("backtesting.py", "backtesting", run_backtesting_py),
    ("backtrader", "backtrader", run_backtrader),
    ("vectorbt", "vectorbt", run_vectorbt),
)

