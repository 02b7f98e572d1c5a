"""Strategy actor: turns enriched frames into signals."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from actors.strategy.sma_cross import SmaCross
from messages.market import BarFrame
from messages.pipeline import Drain, MarketBatch, Persist
from messages.trading import Signal
from supervisors.actor import SupervisedActor, publish

__all__ = ["StrategyActor"]

NEXT = "executor"


class StrategyActor(SupervisedActor):
    """Runs ``sma_cross`` per symbol and timeframe; stores and publishes every signal.

    It trades the timeframes in ``strategy.timeframes``, by default the frames the buffer did not
    derive (the bars built from ticks, or replayed); other frames end here. A ``history`` batch
    (stored bars at live start) warms the rules up, with no signal and no change of position,
    and ends here too.
    """

    downstream = NEXT

    def setup(self) -> None:
        """Read the strategy parameters (actor thread)."""
        settings = self.ctx.settings.strategy
        self.params = (settings.fast, settings.slow, settings.min_prob)
        self.timeframes = frozenset(settings.timeframes)
        self.rules: dict[tuple[str, str], SmaCross] = {}
        self._dirty = False

    def snapshot(self) -> Any:
        """Each rule's position and previous bar, after a batch with bars."""
        if not self._dirty:
            return None
        self._dirty = False
        return copy.deepcopy(self.rules)

    def restore(self, state: Any) -> None:
        """Take back the rules' state."""
        self.rules = copy.deepcopy(state)

    def handle(self, message: Any) -> Any:
        """Decide on one batch, or pass a marker on (actor thread)."""
        if isinstance(message, MarketBatch) and message.history:
            self._warm_up(message)
        elif isinstance(message, MarketBatch):
            if message.frames:
                self._dirty = True
                message = self._decide(message)
            self.send(NEXT, message)
        elif isinstance(message, Drain):
            self.send(NEXT, message)
        else:
            raise TypeError(f"strategy cannot handle {type(message).__name__}")

    def _traded(self, frame: BarFrame) -> bool:
        return frame.timeframe in self.timeframes if self.timeframes else not frame.derived

    def _rule(self, frame: BarFrame) -> SmaCross:
        key = (frame.symbol, frame.timeframe)
        rule = self.rules.get(key)
        if rule is None:
            rule = self.rules[key] = SmaCross(*self.params)
        return rule

    def _warm_up(self, batch: MarketBatch) -> None:
        for frame in filter(self._traded, batch.frames):
            rule = self._rule(frame)
            position = rule.long
            rule.update(frame)
            rule.long = position
        self._dirty = True

    def _decide(self, batch: MarketBatch) -> MarketBatch:
        frames = []
        signals: list[Signal] = []
        for frame in filter(self._traded, batch.frames):
            column, new = self._rule(frame).update(frame)
            frames.append(dataclasses.replace(frame, signal=column))
            signals.extend(new)
        if signals:
            self.ctx.counters.add(signals=len(signals))
            self.send("store", Persist(signals=tuple(signals)))
            for signal in signals:
                publish(self.ctx, f"signal.{signal.symbol}", signal)
        return dataclasses.replace(batch, frames=tuple(frames), signals=batch.signals + tuple(signals))
