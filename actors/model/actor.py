"""Model actor: a probability of a higher next close for every bar, when a strategy reads it."""

from __future__ import annotations

import copy
import dataclasses
import json
from typing import Any

import numpy as np

from actors.model.logistic import OnlineLogit, feature_matrix
from actors.model.plugin import PluginModel, load_plugin
from actors.store.reader import StoreReader
from actors.strategy.registry import strategy_plan
from messages.market import BarFrame, readonly
from messages.pipeline import Drain, MarketBatch, ModelState, Persist
from messages.system import Query
from supervisors.actor import SupervisedActor

__all__ = ["ModelActor"]

NEXT = "strategy"

Key = tuple[str, str]


class ModelActor(SupervisedActor):
    """Runs one model per symbol and timeframe: the online logistic regression, or a plug-in.

    When no configured strategy reads predictions (or ``model.enabled`` is false), frames pass
    through unchanged. The logistic models' state goes to the store every ``model.checkpoint_bars``
    bars per series and on every drain; a live process resumes from it.
    """

    downstream = NEXT

    def setup(self) -> None:
        """Read the model settings; in live mode, resume from the store (actor thread)."""
        settings = self.ctx.settings.model
        self.enabled = settings.enabled and strategy_plan(self.ctx.settings.strategy).needs_prediction
        self.timeframes = frozenset(self.ctx.settings.strategy.timeframes)  # what the strategy trades
        self.kind = settings.kind
        self.expressions = settings.features
        self.learning_rate, self.l2 = settings.learning_rate, settings.l2
        self.plugin = load_plugin(settings.plugin) if self.enabled and self.kind == "plugin" else None
        self.every = settings.checkpoint_bars if self.enabled and self.kind == "logistic" else 0
        self.run = self.ctx.deps.run
        self.models: dict[Key, OnlineLogit | PluginModel] = {}
        self.unsaved: dict[Key, tuple[int, int]] = {}  # bars since the last stored state, and the last bar's ts
        self.resumed: dict[Key, int] = {}  # a resumed state has learned every bar up to this ts
        self._dirty = False
        if self.every and self.ctx.mode == "live" and self.ctx.checkpoints.get(self.name) is None:
            self._resume()

    def snapshot(self) -> Any:
        """Model weights and running statistics, after a batch with bars."""
        if not self._dirty:
            return None
        self._dirty = False
        return copy.deepcopy((self.models, self.unsaved, self.resumed))

    def restore(self, state: Any) -> None:
        """Take back the models."""
        self.models, self.unsaved, self.resumed = copy.deepcopy(state)

    def _traded(self, frame: Any) -> bool:
        """Only frames a strategy trades get predictions (the strategy actor's rule)."""
        return frame.timeframe in self.timeframes if self.timeframes else not frame.derived

    def handle(self, message: Any) -> Any:
        """Predict for one batch, or store the models and pass a marker on (actor thread)."""
        if isinstance(message, MarketBatch):
            if message.frames and self.enabled:
                self._dirty = True
                message = dataclasses.replace(message, frames=tuple(
                    self._predict(f) if self._traded(f) else f for f in message.frames))
                self._store(due_only=True)
            self.send(NEXT, message)
        elif isinstance(message, Drain):
            self._store(due_only=False)
            self.send(NEXT, message)
        elif isinstance(message, Query):
            return {f"{s}/{tf}": {"updates": m.updates, "weights": list(m.weights), "bias": m.bias}
                    if isinstance(m, OnlineLogit) else {"plugin": m.name} for (s, tf), m in self.models.items()}
        else:
            raise TypeError(f"model cannot handle {type(message).__name__}")
        return None

    def _predict(self, frame: BarFrame) -> BarFrame:
        key = (frame.symbol, frame.timeframe)
        model = self.models.get(key)
        if model is None:
            model = self.models[key] = (
                PluginModel(self.plugin, self.ctx.settings.model.plugin) if self.plugin is not None
                else OnlineLogit(len(self.expressions), self.learning_rate, self.l2))
        start = 0
        if key in self.resumed:  # the stored history replayed at start: the resumed state knows it already
            start = int(np.searchsorted(frame.ts, self.resumed[key], side="right"))
            if start < len(frame):
                del self.resumed[key]
        prediction = np.full(len(frame), np.nan)
        if start < len(frame):
            part = frame if start == 0 else frame.slice(start, len(frame))
            prediction[start:] = model.predict_frame(feature_matrix(part, self.expressions), np.asarray(part.close))
        if self.every and len(frame) > start:
            count, _ = self.unsaved.get(key, (0, 0))
            self.unsaved[key] = (count + len(frame), int(frame.ts[-1]))
        return dataclasses.replace(frame, prediction=readonly(prediction))

    def _store(self, due_only: bool) -> None:
        """Send the state of every series due (or, on a drain, of every series with new bars) to the store."""
        due = [key for key, (count, _) in self.unsaved.items() if count and (count >= self.every or not due_only)]
        if not due:
            return
        states = []
        for key in due:
            model, (_, ts) = self.models[key], self.unsaved[key]
            if not isinstance(model, OnlineLogit):  # only the logistic model has a state to keep
                continue
            body = json.dumps({"features": list(self.expressions), **model.state()})
            states.append(ModelState(key[0], key[1], ts, "logistic", body))
            self.unsaved[key] = (0, ts)
        self._dirty = True
        self.send("store", Persist(models=tuple(states)))

    def _resume(self) -> None:
        """Load this run's stored logistic states; a state for other features is left out with a warning."""
        path = self.ctx.deps.db_path
        restored = 0
        with StoreReader(path) as store:
            stored = store.model_states(self.run)
        for row in stored:
            try:
                state = json.loads(row.state)
                if row.kind != "logistic" or state.get("features") != list(self.expressions):
                    raise ValueError(f"it is a {row.kind} model over {state.get('features')}, "
                                     f"not a logistic one over {list(self.expressions)}")
                model = OnlineLogit.from_state(state, self.learning_rate, self.l2)
            except ValueError as exc:
                self.log.warning("not resuming the model of {}/{}: {}", row.symbol, row.timeframe, exc)
                continue
            model.forget_previous()  # the next bar may come after a gap: learn from whole bars only
            self.models[(row.symbol, row.timeframe)] = model
            self.unsaved[(row.symbol, row.timeframe)] = (0, row.ts)
            self.resumed[(row.symbol, row.timeframe)] = row.ts
            restored += 1
        if restored:
            self._dirty = True
            self.log.info("model state of {} series resumed from the store (run {!r})", restored, self.run)
