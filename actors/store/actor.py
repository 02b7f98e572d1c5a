"""Store actor: the single writer to the sqlite database, with group commits."""

from __future__ import annotations

import time
from typing import Any

from actors.store.db import Database
from messages.pipeline import Drain, Persist
from supervisors.actor import SupervisedActor

__all__ = ["StoreActor"]


class StoreActor(SupervisedActor):
    """Writes every Persist as it arrives and commits when its mailbox runs dry (live), when
    ``commit_ms`` has passed, or on a Drain marker, so records never wait long and writes
    are batched under load. A backtest, whose records are read when it ends, commits only on
    the clock and at the end: fewer, larger commits write each page of the log once."""

    def setup(self) -> None:
        """Open the database (actor thread)."""
        self.db = Database(self.ctx.resources.get("db_path", self.ctx.settings.store.db))
        self.run = self.ctx.resources.get("run", self.ctx.mode)
        self.commit_ns = self.ctx.settings.store.commit_ms * 1_000_000
        self.last_commit = time.monotonic_ns()
        self.commit_when_idle = self.ctx.mode != "backtest"
        self.rows = 0
        self.wrote_bars = False

    def teardown(self) -> None:
        """Commit, bring the columnar copy of the bars up to date if bars were written, and close
        (actor thread)."""
        if hasattr(self, "db"):
            try:
                if getattr(self, "wrote_bars", False):
                    self.db.refresh_bar_copy()
            finally:
                self.db.close()

    def handle(self, message: Any) -> Any:
        """Write records, or commit and resolve a drain marker (actor thread)."""
        if isinstance(message, Persist):
            self._write(message)
            now = time.monotonic_ns()
            idle = self.commit_when_idle and self.actor_inbox.empty()  # type: ignore[attr-defined]
            if idle or now - self.last_commit > self.commit_ns:
                self.db.commit()
                self.last_commit = now
        elif isinstance(message, Drain):
            self.db.commit()
            message.done.set(True)
        else:
            raise TypeError(f"store cannot handle {type(message).__name__}")

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
        db.write_model_states(run, p.models)
        db.write_dead_letters(p.dead_letters)
