"""The tables of the database, created by the writers (the store, ingest), never by a reader."""

from __future__ import annotations

import sqlite3

from actors.store import columnar

__all__ = ["SCHEMA", "create", "tables"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS bars (
    symbol TEXT NOT NULL, timeframe TEXT NOT NULL, ts INTEGER NOT NULL,
    open REAL NOT NULL, high REAL NOT NULL, low REAL NOT NULL, close REAL NOT NULL, volume REAL NOT NULL,
    PRIMARY KEY (symbol, timeframe, ts)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS bars_by_time ON bars (ts);
CREATE TABLE IF NOT EXISTS ticks (
    symbol TEXT NOT NULL, ts INTEGER NOT NULL, bid REAL, ask REAL, last REAL NOT NULL, volume REAL NOT NULL,
    src TEXT NOT NULL, seq INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS ticks_unique ON ticks (symbol, ts, last, volume, ifnull(bid, -1), ifnull(ask, -1));
CREATE TABLE IF NOT EXISTS signals (
    run TEXT NOT NULL, strategy TEXT NOT NULL, symbol TEXT NOT NULL, timeframe TEXT NOT NULL, ts INTEGER NOT NULL,
    side TEXT NOT NULL, price REAL NOT NULL, reason TEXT NOT NULL, inputs TEXT NOT NULL,
    params TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (run, strategy, symbol, timeframe, ts)
);
CREATE INDEX IF NOT EXISTS signals_by_time ON signals (run, ts);
CREATE TABLE IF NOT EXISTS orders (
    run TEXT NOT NULL, client_id TEXT NOT NULL, strategy TEXT NOT NULL, symbol TEXT NOT NULL, side TEXT NOT NULL,
    qty REAL NOT NULL, ts INTEGER NOT NULL, kind TEXT NOT NULL, status TEXT NOT NULL, reason TEXT NOT NULL,
    limit_price REAL, stop_price REAL,
    PRIMARY KEY (run, client_id)
);
CREATE INDEX IF NOT EXISTS orders_by_status ON orders (run, status);
CREATE INDEX IF NOT EXISTS orders_by_time ON orders (run, ts);
CREATE TABLE IF NOT EXISTS fills (
    run TEXT NOT NULL, client_id TEXT NOT NULL, symbol TEXT NOT NULL, side TEXT NOT NULL, qty REAL NOT NULL,
    price REAL NOT NULL, fee REAL NOT NULL, ts INTEGER NOT NULL,
    PRIMARY KEY (run, client_id)
);
CREATE INDEX IF NOT EXISTS fills_by_symbol ON fills (run, symbol, ts);
CREATE TABLE IF NOT EXISTS equity (
    run TEXT NOT NULL, ts INTEGER NOT NULL, equity REAL NOT NULL, PRIMARY KEY (run, ts)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS model_state (
    run TEXT NOT NULL, symbol TEXT NOT NULL, timeframe TEXT NOT NULL, ts INTEGER NOT NULL, kind TEXT NOT NULL,
    state TEXT NOT NULL, PRIMARY KEY (run, symbol, timeframe)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT, actor TEXT NOT NULL, ts INTEGER NOT NULL, error TEXT NOT NULL,
    message_type TEXT NOT NULL, summary TEXT NOT NULL, ticks INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_by_time ON dead_letters (ts);
CREATE TABLE IF NOT EXISTS venue_ids (
    run TEXT NOT NULL, client_id TEXT NOT NULL, venue_client_id TEXT NOT NULL, venue_order_id TEXT NOT NULL,
    PRIMARY KEY (run, client_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS series_sources (
    symbol TEXT NOT NULL, timeframe TEXT NOT NULL, source TEXT NOT NULL, url TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (symbol, timeframe)
) WITHOUT ROWID;
"""


def create(conn: sqlite3.Connection) -> None:
    """Create what is missing of the tables and of the bars' columnar copy; bring older files up to date
    (a file from before ``series_sources`` gains the table, empty: its series' sources are unrecorded)."""
    conn.executescript(SCHEMA)
    columnar.install(conn)
    if "params" not in {row[1] for row in conn.execute("PRAGMA table_info(signals)")}:
        conn.execute("ALTER TABLE signals ADD COLUMN params TEXT NOT NULL DEFAULT '{}'")  # older files


def tables(conn: sqlite3.Connection) -> set[str]:
    """The names of the tables in the database."""
    return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
