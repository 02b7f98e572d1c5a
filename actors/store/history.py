"""Historical bars from CSV or Parquet files, cleaned (actors/store/cleaning.py), as one table in the replay's format."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from actors.store.cleaning import CleaningReport, check_zone, clean_bars, format_time
from messages.market import timeframe_ns
from supervisors.errors import DataError

__all__ = ["DataError", "finest_per_symbol", "infer_timeframe", "load_bar_file", "parse_date", "read_bar_file",
           "select_range"]

_TS_NAMES = ("ts", "timestamp", "time", "date", "datetime")
_PRICES = ("open", "high", "low", "close")
_UNITS = ((86_400, "d"), (3_600, "h"), (60, "m"), (1, "s"))


def parse_date(text: str, name: str, end_of_day: bool = False) -> int:
    """Parse ``YYYY-MM-DD`` or an ISO timestamp (UTC) to ns; a bare date with ``end_of_day``
    means the following midnight."""
    try:
        stamp = pd.Timestamp(text)
    except (ValueError, TypeError) as exc:
        raise DataError(f"{name} {text!r} is not a date (expected YYYY-MM-DD or an ISO timestamp)") from exc
    if stamp is pd.NaT:
        raise DataError(f"{name} {text!r} is not a date")
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    if end_of_day and len(text.strip()) <= 10:
        stamp += pd.Timedelta(days=1)
    return int(stamp.as_unit("ns").value)


def iso_utc(ts: int) -> str:
    """A time in ns since the epoch as ISO-8601 UTC, e.g. ``2024-01-01T01:00:00Z``."""
    return format_time(ts)


def iso_utc_many(ts: Iterable[int] | np.ndarray) -> list[str]:
    """:func:`iso_utc` of many times, vectorised for whole seconds (a report has two per trade)."""
    values = np.asarray(ts if isinstance(ts, np.ndarray) else list(ts), dtype=np.int64)
    texts = [f"{text}Z" for text in np.datetime_as_string(values.astype("datetime64[ns]"), unit="s").tolist()]
    for i in np.flatnonzero(values % 1_000_000_000).tolist():  # fractions of a second: as iso_utc writes them
        texts[i] = iso_utc(int(values[i]))
    return texts


def infer_timeframe(ts: np.ndarray) -> str:
    """The timeframe of evenly spaced bar times, e.g. ``"1h"`` (from the most common spacing between
    distinct times, so duplicates do not count)."""
    steps = np.diff(np.sort(ts))
    steps = steps[steps > 0]
    if not len(steps):
        raise DataError("cannot infer the timeframe from fewer than two bars")
    steps, counts = np.unique(steps, return_counts=True)
    step_s = int(steps[np.argmax(counts)]) // 1_000_000_000
    for unit_s, unit in _UNITS:
        if step_s >= unit_s and step_s % unit_s == 0:
            return f"{step_s // unit_s}{unit}"
    raise DataError(f"bars are spaced {step_s}s apart, which is not a timeframe")


def read_bar_file(path: str | Path, symbol: str | None = None, ts_label: str = "close",
                  timeframe: str | None = None, tz: str | None = None,
                  strict: bool = False) -> tuple[pd.DataFrame, list[CleaningReport]]:
    """Load OHLCV bars from ``.csv`` (optionally gzipped) or ``.parquet``, cleaned, with a report per series.

    Columns (case-insensitive): a time column (ts/timestamp/time/date/datetime: ISO text, with or
    without a UTC offset, or epoch seconds/ms/ns), open, high, low, close, volume (optional, default
    0), symbol (optional if ``symbol`` is given), timeframe (optional; else ``timeframe``, else
    inferred per symbol). ``ts_label`` says whether times are bar opens or closes; the result uses
    close times. ``tz`` (an IANA name) is the exchange's time zone: times without an offset are read
    in it, and the bars' grid follows its wall clock. Each series goes through
    :func:`actors.store.cleaning.clean_bars` (with ``strict``, any artifact is a DataError naming
    the rows). Raises DataError for what cannot be cleaned: a missing column, an unreadable time,
    a timeframe column that disagrees with ``timeframe``, no bars.
    """
    if ts_label not in ("open", "close"):
        raise DataError(f"ts_label must be 'open' or 'close', not {ts_label!r}")
    tz = check_zone(tz)
    if timeframe is not None:
        try:
            timeframe_ns(timeframe)
        except ValueError as exc:
            raise DataError(str(exc)) from None
    path = Path(path)
    raw = _read_table(path)
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    ts_col = next((c for c in _TS_NAMES if c in raw.columns), None)
    missing = [c for c in _PRICES if c not in raw.columns]
    if ts_col is None:
        missing.insert(0, "ts")
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}; found {', '.join(raw.columns)}")
    if "symbol" not in raw.columns:
        if symbol is None:
            raise DataError(f"{path} has no symbol column; name its one symbol with --symbols")
        raw["symbol"] = symbol
    elif symbol is not None:
        raw = raw[raw["symbol"] == symbol]
    lines = raw.index.to_numpy() + 2  # file line of each row: the header is line 1
    raw = raw.reset_index(drop=True)
    if "volume" not in raw.columns:
        raw["volume"] = 0.0
    out = pd.DataFrame({"symbol": raw["symbol"].astype(str).to_numpy(), "ts": _to_ns(raw[ts_col], path, lines, tz)})
    for name in (*_PRICES, "volume"):
        out[name] = pd.to_numeric(raw[name], errors="coerce").to_numpy(dtype=np.float64)
    if out.empty:
        raise DataError(f"{path}: no bars" + (f" of symbol {symbol}" if symbol is not None else ""))
    if "timeframe" in raw.columns:
        out["timeframe"] = raw["timeframe"].astype(str).to_numpy()
        if timeframe is not None and (out["timeframe"] != timeframe).any():
            raise DataError(f"{path}: timeframe is not {timeframe} at rows {_rows(out['timeframe'] != timeframe, lines)}")
    keys = ["symbol", "timeframe"] if "timeframe" in out.columns else ["symbol"]
    series = [out] if (out[keys].nunique() == 1).all() else [group for _, group in out.groupby(keys, sort=False)]
    parts, reports = [], []
    for group in series:
        if "timeframe" not in group.columns:
            group = group.assign(timeframe=timeframe or infer_timeframe(group["ts"].to_numpy()))
        cleaned, report = clean_bars(group, str(group["timeframe"].iloc[0]), tz, ts_label=ts_label,
                                     lines=lines[group.index.to_numpy()], source=str(path),
                                     symbol=str(group["symbol"].iloc[0]))
        parts.append(cleaned)
        reports.append(report)
    if strict and any(r.cleaned for r in reports):
        raise DataError(f"{path}: " + "; ".join(
            (f"{r.symbol}: " if len(reports) > 1 else "") + r.problems() for r in reports if r.cleaned))
    if len(parts) == 1:
        bars = parts[0][["symbol", "ts", *_PRICES, "volume", "timeframe"]]
    else:
        bars = pd.concat(parts, ignore_index=True)[["symbol", "ts", *_PRICES, "volume", "timeframe"]]
        bars = bars.sort_values(["ts", "symbol"], kind="stable").reset_index(drop=True)
    if bars.empty:
        raise DataError(f"{path}: no bars left after cleaning")
    return bars, reports


def load_bar_file(path: str | Path, symbol: str | None = None, ts_label: str = "close",
                  timeframe: str | None = None, tz: str | None = None, strict: bool = False) -> pd.DataFrame:
    """The bars of :func:`read_bar_file`, without its reports."""
    return read_bar_file(path, symbol, ts_label, timeframe, tz, strict)[0]


def _read_table(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise DataError(f"data file {path} does not exist")
    suffixes = "".join(path.suffixes[-2:]).lower()
    try:
        if suffixes.endswith(".parquet"):
            return pd.read_parquet(path)
        if ".csv" in suffixes:
            return pd.read_csv(path)
    except Exception as exc:  # pandas/pyarrow raise many types for unreadable files
        raise DataError(f"cannot read {path}: {exc}") from exc
    raise DataError(f"data file {path} must be .csv, .csv.gz or .parquet")


_OFFSET = r"(?:[zZ]|[+-]\d{2}(?::?\d{2})?)$"  # a UTC offset after a time of day: Z, +09:00, -0500, +01


def _to_ns(column: pd.Series, path: Path, lines: np.ndarray, tz: str | None) -> np.ndarray:
    """Times in ns (UTC): epoch numbers as they are; text with an offset at it, text without in ``tz``."""
    if pd.api.types.is_numeric_dtype(column):
        values = column.to_numpy(dtype=np.float64)
        if np.isnan(values).any():
            raise DataError(f"{path}: empty time at rows {_rows(pd.Series(np.isnan(values)), lines)}")
        scale = np.where(values < 1e11, 1e9, np.where(values < 1e14, 1e6, 1.0))  # s, ms, ns
        return (values * scale).astype(np.int64)
    text = column.astype(str).str.strip()
    parsed = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
    bad = parsed.isna()
    if bad.any():
        raise DataError(f"{path}: unreadable time at rows {_rows(bad, lines)}")
    ns = parsed.dt.as_unit("ns").astype(np.int64).to_numpy().copy()
    if tz is None:
        return ns
    naive = ~text.str.contains(r"\d:\d{2}(?::\d{2}(?:\.\d*)?)?\s*" + _OFFSET, regex=True).to_numpy()
    if naive.any():
        wall = pd.DatetimeIndex(ns[naive].astype("datetime64[ns]"))
        try:
            local = wall.tz_localize(tz, ambiguous="infer", nonexistent="NaT")
        except ValueError:  # a repeated hour that the order of the rows does not settle
            local = wall.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
        unplaced = np.zeros(len(ns), dtype=bool)
        unplaced[np.flatnonzero(naive)[local.isna()]] = True
        if unplaced.any():
            raise DataError(f"{path}: local time skipped or repeated by a DST change in {tz} at rows "
                            f"{_rows(pd.Series(unplaced), lines)}; give these times with their UTC offset")
        ns[naive] = local.tz_convert("UTC").as_unit("ns").tz_localize(None).to_numpy().view(np.int64)
    return ns


def _rows(mask: pd.Series, lines: np.ndarray) -> str:
    """The file lines of the rows where ``mask`` holds (the header is line 1)."""
    rows = lines[np.flatnonzero(np.asarray(mask))].tolist()
    shown = ", ".join(map(str, rows[:10]))
    return shown + (f" and {len(rows) - 10} more" if len(rows) > 10 else "")


def finest_per_symbol(bars: pd.DataFrame) -> pd.DataFrame:
    """Keep, for each symbol, only the bars of its finest timeframe (order unchanged)."""
    if bars.empty or bars["timeframe"].nunique() == 1:
        return bars
    lengths = bars["timeframe"].map(timeframe_ns)
    finest = lengths.groupby(bars["symbol"]).transform("min")
    return bars[lengths == finest].reset_index(drop=True)


def select_range(bars: pd.DataFrame, start_ns: int | None, end_ns: int | None,
                 symbols: tuple[str, ...] | list[str] | None) -> pd.DataFrame:
    """Bars whose close is in (start, end] for the symbols; DataError if that leaves nothing."""
    mask = np.ones(len(bars), dtype=bool)
    if start_ns is not None:
        mask &= bars["ts"].to_numpy() > start_ns
    if end_ns is not None:
        mask &= bars["ts"].to_numpy() <= end_ns
    if symbols:
        unknown = sorted(set(symbols) - set(bars["symbol"]))
        if unknown:
            raise DataError(f"no data for symbol(s) {', '.join(unknown)}; available: {', '.join(sorted(set(bars['symbol'])))}")
        mask &= bars["symbol"].isin(symbols).to_numpy()
    chosen = bars[mask].reset_index(drop=True)
    if chosen.empty:
        first, last = (pd.Timestamp(int(bars['ts'].min()), tz="UTC"), pd.Timestamp(int(bars['ts'].max()), tz="UTC")) if len(bars) else (None, None)
        raise DataError(f"no bars in the requested range; the data covers {first} to {last}" if first is not None else "no bars in the data")
    return chosen
