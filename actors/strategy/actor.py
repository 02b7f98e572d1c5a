"""Strategy actor: gives enriched frames their deciders, each symbol with its own strategy."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from actors.strategy.api import Strategy
from actors.strategy.registry import strategy_plan
from messages.market import BarFrame
from messages.pipeline import Drain, MarketBatch
from supervisors.actor import SupervisedActor

__all__ = ["StrategyActor"]

NEXT = "executor"


class StrategyActor(SupervisedActor):
    """Runs, per symbol and timeframe, the strategy the plan gives the symbol, and hands each
    traded frame on with its decider: what the strategy would do at each bar for a position.

    The position is the executor's: it asks the decider at each bar's close with the position
    its account holds then, and stores and publishes the signals it takes. The strategy keeps
    no position of its own, so nothing here has to agree with the account after a rejected
    order, a restart or a restore from the store.

    It trades the timeframes in ``strategy.timeframes``, by default the frames the buffer did not
    derive (the bars built from ticks, or replayed); other frames end here. A ``history`` batch
    (stored bars at live start) warms the rules up and ends here too.
    """

    downstream = NEXT

    def setup(self) -> None:
        """Read the strategy plan (actor thread)."""
        self.plan = strategy_plan(self.ctx.settings.strategy)
        self.timeframes = frozenset(self.ctx.settings.strategy.timeframes)
        self.rules: dict[tuple[str, str], Strategy] = {}
        self._dirty = False

    def snapshot(self) -> Any:
        """Each rule's previous bar, after a batch with bars. A rule rebinds its attributes to new
        immutable values and never changes one in place, so a shallow copy of each rule is its state."""
        if not self._dirty:
            return None
        self._dirty = False
        return {key: copy.copy(rule) for key, rule in self.rules.items()}

    def restore(self, state: Any) -> None:
        """Take back the rules' state."""
        self.rules = {key: copy.copy(rule) for key, rule in state.items()}

    def handle(self, message: Any) -> Any:
        """Evaluate one batch, or pass a marker on (actor thread)."""
        if isinstance(message, MarketBatch) and message.history:
            for frame in filter(self._traded, message.frames):
                self._rule(frame).evaluate(frame)
            self._dirty = True
        elif isinstance(message, MarketBatch):
            if message.frames:
                self._dirty = True
                message = dataclasses.replace(message, frames=tuple(
                    dataclasses.replace(frame, decider=self._rule(frame).decider(frame))
                    for frame in filter(self._traded, message.frames)))
            self.send(NEXT, message)
        elif isinstance(message, Drain):
            self.send(NEXT, message)
        else:
            raise TypeError(f"strategy cannot handle {type(message).__name__}")

    def _traded(self, frame: BarFrame) -> bool:
        return frame.timeframe in self.timeframes if self.timeframes else not frame.derived

    def _rule(self, frame: BarFrame) -> Strategy:
        key = (frame.symbol, frame.timeframe)
        rule = self.rules.get(key)
        if rule is None:
            rule = self.rules[key] = self.plan.for_symbol(frame.symbol).build()
        return rule
