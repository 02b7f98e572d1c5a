"""Online logistic regression: P(next close > this close) from the bar's features.

At each bar t, in order: (1) if there was a previous bar, learn from it, with the label
``close[t] > close[t-1]`` now known; (2) standardise the current features with running
means and variances (Welford) that include only bars up to t; (3) predict. Nothing from
after bar t is used for the prediction at t. Weights start at zero, so the model starts at
0.5 and becomes informative as it learns; there is no randomness anywhere.

Feature expressions: a feature name (``ret_1``), or ``a/b`` meaning ``a / b - 1`` where a
and b are feature names or ``close``.

``state`` and ``from_state`` turn the model into plain JSON-able values and back, exactly
(floats survive a JSON round trip bit for bit), so the store keeps it without pickle.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from messages.market import BarFrame

__all__ = ["OnlineLogit", "feature_matrix"]


def _column(frame: BarFrame, name: str) -> np.ndarray:
    if name == "close":
        return np.asarray(frame.close)
    try:
        return np.asarray(frame.feature(name))
    except KeyError:
        raise KeyError(f"model feature {name!r} is not computed; add it to feature.indicators") from None


def feature_matrix(frame: BarFrame, expressions: tuple[str, ...]) -> np.ndarray:
    """Return the (bars x features) matrix for the expressions."""
    columns = []
    for expr in expressions:
        top, slash, bottom = expr.partition("/")
        if slash:
            columns.append(_column(frame, top) / _column(frame, bottom) - 1.0)
        else:
            columns.append(_column(frame, top))
    return np.column_stack(columns) if columns else np.empty((len(frame), 0))


class OnlineLogit:
    """The model for one symbol and timeframe."""

    def __init__(self, n_features: int, learning_rate: float = 0.05, l2: float = 1e-4) -> None:
        self.k = n_features
        self.lr = learning_rate
        self.l2 = l2
        self.weights = [0.0] * n_features
        self.bias = 0.0
        self.count = 0
        self.mean = [0.0] * n_features
        self.m2 = [0.0] * n_features
        self._prev_z: list[float] | None = None
        self._prev_close = math.nan
        self.updates = 0

    def step(self, x: list[float], close: float) -> float:
        """Learn from the previous bar, then predict for this one (NaN while features warm up)."""
        if any(v != v for v in x):  # NaN: still warming up
            self._prev_z = None
            self._prev_close = close
            return math.nan
        w, k = self.weights, self.k
        if self._prev_z is not None:
            label = 1.0 if close > self._prev_close else 0.0
            z = self._prev_z
            error = _sigmoid(sum(w[j] * z[j] for j in range(k)) + self.bias) - label
            for j in range(k):
                w[j] -= self.lr * (error * z[j] + self.l2 * w[j])
            self.bias -= self.lr * error
            self.updates += 1
        self.count += 1
        z = []
        for j in range(k):
            delta = x[j] - self.mean[j]
            self.mean[j] += delta / self.count
            self.m2[j] += delta * (x[j] - self.mean[j])
            std = math.sqrt(self.m2[j] / self.count) if self.count > 1 else 0.0
            z.append((x[j] - self.mean[j]) / std if std > 0.0 else 0.0)
        self._prev_z = z
        self._prev_close = close
        return _sigmoid(sum(w[j] * z[j] for j in range(k)) + self.bias)

    def forget_previous(self) -> None:
        """Do not learn from the last bar seen (after a restart, the next bar may not follow it)."""
        self._prev_z = None
        self._prev_close = math.nan

    def state(self) -> dict[str, Any]:
        """Everything learned, as JSON-able values (hyperparameters excluded)."""
        return {
            "k": self.k, "weights": list(self.weights), "bias": self.bias, "count": self.count,
            "mean": list(self.mean), "m2": list(self.m2), "updates": self.updates,
            "prev_z": None if self._prev_z is None else list(self._prev_z),
            "prev_close": None if math.isnan(self._prev_close) else self._prev_close,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], learning_rate: float = 0.05, l2: float = 1e-4) -> OnlineLogit:
        """Rebuild a model from ``state()``; ValueError if it is not one."""
        try:
            model = cls(int(state["k"]), learning_rate, l2)
            model.weights = [float(v) for v in state["weights"]]
            model.bias = float(state["bias"])
            model.count = int(state["count"])
            model.mean = [float(v) for v in state["mean"]]
            model.m2 = [float(v) for v in state["m2"]]
            model.updates = int(state["updates"])
            prev_z = state["prev_z"]
            model._prev_z = None if prev_z is None else [float(v) for v in prev_z]
            model._prev_close = math.nan if state["prev_close"] is None else float(state["prev_close"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a logistic model state: {exc!r}") from None
        if not len(model.weights) == len(model.mean) == len(model.m2) == model.k:
            raise ValueError(f"logistic model state has {len(model.weights)} weights for {model.k} features")
        return model

    def predict_frame(self, matrix: np.ndarray, close: np.ndarray) -> np.ndarray:
        """Run ``step`` over every bar of a frame."""
        out = np.empty(len(close))
        for i, (row, c) in enumerate(zip(matrix.tolist(), close.tolist(), strict=True)):
            out[i] = self.step(row, c)
        return out


def _sigmoid(value: float) -> float:
    if value >= 0:
        return 1.0 / (1.0 + math.exp(-value))
    e = math.exp(value)
    return e / (1.0 + e)
