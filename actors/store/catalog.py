"""What the database holds, per series (symbol and timeframe): extent, rows, gaps and source; a
series' gaps one by one, its export to a file, its deletion; where a series came from.

A gap is a run of missing bars between two stored ones: consecutive close times more than one bar
apart (rounded to whole bars, so a daily series whose local midnight moves with daylight saving
shows no gap there). Weekends and holidays of a market that closes are gaps too: they are counted,
not judged.
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from actors.store import columnar, schema
from actors.store.bar_reads import BarReads
from actors.store.history import iso_utc
from actors.store.writer import Database
from messages.market import timeframe_ns
from supervisors.errors import DataError

__all__ = ["Gap", "Series", "delete_series", "export_series", "find_gaps", "list_series", "record_source",
           "recorded_source", "series_used", "text_table"]


@dataclass(frozen=True, slots=True)
class Series:
    """One stored series: its first and last close times (ns), rows, gaps (runs of missing bars) and
    the bars missing in them, and its source (None when unrecorded: ingested, or stored live)."""

    symbol: str
    timeframe: str
    first_ts: int
    last_ts: int
    rows: int
    gaps: int
    missing: int
    source: str | None
    url: str = ""

    def as_json(self) -> dict[str, Any]:
        """The series as JSON-ready values, with ISO-8601 close times beside the raw ones."""
        return {**asdict(self), "first": iso_utc(self.first_ts), "last": iso_utc(self.last_ts)}


@dataclass(frozen=True, slots=True)
class Gap:
    """Bars missing between two stored close times (ns): ``missing`` bars after ``after_ts``, before ``before_ts``."""

    after_ts: int
    before_ts: int
    missing: int

    def as_json(self) -> dict[str, Any]:
        """The gap as JSON-ready values, with ISO-8601 close times beside the raw ones."""
        return {**asdict(self), "after": iso_utc(self.after_ts), "before": iso_utc(self.before_ts)}


_STEPS = ("SELECT ts, ts - LAG(ts) OVER (ORDER BY ts) AS step FROM bars WHERE symbol=? AND timeframe=?")
_MISSING = "CAST(ROUND(CAST(step AS REAL) / ?) AS INTEGER) - 1"


def _has_sources(conn: sqlite3.Connection) -> bool:
    return "series_sources" in schema.tables(conn)


def recorded_source(conn: sqlite3.Connection, symbol: str, timeframe: str) -> tuple[str, str] | None:
    """The recorded ``(source, url)`` of a series, or None."""
    if not _has_sources(conn):
        return None
    row = conn.execute("SELECT source, url FROM series_sources WHERE symbol=? AND timeframe=?",
                       (symbol, timeframe)).fetchone()
    return None if row is None else (row[0], row[1])


def record_source(db: Database, symbol: str, timeframe: str, source: str, url: str = "") -> None:
    """Record where a series comes from (in the open transaction, beside its bars)."""
    db.begin()
    db.conn.execute("INSERT INTO series_sources VALUES (?,?,?,?) ON CONFLICT (symbol, timeframe) DO UPDATE SET "
                    "source=excluded.source, url=excluded.url", (symbol, timeframe, source, url))


def _gap_count(conn: sqlite3.Connection, symbol: str, timeframe: str) -> tuple[int, int]:
    step = timeframe_ns(timeframe)
    row = conn.execute(f"SELECT COUNT(*), COALESCE(SUM({_MISSING}), 0) FROM ({_STEPS}) "  # noqa: S608
                       f"WHERE {_MISSING} >= 1", (step, symbol, timeframe, step)).fetchone()
    return int(row[0]), int(row[1])


def list_series(reads: BarReads, symbol: str | None = None) -> list[Series]:
    """Every stored series (of ``symbol``, if given), by symbol and timeframe."""
    conn = reads.conn
    where, params = ("WHERE symbol=?", [symbol]) if symbol is not None else ("", [])
    rows = conn.execute(f"SELECT symbol, timeframe, MIN(ts), MAX(ts), COUNT(*) FROM bars {where} "  # noqa: S608
                        "GROUP BY symbol, timeframe ORDER BY symbol, timeframe", params).fetchall()
    out = []
    for sym, tf, first, last, count in rows:
        source = recorded_source(conn, sym, tf)
        out.append(Series(sym, tf, int(first), int(last), int(count), *_gap_count(conn, sym, tf),
                          source[0] if source else None, source[1] if source else ""))
    return out


def _one_series(reads: BarReads, symbol: str, timeframe: str | None) -> Series:
    """The stored series of ``symbol`` (of ``timeframe``, or its only one); DataError naming what is there."""
    every = list_series(reads)
    mine = [s for s in every if s.symbol == symbol]
    if not mine:
        known = sorted({s.symbol for s in every})
        raise DataError(f"no bars of {symbol} in {reads.path}" +
                        (f"; stored: {', '.join(known)}" if known else "; it holds no bars"))
    if timeframe is None:
        if len(mine) > 1:
            raise DataError(f"{symbol} is stored in {', '.join(s.timeframe for s in mine)}: name one with --timeframe")
        return mine[0]
    chosen = [s for s in mine if s.timeframe == timeframe]
    if not chosen:
        raise DataError(f"no {timeframe} bars of {symbol} in {reads.path}; stored: "
                        f"{', '.join(s.timeframe for s in mine)}")
    return chosen[0]


def find_gaps(reads: BarReads, symbol: str, timeframe: str | None = None) -> tuple[Series, list[Gap]]:
    """The series of ``symbol`` (see ``_one_series``) and its gaps in time order."""
    series = _one_series(reads, symbol, timeframe)
    step = timeframe_ns(series.timeframe)
    rows = reads.conn.execute(f"SELECT ts - step, ts, {_MISSING} FROM ({_STEPS}) WHERE {_MISSING} >= 1 "  # noqa: S608
                              "ORDER BY ts", (step, series.symbol, series.timeframe, step)).fetchall()
    return series, [Gap(int(a), int(b), int(n)) for a, b, n in rows]


def export_series(reads: BarReads, symbol: str, path: str | Path, timeframe: str | None = None) -> tuple[Series, Path]:
    """Write the series of ``symbol`` to ``path``: CSV (``.csv``, ``.csv.gz``) or Parquet (``.parquet``), with
    columns ``ts`` (close time, ISO-8601 UTC), symbol, timeframe, open, high, low, close, volume, as
    ``ingest`` and ``backtest --data`` read them back."""
    target = Path(path)
    suffixes = "".join(target.suffixes[-2:]).lower()
    if not (suffixes.endswith((".csv", ".csv.gz", ".parquet"))):
        raise DataError(f"--out {target}: name a .csv, .csv.gz or .parquet file")
    if not target.parent.is_dir():
        raise DataError(f"--out {target}: folder {target.parent} does not exist")
    series = _one_series(reads, symbol, timeframe)
    bars = reads.read_bars([series.symbol], None, None, series.timeframe)
    frame = pd.DataFrame({"ts": pd.to_datetime(bars["ts"].to_numpy(), unit="ns", utc=True),
                          **{name: bars[name].to_numpy() for name in ("symbol", "timeframe", "open", "high", "low",
                                                                      "close", "volume")}})
    try:
        if suffixes.endswith(".parquet"):
            frame.to_parquet(target, index=False)
        else:
            frame.to_csv(target, index=False, date_format="%Y-%m-%dT%H:%M:%SZ")
    except OSError as exc:
        raise DataError(f"--out {target}: {exc.strerror or exc}") from exc
    return series, target


def delete_series(db: Database, symbol: str, timeframe: str | None = None) -> list[Series]:
    """Delete every series of ``symbol`` (or its ``timeframe`` one), its recorded source and its columnar
    copy; return what was deleted. DataError, deleting nothing, if there is no such series."""
    if timeframe is None:
        doomed = list_series(db, symbol)
        if not doomed:
            _one_series(db, symbol, None)  # raises, naming what is stored
    else:
        doomed = [_one_series(db, symbol, timeframe)]
    db.begin()
    for s in doomed:
        db.conn.execute("DELETE FROM bars WHERE symbol=? AND timeframe=?", (s.symbol, s.timeframe))
        db.conn.execute("DELETE FROM series_sources WHERE symbol=? AND timeframe=?", (s.symbol, s.timeframe))
    db.commit()
    columnar.refresh(db.conn, [symbol], timeframe)
    return doomed


def series_used(bars: pd.DataFrame, reads: BarReads | None = None, shown: int = 8) -> str:
    """The series a replay of ``bars`` uses, as ``SYMBOL TIMEFRAME (source)`` (the source where ``reads``,
    the database they came from, records one), the first ``shown`` of them named."""
    pairs = bars[["symbol", "timeframe"]].drop_duplicates().itertuples(index=False)
    names = []
    for symbol, timeframe in pairs:
        source = recorded_source(reads.conn, symbol, timeframe) if reads is not None else None
        names.append(f"{symbol} {timeframe}" + (f" ({source[0]})" if source else ""))
    more = f" and {len(names) - shown:,} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def text_table(headers: list[str], rows: list[list[Any]], right: set[int] | frozenset[int] = frozenset()) -> str:
    """Rows as aligned text columns under ``headers`` (columns in ``right`` right-aligned)."""
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(cell.rjust(w) if i in right else cell.ljust(w) for i, (cell, w) in
                       enumerate(zip(row, widths, strict=True))).rstrip() for row in cells]
    return "\n".join(lines)
