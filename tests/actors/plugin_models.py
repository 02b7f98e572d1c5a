"""Plug-in models for the tests, loaded by import path like a user's own."""

from __future__ import annotations

import numpy as np


class Momentum:
    """A class: one instance per series; P(up) rises with the first feature."""

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """One probability per row."""
        return 1.0 / (1.0 + np.exp(-100.0 * x[:, 0]))


class _Fitted:
    """Like a fitted scikit-learn classifier: (n, 2) with P(down), P(up)."""

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        up = np.where(x[:, 0] > 0, 0.7, 0.3)
        return np.column_stack((1.0 - up, up))


FITTED = _Fitted()


def always_up(x: np.ndarray) -> np.ndarray:
    """A plain callable, answering (n, 1)."""
    return np.full((len(x), 1), 0.9)


def wrong_shape(x: np.ndarray) -> np.ndarray:
    """Answers one value too many."""
    return np.full(len(x) + 1, 0.5)


def not_a_probability(x: np.ndarray) -> np.ndarray:
    """Answers values outside [0, 1]."""
    return np.full(len(x), 1.5)


NOT_A_MODEL = 3
