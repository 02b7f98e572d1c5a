"""The cleaning path every bar file goes through: each class of artifact dropped or repaired and named,
rounding noise left alone, the grid of the exchange's time zone, gaps, and strict refusal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from actors.store.cleaning import TOLERANCE, check_zone, clean_bars, close_times, find_gaps, format_time
from actors.store.history import load_bar_file, read_bar_file
from supervisors.errors import DataError

pytestmark = pytest.mark.timeout(30)

H = 3_600 * 10**9
DAY = 24 * H
T0 = pd.Timestamp("2024-01-01T00:00:00Z").value


def frame(rows: list[tuple[int, float, float, float, float, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["ts", "open", "high", "low", "close", "volume"])


def hourly(n: int) -> list[tuple[int, float, float, float, float, float]]:
    return [(T0 + i * H, 100.0 + i, 102.0 + i, 99.0 + i, 101.0 + i, 5.0) for i in range(n)]


def test_a_clean_series_passes_unchanged_with_close_times_and_a_zero_for_every_class() -> None:
    rows = hourly(5)
    out, report = clean_bars(frame(rows), "1h", ts_label="open")
    assert out["ts"].tolist() == [T0 + (i + 1) * H for i in range(5)]
    assert out[["open", "high", "low", "close", "volume"]].values.tolist() == [list(r[1:]) for r in rows]
    assert not report.cleaned and set(report.counts.values()) == {0}
    assert (report.rows_in, report.rows_out, report.gaps.count) == (5, 5, 0)
    assert str(report).splitlines()[0] == "cleaning bars: 1h (UTC): 5 rows read, 5 bars kept"


def test_bad_prices_and_volumes_are_dropped_and_named_by_reason() -> None:
    rows = hourly(6)
    rows[1] = (rows[1][0], np.nan, 102.0, 99.0, 101.0, 5.0)
    rows[2] = (rows[2][0], 0.0, 102.0, 0.0, 101.0, 5.0)
    rows[3] = (rows[3][0], 100.0, np.inf, 99.0, 101.0, 5.0)
    rows[4] = (rows[4][0], 100.0, 102.0, 99.0, 101.0, -1.0)
    out, report = clean_bars(frame(rows), "1h", lines=np.arange(2, 8))
    assert out["ts"].tolist() == [T0, T0 + 5 * H]
    assert report.counts["bad_values"] == 4
    assert report.problems() == ("missing or non-numeric price/volume at rows 3; infinite price/volume at rows 5; "
                                 "price <= 0 at rows 4; negative volume at rows 6")


def test_rows_off_the_grid_are_dropped_but_a_series_mostly_off_it_is_refused() -> None:
    rows = hourly(6)
    rows.insert(3, (T0 + 2 * H + 62 * 10**9, 101.0, 101.0, 101.0, 101.0, 0.0))   # a vendor's stub at 02:01:02
    out, report = clean_bars(frame(rows), "1h", ts_label="open", lines=np.arange(2, 9))
    assert len(out) == 6 and report.counts["off_grid"] == 1
    assert report.problems() == "bar open time not on a whole 1h boundary (UTC) at rows 5"
    shifted = [(t + 30 * 60 * 10**9, *rest) for t, *rest in hourly(6)]           # every bar at :30
    with pytest.raises(DataError, match=r"6 of 6 bars are off the 1h grid of UTC .* name it with --tz ZONE"):
        clean_bars(frame(shifted), "1h")


def test_exact_duplicates_keep_one_copy_and_conflicts_keep_the_last_row_of_their_time() -> None:
    rows = hourly(4)
    fixed = (rows[1][0], 101.0, 103.5, 100.0, 103.0, 9.0)
    rows += [rows[0], fixed, rows[1], fixed]     # rows 6: copy of 2; 7, 9: a correction of 3; 8: 3 again
    out, report = clean_bars(frame(rows), "1h", lines=np.arange(2, 10))
    assert out["ts"].tolist() == [T0 + i * H for i in range(4)]
    assert out.iloc[1][["open", "high", "low", "close", "volume"]].tolist() == list(fixed[1:])
    assert report.counts["exact_duplicates"] == 2 and report.counts["conflicting_duplicates"] == 2
    assert report.problems() == ("exact duplicate bars at rows 6, 9; "
                                 "conflicting duplicate bars (same time, other values) at rows 3, 8")
    assert report.out_of_order == 1    # row 7, the kept correction, came after later bars


def test_rounding_noise_passes_untouched_and_a_real_error_is_repaired_by_widening() -> None:
    rows = hourly(4)
    rows[1] = (rows[1][0], 100.0, np.nextafter(101.0, 0.0), 99.0, 101.0, 5.0)    # high 1 ulp under close
    rows[2] = (rows[2][0], 100.0, 102.0, np.nextafter(100.0, 200.0), 101.0, 5.0)  # low 1 ulp over open
    rows[3] = (rows[3][0], 100.0, 101.0 / 1.0017, 99.0, 101.0, 5.0)              # high 0.17% under close
    out, report = clean_bars(frame(rows), "1h", lines=np.arange(2, 6))
    assert out["high"].iloc[1] == np.nextafter(101.0, 0.0) and out["low"].iloc[2] == np.nextafter(100.0, 200.0)
    assert (out["high"].iloc[3], out["low"].iloc[3]) == (101.0, 99.0)
    assert report.counts["ohlc_repaired"] == 1 and report.problems() == "high/low do not contain open and close at rows 5"
    inverted = frame([(T0, 100.0, 98.0, 99.0, 100.0, 1.0), (T0 + H, 100.0, 101.0, 99.0, 100.0, 1.0)])
    repaired, _ = clean_bars(inverted, "1h")
    assert repaired.iloc[0][["high", "low"]].tolist() == [100.0, 99.0]
    assert TOLERANCE == 1e-9


def test_strict_refuses_anything_that_would_be_cleaned_and_accepts_noise() -> None:
    rows = hourly(4)
    rows[1] = (rows[1][0], 100.0, np.nextafter(101.0, 0.0), 99.0, 101.0, 5.0)
    clean_bars(frame(rows), "1h", strict=True)
    rows.append(rows[2])
    with pytest.raises(DataError, match=r"^ticks\.csv: exact duplicate bars at times 2024-01-01T02:00:00Z$"):
        clean_bars(frame(rows), "1h", strict=True, source="ticks.csv")


def test_daily_bars_lie_on_local_midnight_and_close_at_the_next_one_across_dst() -> None:
    days = pd.date_range("2024-03-07", "2024-03-13", freq="D").tz_localize("America/New_York")
    rows = [(int(d.tz_convert("UTC").value), 10.0, 11.0, 9.0, 10.5, 1.0) for d in days]
    out, report = clean_bars(frame(rows), "1d", "America/New_York", ts_label="open")
    closes = [pd.Timestamp(t, tz="UTC").tz_convert("America/New_York") for t in out["ts"]]
    assert all(c.hour == 0 and c.minute == 0 for c in closes)
    assert [c.day for c in closes] == [8, 9, 10, 11, 12, 13, 14]
    # 10 March 2024 is 23 hours long in New York
    assert np.diff(out["ts"].to_numpy()).tolist() == [DAY, DAY, DAY - H, DAY, DAY, DAY]
    assert not report.cleaned
    with pytest.raises(DataError, match="off the 1d grid of UTC"):   # without the zone: all off UTC midnight
        clean_bars(frame(rows), "1d", ts_label="open")


def test_intraday_grid_follows_the_zones_wall_clock() -> None:
    opens = pd.date_range("2024-01-02 09:00", periods=4, freq="h", tz="Asia/Kolkata")   # UTC+05:30
    rows = [(int(t.tz_convert("UTC").value), 1.0, 1.0, 1.0, 1.0, 0.0) for t in opens]
    out, _ = clean_bars(frame(rows), "1h", "Asia/Kolkata", ts_label="open")
    assert len(out) == 4
    with pytest.raises(DataError, match="off the 1h grid of UTC"):
        clean_bars(frame(rows), "1h", ts_label="open")


def test_gaps_are_counted_and_the_largest_named_in_the_zone() -> None:
    closes = np.array([T0 + i * H for i in (1, 2, 5, 6, 8)], dtype=np.int64)
    gaps = find_gaps(closes, "1h")
    assert (gaps.count, gaps.missing) == (2, 3)
    assert gaps.largest == (T0 + 2 * H, T0 + 4 * H, 2)   # the last bar before closed at 02:00, the next opened at 04:00
    seoul = find_gaps(close_times(np.array([T0 - 9 * H, T0 + 3 * DAY - 9 * H]), "1d", "Asia/Seoul", "open"),
                      "1d", "Asia/Seoul")
    assert (seoul.count, seoul.missing) == (1, 2)
    assert format_time(seoul.largest[0], "Asia/Seoul") == "2024-01-02T00:00:00+09:00"
    _, report = clean_bars(frame([(int(t), 1.0, 1.0, 1.0, 1.0, 0.0) for t in closes]), "1h")
    assert str(report).splitlines()[-1] == ("  gaps                                      2  3 bars missing in all; "
                                            "the largest 2 bars, 2024-01-01T02:00:00Z .. 2024-01-01T04:00:00Z")


def test_time_zone_names_are_checked() -> None:
    assert check_zone("Asia/Seoul") == "Asia/Seoul" and check_zone(None) is None
    for bad in ("Mars/Base", "../etc/passwd", "asia seoul"):
        with pytest.raises(DataError, match="unknown time zone"):
            check_zone(bad)


# ---------------------------------------------------------------------------------------------
# Files: offsets honoured, naive times read in --tz


def write(tmp_path: Path, text: str, name: str = "bars.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_utc_offsets_are_honoured_and_naive_times_are_read_in_the_zone(tmp_path: Path) -> None:
    mixed = write(tmp_path, "Datetime,Open,High,Low,Close\n2021-10-31 00:45:00+01:00,1,1,1,1\n"
                            "2021-10-31 01:00:00+01:00,1,1,1,1\n2021-10-31 01:15:00+00:00,1,1,1,1\n")
    bars = load_bar_file(mixed, symbol="X", ts_label="open", timeframe="15m")
    assert [format_time(t) for t in bars["ts"]] == ["2021-10-31T00:00:00Z", "2021-10-31T00:15:00Z",
                                                     "2021-10-31T01:30:00Z"]
    naive = write(tmp_path, "Date,Open,High,Low,Close\n2024-03-08,1,1,1,1\n2024-03-11,1,1,1,1\n", "naive.csv")
    bars, (report,) = read_bar_file(naive, symbol="X", ts_label="open", timeframe="1d", tz="America/New_York")
    assert [format_time(t, "America/New_York") for t in bars["ts"]] == ["2024-03-09T00:00:00-05:00",
                                                                        "2024-03-12T00:00:00-04:00"]
    assert (report.gaps.count, report.gaps.missing) == (1, 2)
    # an offset wins over --tz: the same instants whatever the zone
    offsets = load_bar_file(mixed, symbol="X", ts_label="open", timeframe="15m", tz="Asia/Seoul")
    assert offsets["ts"].tolist() == load_bar_file(mixed, symbol="X", ts_label="open", timeframe="15m")["ts"].tolist()


def test_a_naive_time_that_a_dst_change_skips_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "time,open,high,low,close\n2024-03-10 01:00:00,1,1,1,1\n2024-03-10 02:00:00,1,1,1,1\n"
                           "2024-03-10 03:00:00,1,1,1,1\n")
    with pytest.raises(DataError, match=r"skipped or repeated by a DST change in America/New_York at rows 3; "):
        load_bar_file(path, symbol="X", tz="America/New_York")


def test_a_symbol_with_bars_in_several_timeframes_is_cleaned_per_timeframe(tmp_path: Path) -> None:
    path = write(tmp_path, "symbol,timeframe,ts,open,high,low,close\nA,1h,2024-01-01T01:00:00Z,1,1,1,1\n"
                           "A,1m,2024-01-01T00:01:00Z,1,1,1,1\nA,1h,2024-01-01T02:00:00Z,1,1,1,1\n")
    bars, reports = read_bar_file(path)
    assert [r.timeframe for r in reports] == ["1h", "1m"] and len(bars) == 3
