"""A columnar copy of the bars table, in the same sqlite file: numpy blocks per symbol and timeframe.

The ``bars`` table stays the source of truth. Triggers on it note, per series (symbol and timeframe),
the earliest close time inserted, updated or deleted since the copy was last brought up to date
(``bar_changes``), whoever the writer is. A read takes the copy for the part of a series before that
time and the rows of ``bars`` for the rest, so it is exact even when the copy is behind; ``refresh``
re-blocks the changed part from the rows (the writers run it: ingest, the store when it stops, and a
backtest that finds its series changed). Writing a bar costs one index probe more, and a write to
``bar_changes`` only when it moves a series' mark back.

A block holds up to ``BLOCK_ROWS`` consecutive bars of one series, each column as the raw bytes of a
little-endian numpy array (``ts`` int64, prices and volume float64). Blocks of a series never overlap,
and only its last block may be short. A block of another ``LAYOUT`` is never read.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

__all__ = ["BLOCK_ROWS", "COLUMNS", "LAYOUT", "Refreshed", "Staleness", "empty_frame", "install", "read", "refresh",
           "series_where", "staleness"]

LAYOUT = 1
BLOCK_ROWS = 32_768
COLUMNS = ("symbol", "timeframe", "ts", "open", "high", "low", "close", "volume")
FIELDS = ("ts", "open", "high", "low", "close", "volume")
ROW_DTYPE = np.dtype([("ts", "<i8"), *((name, "<f8") for name in FIELDS[1:])])
_FIRST, _LAST = -(2**63), 2**63 - 1

_MARK = "INSERT OR REPLACE INTO bar_changes VALUES ({row}.symbol, {row}.timeframe, {row}.ts)"
_UNMARKED = ("NOT EXISTS (SELECT 1 FROM bar_changes c WHERE c.symbol = {row}.symbol AND c.timeframe = {row}.timeframe "
             "AND c.since <= {row}.ts)")
_TRIGGERS = {
    "bars_changed_insert": ("AFTER INSERT", "NEW"),
    "bars_changed_update_old": ("AFTER UPDATE", "OLD"),
    "bars_changed_update_new": ("AFTER UPDATE", "NEW"),
    "bars_changed_delete": ("AFTER DELETE", "OLD"),
}
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS bar_blocks (symbol TEXT NOT NULL, timeframe TEXT NOT NULL, first_ts INTEGER NOT NULL, "
    "last_ts INTEGER NOT NULL, size INTEGER NOT NULL, layout INTEGER NOT NULL, ts BLOB NOT NULL, open BLOB NOT NULL, "
    "high BLOB NOT NULL, low BLOB NOT NULL, close BLOB NOT NULL, volume BLOB NOT NULL, "
    "UNIQUE (symbol, timeframe, first_ts))",
    "CREATE TABLE IF NOT EXISTS bar_changes (symbol TEXT NOT NULL, timeframe TEXT NOT NULL, since INTEGER NOT NULL, "
    "PRIMARY KEY (symbol, timeframe)) WITHOUT ROWID",
    *(f"CREATE TRIGGER IF NOT EXISTS {name} {event} ON bars WHEN {_UNMARKED.format(row=row)} "
      f"BEGIN {_MARK.format(row=row)}; END" for name, (event, row) in _TRIGGERS.items()),
)


@dataclass(frozen=True, slots=True)
class Staleness:
    """Where the copy stands for a selection of series. ``usable`` is False in a file written before
    the copy existed or holding blocks of another layout; ``changed`` lists ``(symbol, timeframe,
    since)`` for the series whose bars from ``since`` on have changed since the copy was refreshed."""

    usable: bool
    changed: tuple[tuple[str, str, int], ...] = ()

    @property
    def current(self) -> bool:
        """Whether a read of the selection comes from the copy alone."""
        return self.usable and not self.changed


@dataclass(frozen=True, slots=True)
class Refreshed:
    """One series brought up to date: how many bars it has and how many were read from the rows."""

    symbol: str
    timeframe: str
    bars: int
    from_rows: int


def install(conn: sqlite3.Connection) -> None:
    """Create the copy's tables and triggers. In a file that had bars before them, every series is
    marked changed from its first bar, so the first refresh builds it whole."""
    if _installed(conn):
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        if not _installed(conn):
            for statement in SCHEMA:
                conn.execute(statement)
            conn.execute("INSERT OR REPLACE INTO bar_changes SELECT symbol, timeframe, MIN(ts) FROM bars "
                         "GROUP BY symbol, timeframe")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def staleness(conn: sqlite3.Connection, symbols: Iterable[str] | None = None,
              timeframe: str | None = None) -> Staleness:
    """Which of the selected series have changed since the copy was refreshed."""
    if not _installed(conn) or conn.execute("SELECT 1 FROM bar_blocks WHERE layout != ? LIMIT 1",
                                            (LAYOUT,)).fetchone() is not None:
        return Staleness(False)
    where, params = series_where(symbols, timeframe)
    rows = conn.execute(f"SELECT symbol, timeframe, since FROM bar_changes WHERE {where} "  # noqa: S608
                        "ORDER BY symbol, timeframe", params).fetchall()
    return Staleness(True, tuple((s, tf, int(since)) for s, tf, since in rows))


def refresh(conn: sqlite3.Connection, symbols: Iterable[str] | None = None,
            timeframe: str | None = None) -> list[Refreshed]:
    """Bring the copy of the selected series up to date, one transaction per series; only the bars
    changed since the last refresh are read from the rows. Call outside a transaction."""
    install(conn)
    where, params = series_where(symbols, timeframe)
    series = conn.execute(f"SELECT symbol, timeframe FROM bar_changes WHERE {where} "  # noqa: S608
                          "UNION SELECT symbol, timeframe FROM bar_blocks WHERE layout != ? AND " + where,
                          [*params, LAYOUT, *params]).fetchall()
    done = []
    for symbol, tf in series:
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = _refresh_series(conn, symbol, tf)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        if result is not None:
            done.append(result)
    return done


def read(conn: sqlite3.Connection, symbols: Iterable[str] | None, start_ns: int | None, end_ns: int | None,
         timeframe: str | None = None) -> tuple[pd.DataFrame, Staleness] | None:
    """Bars with close time in (start, end] as the bars table has them, ordered by time, symbol and
    timeframe, and the staleness they were read under (changed series' later bars come from the rows);
    None when the file has no usable copy. Reads one snapshot (inside the caller's transaction, if any)."""
    own = not conn.in_transaction
    if own:
        conn.execute("BEGIN")
    try:
        return _read(conn, symbols, start_ns, end_ns, timeframe)
    finally:
        if own:
            conn.execute("COMMIT")


def empty_frame() -> pd.DataFrame:
    """A bar table with no rows, typed as a query of the bars table gives it."""
    frame = pd.DataFrame({name: pd.Series([], dtype=object) for name in COLUMNS})
    frame["ts"] = frame["ts"].astype(np.int64)
    return frame


# -- internals -----------------------------------------------------------------------------------


def _installed(conn: sqlite3.Connection) -> bool:
    names = {row[0] for row in conn.execute(
        "SELECT name FROM sqlite_master WHERE name IN ('bar_blocks', 'bar_changes') OR type = 'trigger'")}
    return {"bar_blocks", "bar_changes", *_TRIGGERS} <= names


def series_where(symbols: Iterable[str] | None, timeframe: str | None) -> tuple[str, list]:
    """The SQL condition (and its parameters) selecting some symbols and one timeframe (all when None)."""
    where, params = ["1=1"], []
    if symbols:
        symbols = list(symbols)
        where.append(f"symbol IN ({','.join('?' * len(symbols))})")
        params += symbols
    if timeframe:
        where.append("timeframe = ?")
        params.append(timeframe)
    return " AND ".join(where), params


def _decode(blocks: Sequence[tuple]) -> list[np.ndarray]:
    """Columns (ts, open, ..., volume) of consecutive blocks given as rows of six blobs."""
    if not blocks:
        return [np.empty(0, dtype=ROW_DTYPE[name]) for name in FIELDS]
    return [np.concatenate([np.frombuffer(block[i], dtype=ROW_DTYPE[name]) for block in blocks])
            for i, name in enumerate(FIELDS)]


def _rows(conn: sqlite3.Connection, symbol: str, timeframe: str, after: int, upto: int,
          include_after: bool = False) -> list[np.ndarray]:
    """Columns of a series' rows with ts in (after, upto], or [after, upto] with ``include_after``."""
    op = ">=" if include_after else ">"
    rows = np.fromiter(conn.execute(
        f"SELECT ts, open, high, low, close, volume FROM bars WHERE symbol=? AND timeframe=? AND ts {op} ? "  # noqa: S608
        "AND ts <= ? ORDER BY ts", (symbol, timeframe, after, upto)), dtype=ROW_DTYPE)
    return [np.ascontiguousarray(rows[name]) for name in FIELDS]


def _refresh_series(conn: sqlite3.Connection, symbol: str, timeframe: str) -> Refreshed | None:
    key = (symbol, timeframe)
    mark = conn.execute("SELECT since FROM bar_changes WHERE symbol=? AND timeframe=?", key).fetchone()
    if conn.execute("SELECT 1 FROM bar_blocks WHERE symbol=? AND timeframe=? AND layout != ? LIMIT 1",
                    (*key, LAYOUT)).fetchone() is not None:
        conn.execute("DELETE FROM bar_blocks WHERE symbol=? AND timeframe=?", key)
        mark = (_FIRST,)
    if mark is None:
        return None  # another writer refreshed it first
    since = int(mark[0])
    blobs = ", ".join(FIELDS)
    # bars before `since` are rewritten only from the block that reaches `since` and a short block before it
    before = conn.execute(f"SELECT rowid, size, {blobs} FROM bar_blocks WHERE symbol=? AND timeframe=? "  # noqa: S608
                          "AND last_ts < ? ORDER BY first_ts DESC LIMIT 1", (*key, since)).fetchone()
    reaching = conn.execute(f"SELECT rowid, size, {blobs} FROM bar_blocks WHERE symbol=? AND timeframe=? "  # noqa: S608
                            "AND last_ts >= ? AND first_ts < ? ORDER BY first_ts LIMIT 1",
                            (*key, since, since)).fetchone()
    prefix = [row for row in (before, reaching) if row is not None and (row is reaching or row[1] < BLOCK_ROWS)]
    pending = _decode([row[2:] for row in prefix])
    keep = int(np.searchsorted(pending[0], since, side="left"))
    pending = [c[:keep] for c in pending]
    conn.executemany("DELETE FROM bar_blocks WHERE rowid=?", [(row[0],) for row in prefix])
    conn.execute("DELETE FROM bar_blocks WHERE symbol=? AND timeframe=? AND last_ts >= ?", (*key, since))
    changed = conn.execute("SELECT ts, open, high, low, close, volume FROM bars WHERE symbol=? AND timeframe=? "
                           "AND ts >= ? ORDER BY ts", (*key, since))
    from_rows = 0
    while True:  # block by block, so memory stays bounded whatever the length of the series
        rows = np.fromiter(itertools.islice(changed, BLOCK_ROWS), dtype=ROW_DTYPE)
        from_rows += len(rows)
        pending = [np.concatenate([c, rows[name]]) for c, name in zip(pending, FIELDS, strict=True)]
        while len(pending[0]) >= BLOCK_ROWS or (len(rows) < BLOCK_ROWS and len(pending[0])):
            _write_block(conn, symbol, timeframe, [c[:BLOCK_ROWS] for c in pending])
            pending = [c[BLOCK_ROWS:] for c in pending]
        if len(rows) < BLOCK_ROWS:
            break
    conn.execute("DELETE FROM bar_changes WHERE symbol=? AND timeframe=?", key)
    total = conn.execute("SELECT COALESCE(SUM(size), 0) FROM bar_blocks WHERE symbol=? AND timeframe=?",
                         key).fetchone()[0]
    return Refreshed(symbol, timeframe, int(total), from_rows)


def _write_block(conn: sqlite3.Connection, symbol: str, timeframe: str, columns: list[np.ndarray]) -> None:
    ts = columns[0]
    conn.execute("INSERT INTO bar_blocks VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                 (symbol, timeframe, int(ts[0]), int(ts[-1]), len(ts), LAYOUT, *(c.tobytes() for c in columns)))


def _read(conn: sqlite3.Connection, symbols: Iterable[str] | None, start_ns: int | None, end_ns: int | None,
          timeframe: str | None) -> tuple[pd.DataFrame, Staleness] | None:
    state = staleness(conn, symbols, timeframe)
    if not state.usable:
        return None
    if not conn.execute("SELECT 1 FROM bar_changes LIMIT 1").fetchone():
        # the copy claims to be complete: it must hold every row (a cheap count over the time index)
        stored = conn.execute("SELECT COUNT(*) FROM bars").fetchone()[0]
        copied = conn.execute("SELECT COALESCE(SUM(size), 0) FROM bar_blocks").fetchone()[0]
        if stored != copied:
            return None
    where, params = series_where(symbols, timeframe)
    series = conn.execute(f"SELECT symbol, timeframe FROM bar_blocks WHERE {where} UNION "  # noqa: S608
                          f"SELECT symbol, timeframe FROM bar_changes WHERE {where} ORDER BY symbol, timeframe",
                          params * 2).fetchall()
    changed = {(s, tf): since for s, tf, since in state.changed}
    lo = _FIRST if start_ns is None else int(start_ns)
    hi = _LAST if end_ns is None else int(end_ns)
    parts: list[list[np.ndarray]] = []
    for symbol, tf in series:
        since = changed.get((symbol, tf))
        cut = hi if since is None else min(hi, since - 1)  # the copy is good for ts < since
        columns = _copied(conn, symbol, tf, lo, cut)
        if since is not None and since <= hi:
            tail = _rows(conn, symbol, tf, max(lo, since - 1), hi)
            columns = [np.concatenate([c, t]) for c, t in zip(columns, tail, strict=True)]
        parts.append(columns)
    sizes = [len(p[0]) for p in parts]
    if not sum(sizes):
        return empty_frame(), state
    codes = np.repeat(np.arange(len(parts), dtype=np.int32), sizes)
    if len(parts) == 1:
        columns = parts[0]
    else:
        columns = [np.concatenate([p[k] for p in parts]) for k in range(len(FIELDS))]
        order = np.argsort(columns[0], kind="stable")  # parts are in (symbol, timeframe) order
        columns = [c[order] for c in columns]
        codes = codes[order]
    labels = {
        "symbol": pa.array([s for s, _ in series], pa.large_string()).take(codes),
        "timeframe": pa.array([tf for _, tf in series], pa.large_string()).take(codes),
    }
    frame = pd.DataFrame({**{name: pd.array(values, dtype="str") for name, values in labels.items()},
                          **dict(zip(FIELDS, columns, strict=True))}, copy=False)
    return frame, state


def _copied(conn: sqlite3.Connection, symbol: str, timeframe: str, lo: int, hi: int) -> list[np.ndarray]:
    """Columns of a series' bars in the copy with ts in (lo, hi], decoded block by block into arrays
    of their final size (one copy, whatever the number of blocks)."""
    where = "symbol=? AND timeframe=? AND last_ts > ? AND first_ts <= ?"
    params = (symbol, timeframe, lo, hi)
    total = conn.execute(f"SELECT COALESCE(SUM(size), 0) FROM bar_blocks WHERE {where}", params).fetchone()[0]  # noqa: S608
    columns = [np.empty(total, dtype=ROW_DTYPE[name]) for name in FIELDS]
    at = 0
    for size, *blobs in conn.execute(f"SELECT size, {', '.join(FIELDS)} FROM bar_blocks WHERE {where} "  # noqa: S608
                                     "ORDER BY first_ts", params):
        for column, blob in zip(columns, blobs, strict=True):
            column[at:at + size] = np.frombuffer(blob, dtype=column.dtype)
        at += size
    i, j = (int(k) for k in np.searchsorted(columns[0], [lo, hi], side="right"))
    return columns if (i, j) == (0, total) else [c[i:j] for c in columns]
