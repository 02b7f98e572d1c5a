"""Historical bars from CSV or Parquet files, validated, as one table in the replay's format."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from messages.market import timeframe_ns
from supervisors.errors import DataError

__all__ = ["DataError", "finest_per_symbol", "infer_timeframe", "load_bar_file", "parse_date", "select_range"]

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
    return pd.Timestamp(int(ts), unit="ns", tz="UTC").isoformat().replace("+00:00", "Z")


def iso_utc_many(ts: Iterable[int] | np.ndarray) -> list[str]:
    """:func:`iso_utc` of many times, vectorised for whole seconds (a report has two per trade)."""
    values = np.asarray(ts if isinstance(ts, np.ndarray) else list(ts), dtype=np.int64)
    texts = [f"{text}Z" for text in np.datetime_as_string(values.astype("datetime64[ns]"), unit="s").tolist()]
    for i in np.flatnonzero(values % 1_000_000_000).tolist():  # fractions of a second: as iso_utc writes them
        texts[i] = iso_utc(int(values[i]))
    return texts


def infer_timeframe(ts: np.ndarray) -> str:
    """The timeframe of evenly spaced close times, e.g. ``"1h"`` (from the most common spacing)."""
    if len(ts) < 2:
        raise DataError("cannot infer the timeframe from fewer than two bars")
    steps, counts = np.unique(np.diff(np.sort(ts)), return_counts=True)
    step_s = int(steps[np.argmax(counts)]) // 1_000_000_000
    for unit_s, unit in _UNITS:
        if step_s >= unit_s and step_s % unit_s == 0:
            return f"{step_s // unit_s}{unit}"
    raise DataError(f"bars are spaced {step_s}s apart, which is not a timeframe")


def load_bar_file(path: str | Path, symbol: str | None = None, ts_label: str = "close",
                  timeframe: str | None = None, aligned: bool = False) -> pd.DataFrame:
    """Load OHLCV bars from ``.csv`` (optionally gzipped) or ``.parquet``.

    Columns (case-insensitive): a time column (ts/timestamp/time/date/datetime: ISO text or
    epoch seconds/ms/ns), open, high, low, close, volume (optional, default 0), symbol
    (optional if ``symbol`` is given), timeframe (optional; else ``timeframe``, else inferred
    per symbol). ``ts_label`` says whether times are bar opens or closes; the result uses close
    times. With ``aligned``, close times must fall on the timeframe's boundaries (as the live
    bars do). Raises DataError naming the bad rows and every reason they are bad.
    """
    if ts_label not in ("open", "close"):
        raise DataError(f"ts_label must be 'open' or 'close', not {ts_label!r}")
    if timeframe is not None:
        try:
            timeframe_ns(timeframe)
        except ValueError as exc:
            raise DataError(str(exc)) from None
    path = Path(path)
    if not path.exists():
        raise DataError(f"data file {path} does not exist")
    suffixes = "".join(path.suffixes[-2:]).lower()
    try:
        if suffixes.endswith(".parquet"):
            raw = pd.read_parquet(path)
        elif ".csv" in suffixes:
            raw = pd.read_csv(path)
        else:
            raise DataError(f"data file {path} must be .csv, .csv.gz or .parquet")
    except DataError:
        raise
    except Exception as exc:  # pandas/pyarrow raise many types for unreadable files
        raise DataError(f"cannot read {path}: {exc}") from exc
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
    ts = _to_ns(raw[ts_col], path, lines)
    out = pd.DataFrame({"symbol": raw["symbol"].astype(str).to_numpy(), "ts": ts})
    for name in (*_PRICES, "volume"):
        out[name] = pd.to_numeric(raw[name], errors="coerce").to_numpy(dtype=np.float64)
    problems = _row_problems(out, lines)
    if out.empty:
        raise DataError(f"{path}: no bars" + (f" of symbol {symbol}" if symbol is not None else ""))
    timeframes = {}
    for sym, group in out.groupby("symbol", sort=False):
        if "timeframe" in raw.columns:
            timeframes[sym] = str(raw.loc[group.index, "timeframe"].iloc[0])
        else:
            timeframes[sym] = timeframe or infer_timeframe(group["ts"].to_numpy())
    out["timeframe"] = out["symbol"].map(timeframes)
    try:
        lengths = out["timeframe"].map(timeframe_ns).astype(np.int64)
    except ValueError as exc:
        raise DataError(f"{path}: {exc}") from None
    if ts_label == "open":
        out["ts"] = out["ts"] + lengths
    if timeframe is not None and (out["timeframe"] != timeframe).any():
        problems.append(f"timeframe is not {timeframe} at rows {_rows(out['timeframe'] != timeframe, lines)}")
    if aligned and (out["ts"] % lengths != 0).any():
        problems.append(f"bar {'open' if ts_label == 'open' else 'close'} time not on a whole {out['timeframe'].iloc[0]} "
                        f"boundary (UTC) at rows {_rows(out['ts'] % lengths != 0, lines)}")
    duplicated = out.duplicated(["symbol", "ts"], keep="first")
    if duplicated.any():
        problems.append(f"duplicate bars at rows {_rows(duplicated, lines)}")
    if problems:
        raise DataError(f"{path}: " + "; ".join(problems))
    return out.sort_values(["ts", "symbol"], kind="stable").reset_index(drop=True)


def _to_ns(column: pd.Series, path: Path, lines: np.ndarray) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(column):
        values = column.to_numpy(dtype=np.float64)
        if np.isnan(values).any():
            raise DataError(f"{path}: empty time at rows {_rows(pd.Series(np.isnan(values)), lines)}")
        scale = np.where(values < 1e11, 1e9, np.where(values < 1e14, 1e6, 1.0))  # s, ms, ns
        return (values * scale).astype(np.int64)
    parsed = pd.to_datetime(column, utc=True, errors="coerce", format="ISO8601")
    bad = parsed.isna()
    if bad.any():
        raise DataError(f"{path}: unreadable time at rows {_rows(bad, lines)}")
    return parsed.dt.as_unit("ns").astype(np.int64).to_numpy()


def _rows(mask: pd.Series, lines: np.ndarray) -> str:
    """The file lines of the rows where ``mask`` holds (the header is line 1)."""
    rows = lines[np.flatnonzero(np.asarray(mask))].tolist()
    shown = ", ".join(map(str, rows[:10]))
    return shown + (f" and {len(rows) - 10} more" if len(rows) > 10 else "")


def _row_problems(out: pd.DataFrame, lines: np.ndarray) -> list[str]:
    prices = out[list(_PRICES)]
    checks = (
        (prices.isna().any(axis=1) | out["volume"].isna(), "missing or non-numeric price/volume"),
        (np.isinf(prices).any(axis=1) | np.isinf(out["volume"]), "infinite price/volume"),
        ((prices <= 0).any(axis=1), "price <= 0"),
        (out["volume"] < 0, "negative volume"),
        ((out["high"] < out[["open", "close", "low"]].max(axis=1)) | (out["low"] > out[["open", "close"]].min(axis=1)),
         "high/low do not contain open and close"),
    )
    return [f"{why} at rows {_rows(mask, lines)}" for mask, why in checks if mask.any()]


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
