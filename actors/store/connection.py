"""The one way to open the sqlite database: every connection of the project comes from :func:`connect`.

A writable connection waits ``busy_ms`` for another process's lock, keeps the file in WAL mode (readers
read while the store writes) and is tuned for many small writes. A read-only connection opens the file
in sqlite's read-only URI mode: it never writes, not even the schema, so it cannot contend with the
store while it creates the file. Connections are in autocommit mode (transactions are explicit) and
belong to the thread that opened them.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

__all__ = ["BUSY_MS", "connect", "stored"]

BUSY_MS = 10_000
"""How long a statement waits for another process's lock by default, in milliseconds."""


def connect(path: str | Path, *, readonly: bool = False, busy_ms: int = BUSY_MS,
            wal: bool = True) -> sqlite3.Connection:
    """Open ``path`` (``:memory:`` for a private in-memory database).

    ``readonly``: open the existing file in read-only mode. ``wal``: switch a writable connection's
    file to write-ahead logging and tune the connection for writing; a probe that must leave the file
    as it finds it passes False.
    """
    if readonly:
        conn = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True, isolation_level=None,
                               check_same_thread=True)
        conn.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
        return conn
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=True)
    conn.execute(f"PRAGMA busy_timeout={int(busy_ms)}")  # wait for another writer (e.g. ingest)
    if wal:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        # Builds that overwrite every deleted row's bytes (Debian's, among others) make emptying a
        # backtest's records cost as much as writing them; FAST still scrubs what costs no extra I/O.
        conn.execute("PRAGMA secure_delete=FAST")
        # Statement journals (a multi-row INSERT inside a transaction keeps one) in memory, not in
        # temporary files: thousands of small writes per backtest saved.
        conn.execute("PRAGMA temp_store=MEMORY")
    return conn


def stored(path: str | Path) -> bool:
    """Whether ``path`` names a database file that exists (``:memory:`` never does)."""
    return str(path) != ":memory:" and Path(path).exists()
