"""The backtest feed actor: replays stored bars down the pipeline, one batch per message, with a
bounded number of bars in flight."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from actors.feed.replay import ReplayPlan, has_credit
from messages.pipeline import Drain, MarketBatch
from messages.system import Crash, Internal
from supervisors.actor import SupervisedActor
from supervisors.clock import SimClock

__all__ = ["ReplayActor", "StartReplay"]

NEXT = "buffer"
CREDIT_WAIT_S = 0.02  # longest a step waits for credit before it yields to the mailbox (heartbeats)


@dataclass(frozen=True, slots=True, eq=False)
class StartReplay:
    """Tell the replay actor to send its data set down the pipeline, batch by batch.

    ``done`` (a pykka.ThreadingFuture, optional) resolves with the number of bars sent once the
    last batch is out. ``faults`` is fault injection for chaos runs: ``(bars, actor)`` pairs; once
    ``bars`` bars have been sent, the replay tells ``actor`` to crash, so the crash lands mid-stream.
    """

    faults: tuple[tuple[int, str], ...] = ()
    done: Any = field(default=None, repr=False)


class _Step(Internal):
    """Send the next batch when there is credit (told by the replay actor to itself)."""

    __slots__ = ()


_STEP = _Step()


@dataclass(frozen=True, slots=True)
class _Position:
    """Where a replay is: checkpointed after every step, so a new incarnation resumes there."""

    next_batch: int
    sent: int
    faults: tuple[tuple[int, str], ...]
    done: Any


class ReplayActor(SupervisedActor):
    """Backtest feed: replays bars in time order, one batch per message, moving the simulated clock.

    Flow control: a batch is sent only while fewer than ``backtest.window`` x ``backtest.chunk``
    bars are in the pipeline, counted from its end (the executor's ``bars_processed`` and the
    supervisors' ``bars_dead_lettered``, see ``replay.in_flight``), so memory is bounded by the
    window, not by the data set. Each batch is one step (a message to itself): between steps the
    actor answers heartbeats and markers, and a restarted incarnation resumes at the next batch.
    """

    downstream = NEXT
    checkpoint_on = (StartReplay, _Step)

    def setup(self) -> None:
        """Take the replay plan given by the runner (actor thread)."""
        self.plan: ReplayPlan = self.ctx.deps.need("replay")
        backtest = self.ctx.settings.backtest
        self.window_bars = backtest.window * backtest.chunk
        self.position: _Position | None = None
        self._dirty = False

    def snapshot(self) -> Any:
        """The replay's position, after a step that moved it."""
        if not self._dirty:
            return None
        self._dirty = False
        return self.position

    def restore(self, state: Any) -> None:
        """Resume a replay where the last incarnation left it (actor thread)."""
        self.position = state
        if state.next_batch < len(self.plan):
            self.actor_ref.tell(_STEP)

    def handle(self, message: Any) -> Any:
        """Start the replay, send one batch, or pass a marker on (actor thread)."""
        if isinstance(message, _Step):
            self._step()
        elif isinstance(message, StartReplay):
            self.position = _Position(0, 0, tuple(sorted(message.faults)), message.done)
            self._dirty = True
            self._step()
        elif isinstance(message, Drain):
            self.send(NEXT, message)
        else:
            raise TypeError(f"replay cannot handle {type(message).__name__}")

    def _step(self) -> None:
        position, plan = self.position, self.plan
        if position is None or position.next_batch >= len(plan):
            return
        counters = self.ctx.counters
        window = self.window_bars
        if not counters.wait_for(lambda c: has_credit(c, window), CREDIT_WAIT_S):
            self.actor_ref.tell(_STEP)  # no credit yet: let the mailbox (a heartbeat) in, then look again
            return
        frames = plan.batch(position.next_batch)
        clock = self.ctx.clock
        if isinstance(clock, SimClock):
            clock.advance_to(max(int(f.ts[-1]) for f in frames))
        count = sum(len(f) for f in frames)
        counters.add(bars=count, bars_read=count)  # before the send: the executor may count it processed at once
        self.send(NEXT, MarketBatch(position.next_batch + 1, 0, frames=frames))
        sent = position.sent + count
        faults = list(position.faults)
        while faults and faults[0][0] <= sent:
            _, victim = faults.pop(0)
            self.send(NEXT, Crash(f"injected after {sent} replayed bars", target=victim))
        self.position = _Position(position.next_batch + 1, sent, tuple(faults), position.done)
        self._dirty = True
        if self.position.next_batch < len(plan):
            self.actor_ref.tell(_STEP)
        elif position.done is not None:
            position.done.set(sent)
