"""Bars as vendors ship them, cleaned: known artifacts dropped or repaired, every one counted and named.

One path for every way bars come in (``ingest``, ``backtest --data``, ``download``): :func:`clean_bars`
takes one series (one symbol, one timeframe) with times in ns since the epoch (UTC) and returns it
cleaned, with close times, and a :class:`CleaningReport` saying what was done to which rows.

The classes, checked in this order (a row is counted in the first that takes it):

- ``bad_values``: a missing, non-numeric or infinite price or volume, a price <= 0 or a volume < 0:
  dropped;
- ``off_grid``: a bar whose time is not on the timeframe's grid: dropped. The grid is the wall clock
  of ``tz`` (UTC by default): a 15m bar opens at :00, :15, :30 or :45, a 1d bar at local midnight
  (DST-aware: a New York day is 23 or 25 hours long twice a year). Bars longer than a day (weeks,
  months) follow the vendor's calendar (weeks from Monday or Sunday, month ends) and are not checked
  against a grid. A series where most bars are off the grid is refused: that is a wrong time zone,
  timeframe or label, not a vendor's stray rows;
- ``exact_duplicates`` and ``conflicting_duplicates``: rows of one time. The last of them in the file
  gives the bar's values (a vendor appends its corrections): rows with other values are conflicting
  duplicates, dropped; copies of those values beyond the first are exact duplicates, dropped;
- ``ohlc_repaired``: high below max(open, close) or low above min(open, close) by more than
  :data:`TOLERANCE` (relative): high and low widened to contain open and close. Within the tolerance
  (the rounding of adjusted prices, ~1e-16) the row passes untouched.

Gaps (bars missing between the first and the last) are counted, not filled; the largest is named.
Pure logic: pandas and numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from messages.market import timeframe_ns
from supervisors.errors import DataError

__all__ = ["KINDS", "TOLERANCE", "CleaningReport", "Finding", "Gaps", "check_zone", "clean_bars", "close_times",
           "find_gaps", "format_time"]

TOLERANCE = 1e-9
"""Relative tolerance of the high/low check: ``high >= max(open, close) * (1 - TOLERANCE)``, and so for low."""

KINDS = {
    "bad_values": ("bad price/volume", "dropped", ""),
    "off_grid": ("off the grid", "dropped", ""),
    "exact_duplicates": ("exact duplicates", "dropped", "one copy kept"),
    "conflicting_duplicates": ("conflicting duplicates", "dropped", "the last row of each time kept"),
    "ohlc_repaired": ("high/low not containing open/close", "repaired", "high/low widened to open/close"),
}
"""Each class of artifact: its label in the summary, what is done to its rows, and a note on how."""
_WITH_REASON = ("bad_values", "off_grid")  # classes whose summary line says why, not only where

DAY_NS = 86_400 * 10**9
SHOWN = 10
PRICES = ("open", "high", "low", "close")


@dataclass(frozen=True, slots=True)
class Finding:
    """Rows of one class of artifact found for one reason: how many, and the first few named."""

    kind: str
    reason: str
    count: int
    first: tuple[str, ...]
    by_line: bool

    def where(self) -> str:
        """``at rows 2, 5`` (file rows) or ``at times ...`` (no file), the first :data:`SHOWN` of them."""
        more = f" and {self.count - len(self.first)} more" if self.count > len(self.first) else ""
        return f"at {'rows' if self.by_line else 'times'} {', '.join(self.first)}{more}"


@dataclass(frozen=True, slots=True)
class Gaps:
    """Bars missing inside a series: ``count`` gaps, ``missing`` bars in all; ``spans`` lists each as
    (time the last bar before it closed, time the first bar after it opened, bars missing)."""

    count: int
    missing: int
    spans: tuple[tuple[int, int, int], ...]

    @property
    def largest(self) -> tuple[int, int, int] | None:
        """The gap with the most bars missing (the first of equals), or None."""
        return max(self.spans, key=lambda span: span[2]) if self.spans else None


@dataclass(frozen=True, slots=True)
class CleaningReport:
    """What cleaning did to one series; ``str()`` is the summary a user reads."""

    source: str
    symbol: str
    timeframe: str
    tz: str | None
    rows_in: int
    rows_out: int
    findings: tuple[Finding, ...]
    out_of_order: int
    gaps: Gaps

    @property
    def counts(self) -> dict[str, int]:
        """Rows per class of :data:`KINDS`, zero included."""
        counts = dict.fromkeys(KINDS, 0)
        for finding in self.findings:
            counts[finding.kind] += finding.count
        return counts

    @property
    def cleaned(self) -> bool:
        """Whether any row was dropped or repaired."""
        return bool(self.findings)

    def problems(self) -> str:
        """Every finding as ``REASON at rows ...``, joined by ``; `` (what ``strict`` refuses with)."""
        return "; ".join(f"{f.reason} {f.where()}" for f in self.findings)

    def lines(self) -> list[str]:
        """The summary: one line for the series, one per class (its count, and where), one for gaps."""
        zone = self.tz or "UTC"
        name = f"{self.symbol} {self.timeframe}".strip()
        out = [f"cleaning {self.source}: {name} ({zone}): {self.rows_in:,} rows read, {self.rows_out:,} bars kept"]
        counts = self.counts
        for kind, (label, action, how) in KINDS.items():
            detail = "; ".join(f"{f.reason} {f.where()}" if kind in _WITH_REASON else f.where()
                               for f in self.findings if f.kind == kind)
            if counts[kind]:
                detail = f"  {action}{':' if kind in _WITH_REASON else ''} {detail}" + (f" ({how})" if how else "")
            out.append(f"  {label:<36}{counts[kind]:>7,}{detail if counts[kind] else ''}")
        if self.out_of_order:
            out.append(f"  {'out of time order':<36}{self.out_of_order:>7,}  sorted by time")
        gaps = self.gaps
        line = f"  {'gaps':<36}{gaps.count:>7,}"
        if gaps.largest is not None:
            start, end, missing = gaps.largest
            line += (f"  {gaps.missing:,} bars missing in all; the largest {missing:,} bars, "
                     f"{format_time(start, self.tz)} .. {format_time(end, self.tz)}")
        out.append(line)
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


def check_zone(tz: str | None) -> str | None:
    """The IANA time zone name ``tz`` if it is one (None or "" for UTC); DataError naming it otherwise."""
    if not tz:
        return None
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise DataError(f"unknown time zone {tz!r}: give an IANA name, e.g. Asia/Seoul, America/New_York or UTC") \
            from None
    return tz


def format_time(ts: int, tz: str | None = None) -> str:
    """A time in ns as ISO-8601: UTC with ``Z``, or the wall clock of ``tz`` with its offset."""
    stamp = pd.Timestamp(int(ts), unit="ns", tz="UTC")
    if tz:
        return stamp.tz_convert(tz).isoformat()
    return stamp.isoformat().replace("+00:00", "Z")


def _wall(ts: np.ndarray, tz: str | None) -> np.ndarray:
    """The wall-clock time of ``tz`` at each UTC time, as ns since the local 1970-01-01 midnight."""
    if tz is None:
        return ts
    index = pd.DatetimeIndex(ts.astype("datetime64[ns]")).tz_localize("UTC").tz_convert(tz).tz_localize(None)
    return index.as_unit("ns").to_numpy().view(np.int64)


def _from_wall(wall: np.ndarray, tz: str | None) -> np.ndarray:
    """The UTC times of wall-clock times of ``tz`` (inverse of :func:`_wall`; a time a DST change skips
    moves forward to the change, a repeated one takes its first instant)."""
    if tz is None:
        return wall
    index = pd.DatetimeIndex(wall.astype("datetime64[ns]")).tz_localize(
        tz, ambiguous=np.ones(len(wall), dtype=bool), nonexistent="shift_forward")
    return index.tz_convert("UTC").as_unit("ns").tz_localize(None).to_numpy().view(np.int64)


def close_times(ts: np.ndarray, timeframe: str, tz: str | None = None, ts_label: str = "close") -> np.ndarray:
    """The close times of bars labelled by ``ts_label`` times (ns, UTC). A bar of whole days opened at
    local midnight closes at the local midnight that many days later (DST-aware); others last their
    length."""
    ts = np.asarray(ts, dtype=np.int64)
    if ts_label == "close":
        return ts
    length = timeframe_ns(timeframe)
    if tz is None or length % DAY_NS:
        return ts + length
    return _from_wall(_wall(ts, tz) + length, tz)


def _open_times(close: np.ndarray, length: int, tz: str | None) -> np.ndarray:
    if tz is None or length % DAY_NS:
        return close - length
    return _from_wall(_wall(close, tz) - length, tz)


def find_gaps(close: np.ndarray, timeframe: str, tz: str | None = None) -> Gaps:
    """The bars missing between consecutive close times (sorted, on the grid of ``timeframe`` in ``tz``)."""
    close = np.asarray(close, dtype=np.int64)
    if len(close) < 2:
        return Gaps(0, 0, ())
    length = timeframe_ns(timeframe)
    steps = np.diff(_wall(close, tz) if length % DAY_NS == 0 else close)
    missing = steps // length - 1
    at = np.flatnonzero(missing > 0)
    if not len(at):
        return Gaps(0, 0, ())
    ends = _open_times(close[at + 1], length, tz)
    spans = tuple(zip(close[at].tolist(), ends.tolist(), missing[at].tolist(), strict=True))
    return Gaps(len(at), int(missing[at].sum()), spans)


def _labels(positions: np.ndarray, lines: np.ndarray | None, ts: np.ndarray, tz: str | None) -> tuple[str, ...]:
    shown = positions[:SHOWN]
    if lines is not None:
        return tuple(str(int(line)) for line in lines[shown])
    return tuple(format_time(int(t), tz) for t in ts[shown])


def clean_bars(frame: pd.DataFrame, timeframe: str, tz: str | None = None, strict: bool = False, *,
               ts_label: str = "close", lines: np.ndarray | None = None, source: str = "bars",
               symbol: str = "") -> tuple[pd.DataFrame, CleaningReport]:
    """Clean one series of bars and say what was done (see the module's docstring for the classes).

    ``frame`` has ``ts`` (int64 ns since the epoch, UTC: bar opens or closes as ``ts_label`` says),
    ``open``, ``high``, ``low``, ``close`` and ``volume``; other columns are carried along. ``tz``: the
    exchange's IANA time zone, whose wall clock the grid follows (None: UTC). ``lines``: each row's
    line in its file, to name rows by (else they are named by time). Return the kept rows sorted by
    time, with ``ts`` the close times and a fresh index, and the report. With ``strict``, any artifact
    is a DataError naming the rows instead. A series mostly off the grid is always a DataError.
    """
    if ts_label not in ("open", "close"):
        raise DataError(f"ts_label must be 'open' or 'close', not {ts_label!r}")
    tz = check_zone(tz)
    try:
        length = timeframe_ns(timeframe)
    except ValueError as exc:
        raise DataError(str(exc)) from None
    n = len(frame)
    ts = frame["ts"].to_numpy(dtype=np.int64)
    line_of = None if lines is None else np.asarray(lines)
    findings: list[Finding] = []
    keep = np.ones(n, dtype=bool)

    def note(kind: str, reason: str, mask: np.ndarray) -> None:
        positions = np.flatnonzero(mask)
        if len(positions):
            findings.append(Finding(kind, reason, len(positions), _labels(positions, line_of, ts, tz),
                                    line_of is not None))

    columns = {c: frame[c].to_numpy(dtype=np.float64) for c in (*PRICES, "volume")}
    for reason, mask in _bad_values(columns):
        mask &= keep
        note("bad_values", reason, mask)
        keep &= ~mask
    if length <= DAY_NS:
        off = keep & (_wall(ts, tz) % length != 0)
    else:  # weeks and months follow the vendor's calendar (Monday or Sunday weeks, month ends): no grid
        off = np.zeros(n, dtype=bool)
    if off.sum() * 2 > keep.sum() > 0:
        raise DataError(_mostly_off(source, symbol, timeframe, tz, off, keep, ts, line_of))
    note("off_grid", f"bar {ts_label} time not on a whole {timeframe} boundary ({tz or 'UTC'})", off)
    keep &= ~off
    kept = np.flatnonzero(keep)
    same_time = pd.Series(ts[kept]).duplicated(keep=False).to_numpy()
    if same_time.any():
        rows = kept[same_time]
        exact, conflicting = _duplicates(ts[rows], {c: v[rows] for c, v in columns.items()})
        note("exact_duplicates", "exact duplicate bars", _spread(rows, exact, n))
        note("conflicting_duplicates", "conflicting duplicate bars (same time, other values)",
             _spread(rows, conflicting, n))
        keep[rows[exact | conflicting]] = False
        kept = np.flatnonzero(keep)

    out = frame.iloc[kept].copy() if len(kept) < n else frame.copy()
    for name in (*PRICES, "volume"):
        out[name] = columns[name][kept]
    high, low, loose = _widened(columns, kept)
    note("ohlc_repaired", "high/low do not contain open and close", _spread(kept, loose, n))
    out["high"], out["low"] = high, low
    label_ts = ts[kept]
    out["ts"] = close_times(label_ts, timeframe, tz, ts_label)
    out_of_order = int((label_ts[1:] < np.maximum.accumulate(label_ts)[:-1]).sum()) if len(label_ts) else 0
    out = (out.sort_values("ts", kind="stable") if out_of_order else out).reset_index(drop=True)
    findings.sort(key=lambda f: list(KINDS).index(f.kind))
    report = CleaningReport(source, symbol, timeframe, tz, n, len(out), tuple(findings), out_of_order,
                            find_gaps(out["ts"].to_numpy(dtype=np.int64), timeframe, tz))
    if strict and report.cleaned:
        raise DataError(f"{source}: {report.problems()}")
    return out, report


def _bad_values(columns: dict[str, np.ndarray]) -> list[tuple[str, np.ndarray]]:
    """The rows with bad values, by reason, in the order they are reported."""
    prices = [columns[c] for c in PRICES]
    volume = columns["volume"]
    with np.errstate(invalid="ignore"):
        return [
            ("missing or non-numeric price/volume", np.logical_or.reduce([np.isnan(v) for v in (*prices, volume)])),
            ("infinite price/volume", np.logical_or.reduce([np.isinf(v) for v in (*prices, volume)])),
            ("price <= 0", np.logical_or.reduce([v <= 0 for v in prices])),
            ("negative volume", volume < 0),
        ]


def _mostly_off(source: str, symbol: str, timeframe: str, tz: str | None, off: np.ndarray, keep: np.ndarray,
                ts: np.ndarray, lines: np.ndarray | None) -> str:
    """Why a series with most bars off the grid is refused, and what to check."""
    first = int(np.flatnonzero(off)[0])
    where = f"row {int(lines[first])}" if lines is not None else "bar"
    hint = ("check --tz, --ts-label and --timeframe" if tz else
            "if the exchange keeps another time zone, name it with --tz ZONE (and check --ts-label and --timeframe)")
    return (f"{source}: {int(off.sum()):,} of {int(keep.sum()):,} bars{f' of {symbol}' if symbol else ''} are off "
            f"the {timeframe} grid of {tz or 'UTC'} (the first, {where} at {format_time(int(ts[first]), tz)}, is not "
            f"on a whole {timeframe} boundary): that is not a vendor's stray rows; {hint}")


def _duplicates(ts: np.ndarray, columns: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Of rows that share their time with another: the exact duplicates and the conflicting ones. The
    last row of each time gives its values; rows with other values conflict, and copies of those values
    beyond the first are exact duplicates."""
    group = pd.DataFrame({"ts": ts, **columns})
    final = group.groupby("ts", sort=False).transform("last")
    conflicting = ~(group.drop(columns="ts") == final).all(axis=1).to_numpy()
    exact = ~conflicting & group.duplicated(keep="first").to_numpy()
    return exact, conflicting


def _widened(columns: dict[str, np.ndarray], kept: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """High and low of the kept rows, widened to contain open and close where they miss them by more
    than :data:`TOLERANCE`, and which rows those are."""
    open_, high, low, close = (columns[c][kept] for c in PRICES)
    top, bottom = np.maximum(open_, close), np.minimum(open_, close)
    loose = (high < top * (1 - TOLERANCE)) | (low > bottom * (1 + TOLERANCE))
    if loose.any():
        high = np.where(loose, np.maximum(high, top), high)
        low = np.where(loose, np.minimum(low, bottom), low)
    return high, low, loose


def _spread(positions: np.ndarray, mask: np.ndarray, n: int) -> np.ndarray:
    """A mask over all ``n`` rows that holds at ``positions[mask]``."""
    full = np.zeros(n, dtype=bool)
    full[positions[mask]] = True
    return full
