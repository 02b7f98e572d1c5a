"""Store actor: the single writer to the sqlite database, with group commits."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections import deque
from typing import Any

from actors.store.writer import Database
from actors.store.errors import StorageError, classify, describe
from messages.pipeline import Drain, Persist
from messages.store import Confirm, HaltTrading, RetryWrites
from supervisors.actor import SupervisedActor, publish

__all__ = ["StoreActor"]

_LOCK_SLICE_MS = 100  # one attempt at a locked database waits this long, then the mailbox is served


class StoreActor(SupervisedActor):
    """Writes every Persist as it arrives and commits when its mailbox runs dry (live), when
    ``commit_ms`` has passed, or on a Drain marker, so records never wait long and writes
    are batched under load. A backtest, whose records are read when it ends, commits only on
    the clock and at the end: fewer, larger commits write each page of the log once.

    A database locked by another process holds writes back, in order, and retries them for up
    to ``store.lock_patience_s`` while answering heartbeats; nothing is lost. Past that, or on
    any durability failure (disk full, read-only, I/O error, corrupt), the store stops writing,
    tells the executor to halt, says so on ``health.store`` and stops the system with the reason.
    """

    def setup(self) -> None:
        """Open the database (actor thread)."""
        store = self.ctx.settings.store
        self.path = self.ctx.deps.db_path
        self.patience_ns = int(store.lock_patience_s * 1e9)
        self.db = Database(self.path, busy_ms=int(min(store.lock_patience_s, 5.0) * 1000))
        self.db.wait_for_locks(_LOCK_SLICE_MS)
        self.run = self.ctx.deps.run
        self.commit_ns = store.commit_ms * 1_000_000
        self.last_commit = time.monotonic_ns()
        self.commit_when_idle = self.ctx.mode != "backtest"
        self.rows = 0
        self.wrote_bars = False
        self.held: deque[Any] = deque()   # messages held back while the database is locked, in order
        self.blocked_since = 0            # monotonic ns when the lock was first met (0: not blocked)
        self.commit_owed = False          # a commit that met the lock: the transaction waits whole
        self.retrying = False
        self.blocked = contextlib.ExitStack()
        self.failed = ""                  # why records can no longer be kept
        self.tx_counts = [0, 0]           # new orders and fills written in the open transaction

    def teardown(self) -> None:
        """Commit, bring the columnar copy of the bars up to date if bars were written, and close
        (actor thread). After a durability failure, drop the open transaction instead."""
        if not hasattr(self, "db"):
            return
        if (self.held or self.commit_owed) and not self.failed:
            self._last_try()
        self.blocked.close()
        try:
            if not self.failed:
                self._commit()
                if self.wrote_bars:
                    self.db.refresh_bar_copy()
        except sqlite3.Error as exc:
            if classify(exc) == "other":
                raise
            self._durability_failure(describe(exc, self.path))
        finally:
            with contextlib.suppress(sqlite3.Error):
                self.db.rollback()  # after a failure: what was not committed is not kept
                self.db.conn.close()

    def handle(self, message: Any) -> Any:
        """Write records, commit, resolve a drain marker, or retry held-back writes (actor thread)."""
        if isinstance(message, RetryWrites):
            self.retrying = False
            self._retry()
        elif isinstance(message, Persist | Drain | Confirm):
            if self.failed:
                self._refuse(message)
            elif self.held or self.commit_owed:
                self.held.append(message)
            else:
                self._attempt(message)
        else:
            raise TypeError(f"store cannot handle {type(message).__name__}")

    # -- writing ---------------------------------------------------------------------------------

    def _attempt(self, message: Any) -> bool:
        """Apply one message; on a lock hold it back (first in line) and return False."""
        try:
            self._apply(message)
            return True
        except sqlite3.Error as exc:
            self._error(exc, message)
            return False

    def _apply(self, message: Any) -> None:
        if isinstance(message, Persist):
            self.db.begin()  # the write lock, taken before anything of the message is written
            self._write(message)
            self.tx_counts[0] += sum(1 for o in message.orders if o.status == "submitted")
            self.tx_counts[1] += len(message.fills)
            now = time.monotonic_ns()
            idle = self.commit_when_idle and self.actor_inbox.empty()  # type: ignore[attr-defined]
            if idle or now - self.last_commit > self.commit_ns:
                self._commit()
        elif isinstance(message, Confirm):
            self._commit()
            message.done.set(message.mark)
        else:
            self._commit()
            message.done.set(True)

    def _commit(self) -> None:
        try:
            self.db.commit()
        except sqlite3.Error:
            self.commit_owed = True  # the transaction stays open, whole; only the commit is retried
            raise
        self.commit_owed = False
        self.last_commit = time.monotonic_ns()
        self._counted()

    def _counted(self) -> None:
        orders, fills = self.tx_counts
        if orders or fills:
            self.ctx.counters.add(orders_stored=orders, fills_stored=fills)
        self.tx_counts = [0, 0]

    def _error(self, exc: sqlite3.Error, message: Any) -> None:
        """A lock: hold ``message`` back (if any) and retry later, within the patience. A durability
        failure: stop keeping records. Anything else is raised (the supervisor restarts the store)."""
        kind = classify(exc)
        if kind == "other":
            raise exc
        if kind == "durability":
            self._durability_failure(describe(exc, self.path))
            return
        if message is not None and not (self.commit_owed and isinstance(message, Persist)):
            self.held.appendleft(message)  # (a Persist whose commit met the lock is written, in the open transaction)
        now = time.monotonic_ns()
        if not self.blocked_since:
            self.blocked_since = now
            self.blocked.enter_context(self.waiting("database locked by another process"))
            self.log.warning("{} is locked by another process; writes are held back (up to {:g}s)", self.path,
                             self.patience_ns / 1e9)
            publish(self.ctx, "health.store", {"actor": self.name, "change": "blocked",
                                               "detail": f"database {self.path} locked by another process"})
        if now - self.blocked_since > self.patience_ns:
            self._durability_failure(f"database {self.path}: locked by another process for more than "
                                     f"{self.patience_ns / 1e9:g}s (store.lock_patience_s)")
            return
        if not self.retrying:
            self.retrying = True
            self.ctx.registry.tell(self.name, RetryWrites())

    def _retry(self) -> None:
        """Write what was held back, in order, until the lock is met again or all is written."""
        if self.failed:
            return
        if self.commit_owed:
            try:
                self._commit()
            except sqlite3.Error as exc:
                self._error(exc, None)
                return
        while self.held:
            message = self.held.popleft()
            if not self._attempt(message):
                return
        waited = (time.monotonic_ns() - self.blocked_since) / 1e9
        self.blocked_since = 0
        self.blocked.close()
        self.log.info("{} writable again after {:.1f}s; every held-back write is stored", self.path, waited)
        publish(self.ctx, "health.store", {"actor": self.name, "change": "unblocked",
                                           "detail": f"database {self.path} writable again after {waited:.1f}s"})

    def _last_try(self) -> None:
        """Stopping while writes are held back: wait for the lock once more, within the patience and
        the stop timeout; what cannot be written then is a durability failure (the run fails)."""
        left_s = (self.patience_ns - (time.monotonic_ns() - self.blocked_since)) / 1e9
        wait_s = max(0.0, min(left_s, self.ctx.settings.supervisor.stop_timeout_s * 0.8))
        self.db.wait_for_locks(int(wait_s * 1000))
        self.retrying = True  # no retry is scheduled: the actor is stopping
        self._retry()
        if (self.held or self.commit_owed) and not self.failed:
            self._durability_failure(f"database {self.path}: locked by another process while stopping; "
                                     f"{len(self.held)} writes not stored")

    def _write(self, p: Persist) -> None:
        db, run = self.db, self.run
        if p.bars:
            self.rows += db.write_bars(p.bars)
            self.wrote_bars = True
        if p.frames:
            self.rows += db.write_frames(p.frames)
            self.wrote_bars = True
        if p.ticks:
            self.rows += db.write_ticks(p.ticks)
        db.write_signals(run, p.signals)
        db.write_orders(run, p.orders)
        if p.fills:
            db.write_fills(run, p.fills, {o.client_id for o in p.orders if o.status == "filled"})
        db.write_equity(run, p.equity)
        db.write_venue_ids(run, p.venue_ids)
        db.write_model_states(run, p.models)
        db.write_dead_letters(p.dead_letters)

    # -- a durability failure --------------------------------------------------------------------

    def _durability_failure(self, reason: str) -> None:
        """Stop keeping records: halt trading, say why, stop the system (actor thread)."""
        self.failed = reason
        self.blocked.close()
        with contextlib.suppress(sqlite3.Error):
            self.db.rollback()
        self.log.critical("records can no longer be stored: {}; trading halted", reason)
        self.send("executor", HaltTrading(reason))
        publish(self.ctx, "health.store", {"actor": self.name, "change": "durability", "detail": reason})
        view = self.ctx.deps.view
        if view is not None:  # the reason is the system's before anyone waiting on a drain hears of it
            view.durability_failed(reason)
        held, self.held = list(self.held), deque()
        for message in held:
            self._refuse(message)

    def _refuse(self, message: Any) -> None:
        """A message that arrives after the failure: nothing more is written."""
        if isinstance(message, Drain | Confirm):
            message.done.set_exception((StorageError, StorageError(self.failed), None))
        elif isinstance(message, Persist) and (message.orders or message.fills):
            self.log.error("not stored after the failure: {} order changes, {} fills", len(message.orders),
                           len(message.fills))
