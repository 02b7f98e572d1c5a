"""The latest signals and equity marks the dashboard shows, read through StoreReader from a real file."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors.store.reader import StoreReader
from actors.store.writer import Database
from messages.trading import Signal

pytestmark = pytest.mark.timeout(10)

T0 = 1_704_067_200_000_000_000
M = 60_000_000_000


def signal(i: int, symbol: str = "BTCUSD") -> Signal:
    return Signal("sma_cross", symbol, "1m", T0 + i * M, "buy" if i % 2 else "sell", 100.0 + i,
                  "fast crossed above slow", (("sma_10", 100.5 + i), ("prob_up", float("nan"))), (("fast", 10),))


def test_the_latest_signals_come_newest_first_with_their_inputs_and_only_of_the_run(tmp_path: Path) -> None:
    db = Database(tmp_path / "s.db")
    db.write_signals("live", [signal(i) for i in range(30)] + [signal(29, "ETHUSD")])
    db.write_signals("backtest", [signal(100)])
    db.commit()
    db.close()
    with StoreReader(tmp_path / "s.db") as store:
        latest = store.recent_signals("live", 5)[::-1]  # oldest first: reversed, newest first
    assert [(s["ts"], s["symbol"]) for s in latest] == [(T0 + 29 * M, "ETHUSD"), (T0 + 29 * M, "BTCUSD"),
                                                        (T0 + 28 * M, "BTCUSD"), (T0 + 27 * M, "BTCUSD"),
                                                        (T0 + 26 * M, "BTCUSD")]
    assert latest[1] == {"strategy": "sma_cross", "symbol": "BTCUSD", "timeframe": "1m", "ts": T0 + 29 * M,
                         "side": "buy", "price": 129.0, "reason": "fast crossed above slow",
                         "inputs": {"sma_10": 129.5, "prob_up": None}, "params": latest[1]["params"]}


def test_the_equity_tail_is_the_latest_marks_oldest_first(tmp_path: Path) -> None:
    db = Database(tmp_path / "e.db")
    db.write_equity("live", [(T0 + i * M, 100_000.0 + i) for i in range(10)])
    db.write_equity("backtest", [(T0 + 50 * M, 1.0)])
    db.commit()
    db.close()
    with StoreReader(tmp_path / "e.db") as store:
        assert store.equity_tail("live", 3) == ([T0 + 7 * M, T0 + 8 * M, T0 + 9 * M], [100_007.0, 100_008.0, 100_009.0])
        assert store.equity_tail("paper", 3) == ([], [])


def test_a_database_not_there_yet_has_no_signals_and_no_equity(tmp_path: Path) -> None:
    with StoreReader(tmp_path / "missing.db") as store:
        assert store.recent_signals("live", 5) == []
        assert store.equity_tail("live", 5) == ([], [])
    assert not (tmp_path / "missing.db").exists()
