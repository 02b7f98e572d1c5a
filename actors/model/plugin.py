"""Plug-in models, loaded by import path: a class, an object with ``predict_proba``, or a callable.

Settings ``model.kind = "plugin"`` and ``model.plugin = "package.module:attr"`` (``attr`` may be
dotted). What ``attr`` names decides how it is used:

- a class: instantiated with no arguments, once per symbol and timeframe;
- an object with ``predict_proba(X)`` (e.g. a fitted scikit-learn classifier): shared by all series;
- any other callable ``f(X)``.

X is a float64 matrix, one row per bar and one column per ``model.features`` expression, holding
only bars whose features are all finite (warm-up bars get NaN without a call). The answer is the
probability that the next close is higher, one per row: shape (n,), (n, 1), or scikit-learn's
(n, 2) with P(up) in column 1; every value finite in [0, 1]. A row's answer must depend on that
row only: the engine calls the model on batches of any size, and it never shows it a bar before
that bar has closed. Plug-ins predict; they are not trained by the engine nor checkpointed.

Nothing is ever unpickled here: a plug-in is code you install and import. If your plug-in loads a
pickled (or joblib) model file, remember that unpickling runs whatever code the file contains;
load only files you made or trust.
"""

from __future__ import annotations

import importlib
import math
from typing import Any

import numpy as np

from supervisors.errors import PluginError

__all__ = ["PluginError", "PluginModel", "load_plugin"]


def load_plugin(path: str) -> Any:
    """Import ``"package.module:attr"`` and return the attribute; PluginError if that fails."""
    module_name, colon, attr = path.partition(":")
    if not colon or not module_name or not attr:
        raise PluginError(f"{path!r} is not 'package.module:attr', e.g. 'mymodels.momentum:Model'")
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as exc:  # an import runs arbitrary code: report whatever it raised
        raise PluginError(f"cannot import {module_name!r}: {type(exc).__name__}: {exc}") from exc
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise PluginError(f"module {module_name!r} has no attribute {attr!r}") from None
    if not (isinstance(target, type) or hasattr(target, "predict_proba") or callable(target)):
        raise PluginError(f"{path!r} is neither a class, an object with predict_proba, nor a callable")
    return target


def _probabilities(raw: Any, rows: int, name: str) -> np.ndarray:
    values = np.asarray(raw, dtype=np.float64)
    if values.ndim == 2 and values.shape[1] in (1, 2):
        values = values[:, -1]
    if values.shape != (rows,):
        raise PluginError(f"model plugin {name} returned shape {np.shape(raw)} for {rows} rows; "
                          "expected (n,), (n, 1) or (n, 2) probabilities")
    if not (np.isfinite(values) & (values >= 0.0) & (values <= 1.0)).all():
        raise PluginError(f"model plugin {name} returned values outside [0, 1] or not finite")
    return values


class PluginModel:
    """A plug-in serving one symbol and timeframe."""

    def __init__(self, target: Any, name: str) -> None:
        self.name = name
        self.predictor = target() if isinstance(target, type) else target
        self._predict = getattr(self.predictor, "predict_proba", None) or self.predictor
        if not callable(self._predict):
            raise PluginError(f"model plugin {name} has no predict_proba and is not callable")

    def predict_frame(self, matrix: np.ndarray, close: np.ndarray) -> np.ndarray:
        """P(up) for every bar; NaN where a feature is not finite yet."""
        out = np.full(len(matrix), math.nan)
        whole = np.isfinite(matrix).all(axis=1)
        if whole.any():
            rows = np.ascontiguousarray(matrix[whole], dtype=np.float64)
            out[whole] = _probabilities(self._predict(rows), len(rows), self.name)
        return out
