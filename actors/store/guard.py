"""Checks on a database before any work starts, and the lock that keeps a second ``live`` off it.

Each check that fails raises :class:`StorageError` with one line naming the database and what is
wrong, so the command line refuses before it builds anything: a missing folder (it is not created:
a mistyped path would otherwise start a fresh, empty account), a folder or a file that is not a
sqlite database, a truncated one, one that is read-only or locked by another process past the
patience, a disk without room, and (with :func:`hold`) a database another ``live`` holds.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import resource
import sqlite3
import struct
import sys
import threading
import time
from pathlib import Path

from actors.store.connection import connect
from actors.store.errors import StorageError, classify, describe

__all__ = ["MIN_FREE_BYTES", "DatabaseLock", "check_database", "hold"]

MIN_FREE_BYTES = 1 << 20
"""Less free space than this in the database's folder is a full disk."""

_MAGIC = b"SQLite format 3\x00"


def check_database(path: str | Path, patience_s: float) -> None:
    """Refuse (StorageError) a database that cannot be written; wait up to ``patience_s`` for a lock."""
    name = str(path)
    if name == ":memory:":
        return
    file, folder = _place(name)
    _check_space(name, folder, file)
    if file.exists():
        _check_header(name, file)
        if not os.access(file, os.R_OK | os.W_OK):
            raise StorageError(f"database {name}: read-only (no permission to write the file)")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise StorageError(f"database {name}: read-only folder {folder} (sqlite keeps its log files beside the "
                           "database)")
    _probe_write(name, patience_s)


def _place(name: str) -> tuple[Path, Path]:
    """The file and its folder, which must exist (a missing one is not created)."""
    file = Path(name)
    folder = file.parent
    if not folder.is_dir():
        raise StorageError(f"database {name}: folder {folder} does not exist (create it, or name another --db)")
    if file.is_dir():
        raise StorageError(f"database {name}: is a folder, not a database file")
    return file, folder


def _check_space(name: str, folder: Path, file: Path) -> None:
    stats = os.statvfs(folder)
    free = stats.f_bavail * stats.f_frsize
    if free < MIN_FREE_BYTES:
        raise StorageError(f"database {name}: disk full ({free:,} bytes free in {folder})")
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    size = file.stat().st_size if file.exists() else 0
    if limit != resource.RLIM_INFINITY and limit <= size:
        raise StorageError(f"database {name}: disk full for this process: the file size limit (ulimit -f, "
                           f"{limit:,} bytes) leaves no room beyond the {size:,} bytes stored")


def _check_header(name: str, file: Path) -> None:
    """A non-empty file must be a sqlite database as long as its header says."""
    size = file.stat().st_size
    if size == 0:
        return  # sqlite takes an empty file as an empty database
    with file.open("rb") as handle:
        header = handle.read(100)
    if len(header) < 100 or not header.startswith(_MAGIC):
        raise StorageError(f"database {name}: not a sqlite database (or corrupt: its header is not sqlite's)")
    page_size = struct.unpack(">H", header[16:18])[0]
    page_size = 65536 if page_size == 1 else page_size
    pages, counter, valid_for = struct.unpack(">I", header[28:32])[0], header[24:28], header[92:96]
    if page_size < 512 or page_size & (page_size - 1):
        raise StorageError(f"database {name}: corrupt (page size {page_size} in its header)")
    if counter == valid_for and pages and size < pages * page_size:
        raise StorageError(f"database {name}: truncated ({size:,} bytes of the {pages * page_size:,} its header "
                           "says it holds)")
    if size % page_size:
        raise StorageError(f"database {name}: truncated ({size:,} bytes is not a whole number of "
                           f"{page_size:,}-byte pages)")


def _probe_write(name: str, patience_s: float) -> None:
    """Open the database, read its schema and make (and roll back) a write, waiting out a lock. A file
    that did not exist is not left behind."""
    created = not Path(name).exists()
    try:
        _probe(name, patience_s)
    finally:
        if created:
            for leftover in (name, f"{name}-journal", f"{name}-wal", f"{name}-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(leftover)


def _probe(name: str, patience_s: float) -> None:
    try:
        conn = connect(name, busy_ms=100, wal=False)  # a probe: the file stays as it is
    except sqlite3.Error as exc:
        raise StorageError(describe(exc, name)) from None
    try:
        deadline = time.monotonic() + patience_s
        while True:
            try:
                conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
                conn.execute("BEGIN IMMEDIATE")
                break
            except sqlite3.Error as exc:
                if classify(exc) != "locked":
                    raise StorageError(describe(exc, name)) from None
                if time.monotonic() > deadline:
                    raise StorageError(f"database {name}: locked by another process for more than {patience_s:g}s "
                                       "(store.lock_patience_s)") from None
        try:
            conn.execute("CREATE TABLE write_probe_ (x)")  # a write, rolled back: never reaches the file
        except sqlite3.Error as exc:
            raise StorageError(describe(exc, name)) from None
        finally:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
    finally:
        conn.close()


class DatabaseLock:
    """An exclusive advisory lock on ``<db>.lock`` (``flock``), naming its holder inside.

    The lock goes with the process: the kernel releases it when the process ends, however it
    ends, so a stale file never blocks a start. The file itself stays.
    """

    def __init__(self, path: str | Path, command: str) -> None:
        self.path = Path(f"{path}.lock")
        self.command = command
        self._fd: int | None = None
        self._mutex = threading.Lock()

    def acquire(self) -> None:
        """Take the lock, or raise StorageError naming who holds it."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StorageError(f"database {str(self.path)[:-5]}: cannot create its lock file {self.path} "
                               f"({exc.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise StorageError(f"database {str(self.path)[:-5]} is in use by {holder}; one live run per "
                               "database") from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()} ({self.command})\n".encode(), 0)
        except OSError as exc:
            os.close(fd)
            raise StorageError(f"database {str(self.path)[:-5]}: cannot write its lock file {self.path} "
                               f"({exc.strerror})") from None
        self._fd = fd

    def release(self) -> None:
        """Let the lock go (also done by the kernel when the process ends)."""
        with self._mutex:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def hold(path: str | Path, command: str | None = None) -> DatabaseLock | None:
    """Take the live lock on a database file (None for ``:memory:``); StorageError if it is held."""
    if str(path) == ":memory:":
        return None
    _place(str(path))
    lock = DatabaseLock(path, command or " ".join(["run.py", *sys.argv[1:]]))
    lock.acquire()
    return lock
