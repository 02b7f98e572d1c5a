"""The backtest feed actor: replays stored bars down the pipeline."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from actors.feed.replay import replay_chunks
from messages.pipeline import Drain, MarketBatch
from messages.system import Crash
from supervisors.actor import SupervisedActor
from supervisors.clock import SimClock

__all__ = ["ReplayActor", "StartReplay"]

NEXT = "buffer"


@dataclass(frozen=True, slots=True)
class StartReplay:
    """Tell the replay actor to send the whole data set down the pipeline.

    ``faults`` is fault injection for chaos runs: ``(bars, actor)`` pairs; once ``bars`` bars
    have been sent, the replay tells ``actor`` to crash, so the crash lands mid-stream.
    """

    faults: tuple[tuple[int, str], ...] = ()


class ReplayActor(SupervisedActor):
    """Backtest feed: replays bars in time order, in batches, moving the simulated clock."""

    downstream = NEXT

    def setup(self) -> None:
        """Nothing to open; the data is given by the runner (actor thread)."""
        self.bars: pd.DataFrame = self.ctx.resources["replay"]
        self.chunk = self.ctx.settings.backtest.chunk

    def handle(self, message: Any) -> Any:
        """Replay everything, or pass a marker on (actor thread)."""
        if isinstance(message, StartReplay):
            clock = self.ctx.clock
            faults = sorted(message.faults)
            sent = 0
            for seq, frames in enumerate(replay_chunks(self.bars, self.chunk), start=1):
                if isinstance(clock, SimClock):
                    clock.advance_to(max(int(f.ts[-1]) for f in frames))
                self.send(NEXT, MarketBatch(seq, 0, frames=frames))
                count = sum(len(f) for f in frames)
                sent += count
                self.ctx.counters.add(bars=count)
                while faults and faults[0][0] <= sent:
                    _, victim = faults.pop(0)
                    self.send(NEXT, Crash(f"injected after {sent} replayed bars", target=victim))
        elif isinstance(message, Drain):
            self.send(NEXT, message)
        else:
            raise TypeError(f"replay cannot handle {type(message).__name__}")
