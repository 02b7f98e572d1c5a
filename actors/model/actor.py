"""Model actor: a probability of a higher next close for every bar."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import numpy as np

from actors.model.logistic import OnlineLogit, feature_matrix
from messages.market import readonly
from messages.pipeline import Drain, MarketBatch
from messages.system import Query
from supervisors.actor import SupervisedActor

__all__ = ["ModelActor"]

NEXT = "strategy"


class ModelActor(SupervisedActor):
    """Runs one online logistic regression per symbol and timeframe."""

    downstream = NEXT

    def setup(self) -> None:
        """Read the model settings (actor thread)."""
        settings = self.ctx.settings.model
        self.enabled = settings.enabled
        self.expressions = settings.features
        self.learning_rate, self.l2 = settings.learning_rate, settings.l2
        self.models: dict[tuple[str, str], OnlineLogit] = {}
        self._dirty = False

    def snapshot(self) -> Any:
        """Model weights and running statistics, after a batch with bars."""
        if not self._dirty:
            return None
        self._dirty = False
        return copy.deepcopy(self.models)

    def restore(self, state: Any) -> None:
        """Take back the models."""
        self.models = copy.deepcopy(state)

    def handle(self, message: Any) -> Any:
        """Predict for one batch, or pass a marker on (actor thread)."""
        if isinstance(message, MarketBatch):
            if message.frames and self.enabled:
                self._dirty = True
                message = dataclasses.replace(message, frames=tuple(
                    dataclasses.replace(frame, prediction=readonly(self._model(frame.symbol, frame.timeframe)
                                        .predict_frame(feature_matrix(frame, self.expressions), np.asarray(frame.close))))
                    for frame in message.frames
                ))
            self.send(NEXT, message)
        elif isinstance(message, Drain):
            self.send(NEXT, message)
        elif isinstance(message, Query):
            return {f"{s}/{tf}": {"updates": m.updates, "weights": list(m.weights), "bias": m.bias}
                    for (s, tf), m in self.models.items()}
        else:
            raise TypeError(f"model cannot handle {type(message).__name__}")
        return None

    def _model(self, symbol: str, timeframe: str) -> OnlineLogit:
        key = (symbol, timeframe)
        found = self.models.get(key)
        if found is None:
            found = self.models[key] = OnlineLogit(len(self.expressions), self.learning_rate, self.l2)
        return found
