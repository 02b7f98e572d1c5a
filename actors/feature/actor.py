"""Feature actor: indicators for every frame, per symbol and timeframe."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from actors.feature.indicators import IndicatorSet, spec_for_column
from actors.strategy.registry import strategy_plan
from messages.pipeline import Drain, MarketBatch
from supervisors.actor import SupervisedActor

__all__ = ["FeatureActor"]

NEXT = "model"


class FeatureActor(SupervisedActor):
    """Adds the configured indicators, and those the symbol's strategy reads, to each frame."""

    downstream = NEXT

    def setup(self) -> None:
        """Read the indicator list and the strategy plan (actor thread)."""
        settings = self.ctx.settings
        self.plan = strategy_plan(settings.strategy)
        model_inputs: tuple[str, ...] = ()
        if self.plan.needs_prediction:
            columns = {name for expr in settings.model.features for name in expr.split("/") if name != "close"}
            model_inputs = tuple(sorted({spec_for_column(column) for column in columns}))
        self.configured = tuple(dict.fromkeys(settings.feature.indicators + model_inputs))
        self.sets: dict[tuple[str, str], IndicatorSet] = {}
        self._touched: set[tuple[str, str]] = set()  # series updated since the last checkpoint
        self._saved: dict[tuple[str, str], IndicatorSet] = {}  # the last checkpoint, never changed

    def snapshot(self) -> Any:
        """Indicator states, after a batch with bars: the series it updated are copied, the
        others are taken from the previous checkpoint as they were."""
        if not self._touched:
            return None
        saved = dict(self._saved)
        for key in self._touched:
            saved[key] = copy.deepcopy(self.sets[key])
        self._touched.clear()
        self._saved = saved
        return saved

    def restore(self, state: Any) -> None:
        """Take back indicator states."""
        self.sets = copy.deepcopy(state)
        self._saved = state

    def handle(self, message: Any) -> Any:
        """Enrich one batch, or pass a marker on (actor thread)."""
        if isinstance(message, MarketBatch):
            if message.frames:
                self._touched.update((frame.symbol, frame.timeframe) for frame in message.frames)
                message = dataclasses.replace(message, frames=tuple(
                    dataclasses.replace(frame, features=self._set(frame.symbol, frame.timeframe).update(frame))
                    for frame in message.frames
                ))
            self.send(NEXT, message)
        elif isinstance(message, Drain):
            self.send(NEXT, message)
        else:
            raise TypeError(f"feature cannot handle {type(message).__name__}")

    def _set(self, symbol: str, timeframe: str) -> IndicatorSet:
        key = (symbol, timeframe)
        found = self.sets.get(key)
        if found is None:
            specs = dict.fromkeys(self.configured + self.plan.for_symbol(symbol).features)
            found = self.sets[key] = IndicatorSet(tuple(specs))
        return found
