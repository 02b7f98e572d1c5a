"""Strategy actor: turns enriched frames into signals, each symbol with its own strategy."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pykka

from actors.strategy.registry import StrategyRule, strategy_plan
from messages.market import BarFrame
from messages.pipeline import Drain, MarketBatch, Persist
from messages.system import Query
from messages.trading import Signal
from supervisors.actor import SupervisedActor, publish_all

__all__ = ["StrategyActor"]

NEXT = "executor"


class StrategyActor(SupervisedActor):
    """Runs, per symbol and timeframe, the strategy the plan gives the symbol; stores and publishes
    every signal with its inputs and the strategy's parameters.

    It trades the timeframes in ``strategy.timeframes``, by default the frames the buffer did not
    derive (the bars built from ticks, or replayed); other frames end here. A ``history`` batch
    (stored bars at live start) warms the rules up, with no signal and no change of position,
    and ends here too.
    """

    downstream = NEXT

    def setup(self) -> None:
        """Read the strategy plan; in live, learn from the executor which symbols are held (actor thread).

        After a process restart the account comes back from the store, so the rules must start
        long where the account is long, or they would never sell what is held.
        """
        self.plan = strategy_plan(self.ctx.settings.strategy)
        self.timeframes = frozenset(self.ctx.settings.strategy.timeframes)
        self.rules: dict[tuple[str, str], StrategyRule] = {}
        self._dirty = False
        self.held: set[str] = set()
        if self.ctx.mode == "live" and self.name not in self.ctx.checkpoints:
            try:
                positions = self.ctx.registry.address("executor").ask(Query("positions"), timeout=5.0)["positions"]
            except (pykka.ActorDeadError, pykka.Timeout) as exc:
                raise RuntimeError("cannot learn the positions from the executor") from exc
            self.held = {symbol for symbol, p in positions.items() if p["qty"] > 0}
            if self.held:
                self.log.info("strategy starts long in {} (positions held by the account)", ", ".join(sorted(self.held)))

    def snapshot(self) -> Any:
        """Each rule's position and previous bar, after a batch with bars. A rule rebinds its
        attributes to new immutable values and never changes one in place, so a shallow copy of
        each rule is its state."""
        if not self._dirty:
            return None
        self._dirty = False
        return {key: copy.copy(rule) for key, rule in self.rules.items()}

    def restore(self, state: Any) -> None:
        """Take back the rules' state."""
        self.rules = {key: copy.copy(rule) for key, rule in state.items()}

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

    def _rule(self, frame: BarFrame) -> StrategyRule:
        key = (frame.symbol, frame.timeframe)
        rule = self.rules.get(key)
        if rule is None:
            rule = self.rules[key] = self.plan.for_symbol(frame.symbol).build()
            rule.long = frame.symbol in self.held
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
            signals += new
        if signals:
            self.ctx.counters.add(signals=len(signals))
            self.send("store", Persist(signals=tuple(signals)))
            publish_all(self.ctx, "signal", signals)
        return dataclasses.replace(batch, frames=tuple(frames), signals=batch.signals + tuple(signals))
