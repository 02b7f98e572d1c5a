"""What a sqlite error means for the records: a lock to wait out, or a durability failure.

A lock held by another process (``SQLITE_BUSY``, ``SQLITE_LOCKED``) passes: the writes wait and
none is lost. A full disk, a read-only file or folder, an I/O error (a file grown past the size
limit among them), a corrupt file or one that is not a database cannot pass by waiting: records
would be lost, so trading stops. Anything else is a fault of ours, left to the supervisor.
"""

from __future__ import annotations

import sqlite3

from supervisors.errors import StorageError

__all__ = ["DURABILITY", "StorageError", "classify", "describe"]

# primary result codes (https://sqlite.org/rescode.html)
_BUSY, _LOCKED = 5, 6
DURABILITY = {
    3: "permission denied",       # SQLITE_PERM
    8: "read-only",               # SQLITE_READONLY
    10: "I/O error",              # SQLITE_IOERR (EFBIG past a file size limit is one)
    11: "corrupt",                # SQLITE_CORRUPT
    13: "disk full",              # SQLITE_FULL
    14: "cannot open",            # SQLITE_CANTOPEN
    15: "file locking failed",    # SQLITE_PROTOCOL
    18: "too big",                # SQLITE_TOOBIG
    26: "not a database",         # SQLITE_NOTADB
}
"""Primary result codes that are durability failures, with a short name each."""


def _code(exc: BaseException) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    return None if code is None else code & 0xFF


def classify(exc: BaseException) -> str:
    """``"locked"`` (wait and retry), ``"durability"`` (stop trading) or ``"other"`` (a bug: crash)."""
    if not isinstance(exc, sqlite3.Error):
        return "durability" if isinstance(exc, OSError) else "other"
    code = _code(exc)
    if code in (_BUSY, _LOCKED):
        return "locked"
    if code in DURABILITY:
        return "durability"
    text = str(exc).lower()  # errors raised before a result code exists (opening a file)
    if "locked" in text:
        return "locked"
    if any(word in text for word in ("readonly", "read-only", "disk", "not a database", "malformed", "unable to open",
                                     "i/o")):
        return "durability"
    return "other"


def describe(exc: BaseException, path: str) -> str:
    """One line naming the database and what is wrong with it."""
    code = _code(exc)
    if code in (_BUSY, _LOCKED):
        what = "locked by another process"
    else:
        what = DURABILITY.get(code, "error") if code is not None else "error"
    return f"database {path}: {what} ({exc})"
