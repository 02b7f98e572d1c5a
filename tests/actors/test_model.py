"""Online logistic regression: warm-up, range, no look-ahead, determinism, feature expressions."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from actors.feature.indicators import IndicatorSet
from actors.model.logistic import OnlineLogit, feature_matrix
from messages.market import BarFrame, readonly
from settings import ModelSettings

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample_2024_1h.csv.gz"
SPECS = ("sma:10", "sma:30", "ema:12", "ema:26", "ret:1")  # what the default model features read
EXPRESSIONS = ModelSettings().features  # ret_1, close/sma_10, sma_10/sma_30, ema_12/ema_26
WARMUP = 29  # sma_30 is the slowest feature: first value at index 29


@pytest.fixture(scope="module")
def btc() -> pd.DataFrame:
    sample = pd.read_csv(SAMPLE)
    return sample[sample["symbol"] == "BTCUSD"].head(2000).reset_index(drop=True)


def frame_of(close: np.ndarray) -> BarFrame:
    n = len(close)
    return BarFrame.from_columns("BTCUSD", "1h", ts=np.arange(1, n + 1) * 3_600_000_000_000, open=close,
                                 high=close, low=close, close=close, volume=np.ones(n))


def predictions(close: np.ndarray, chunks: tuple[int, ...] | None = None) -> np.ndarray:
    """Run features and model over the closes, in one frame or in chunks (as the pipeline would)."""
    indicators, model = IndicatorSet(SPECS), OnlineLogit(len(EXPRESSIONS))
    frame = frame_of(close)
    bounds = [0, *np.cumsum(chunks).tolist()] if chunks else [0, len(close)]
    out = []
    for start, stop in zip(bounds, bounds[1:]):
        part = frame.slice(start, stop)
        part = dataclasses.replace(part, features=indicators.update(part))
        out.append(model.predict_frame(feature_matrix(part, EXPRESSIONS), np.asarray(part.close)))
    return np.concatenate(out)


def test_predictions_are_nan_during_warm_up_then_probabilities(btc: pd.DataFrame) -> None:
    p = predictions(btc["close"].to_numpy())
    assert len(p) == 2000
    assert np.isnan(p[:WARMUP]).all()
    after = p[WARMUP:]
    assert not np.isnan(after).any()
    assert ((after > 0.0) & (after < 1.0)).all()


def test_first_prediction_after_warm_up_is_one_half(btc: pd.DataFrame) -> None:
    assert predictions(btc["close"].to_numpy())[WARMUP] == 0.5


def test_predictions_are_not_constant_on_the_sample(btc: pd.DataFrame) -> None:
    after = predictions(btc["close"].to_numpy())[WARMUP:]
    assert len(np.unique(after)) > 1000
    assert after.std() > 1e-3


@pytest.mark.parametrize("k", [WARMUP - 1, WARMUP, WARMUP + 1, 500, 1998])
def test_changing_later_bars_never_changes_earlier_predictions(btc: pd.DataFrame, k: int) -> None:
    close = btc["close"].to_numpy()
    base = predictions(close)
    changed = close.copy()
    rng = np.random.default_rng(k)
    changed[k + 1:] *= np.exp(rng.normal(0.0, 0.05, len(close) - k - 1))
    altered = predictions(changed)
    assert np.array_equal(altered[: k + 1], base[: k + 1], equal_nan=True)
    if k + 2 < len(close):
        assert not np.array_equal(altered[k + 2:], base[k + 2:])  # the change did reach later predictions


def test_two_runs_give_identical_predictions(btc: pd.DataFrame) -> None:
    close = btc["close"].to_numpy()
    assert np.array_equal(predictions(close), predictions(close), equal_nan=True)


def test_chunked_predictions_equal_one_frame(btc: pd.DataFrame) -> None:
    close = btc["close"].to_numpy()
    assert np.array_equal(predictions(close, (7, 1, 100, 1, 500, 1391)), predictions(close), equal_nan=True)


def test_model_learns_the_base_rate_of_rising_closes() -> None:
    rng = np.random.default_rng(0)
    close = 100.0 + np.cumsum(rng.uniform(0.01, 1.0, 300))  # every close is higher than the last
    model = OnlineLogit(1)
    p = model.predict_frame(rng.normal(size=(300, 1)), close)
    assert p[0] == 0.5
    assert p[-1] > 0.9
    assert model.updates == 299
    assert model.bias > 0


def test_nan_features_reset_learning_until_features_are_whole_again() -> None:
    model = OnlineLogit(1)
    assert math.isnan(model.step([math.nan], 10.0))
    assert model.step([1.0], 11.0) == 0.5  # nothing to learn from: the previous bar had no features
    assert model.updates == 0
    model.step([2.0], 12.0)
    assert model.updates == 1


def test_feature_matrix_evaluates_names_and_ratio_expressions() -> None:
    close = np.array([10.0, 12.0, 9.0])
    sma2 = readonly(np.array([np.nan, 11.0, 10.5]))
    sma4 = readonly(np.array([np.nan, np.nan, 10.0]))
    frame = dataclasses.replace(frame_of(close), features=(("sma_2", sma2), ("sma_4", sma4)))
    matrix = feature_matrix(frame, ("sma_2", "close/sma_2", "sma_2/sma_4", "close/close"))
    assert matrix.shape == (3, 4)
    assert np.array_equal(matrix[:, 0], sma2, equal_nan=True)
    assert np.isnan(matrix[0, 1]) and matrix[1:, 1].tolist() == pytest.approx([12.0 / 11.0 - 1.0, 9.0 / 10.5 - 1.0])
    assert np.isnan(matrix[:2, 2]).all() and matrix[2, 2] == pytest.approx(0.05)
    assert matrix[:, 3].tolist() == [0.0, 0.0, 0.0]


def test_feature_matrix_without_expressions_has_no_columns() -> None:
    assert feature_matrix(frame_of(np.ones(4)), ()).shape == (4, 0)


def test_feature_matrix_names_a_missing_feature_and_the_setting_to_fix() -> None:
    with pytest.raises(KeyError, match=r"'sma_10'.*feature\.indicators"):
        feature_matrix(frame_of(np.ones(3)), ("close/sma_10",))


def test_three_steps_match_hand_computed_sgd_and_welford() -> None:
    def sigmoid(v: float) -> float:
        return 1.0 / (1.0 + math.exp(-v))

    model = OnlineLogit(1, learning_rate=0.5, l2=0.0)
    # bar 0: nothing learned; one observation has no spread, so z = 0 and p = sigmoid(0)
    assert model.step([1.0], 10.0) == 0.5
    # bar 1: learn bar 0 (label 1: 11 > 10; z = 0): error -0.5, bias 0.25, weight 0.
    #        mean 2, population std 1, z = (3 - 2) / 1 = 1; p = sigmoid(0 * 1 + 0.25)
    assert model.step([3.0], 11.0) == pytest.approx(sigmoid(0.25), rel=1e-12)
    assert (model.weights, model.bias) == ([0.0], 0.25)
    # bar 2: learn bar 1 (label 0: 10.5 < 11; z = 1): error sigmoid(0.25),
    #        weight -0.5 * error, bias 0.25 - 0.5 * error; x = 2 is the mean, so z = 0
    error = sigmoid(0.25)
    p = model.step([2.0], 10.5)
    assert model.weights[0] == pytest.approx(-0.5 * error, rel=1e-12)
    assert model.bias == pytest.approx(0.25 - 0.5 * error, rel=1e-12)
    assert p == pytest.approx(sigmoid(0.25 - 0.5 * error), rel=1e-12)
    assert model.mean == [2.0] and model.m2[0] == pytest.approx(2.0) and model.updates == 2


def test_model_learns_a_feature_that_predicts_the_next_move_and_l2_shrinks_it() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(400, 2))
    moves = np.where(x[:, 0] > 0, 1.0, -1.0)  # bar t's feature 0 says where close[t+1] goes
    close = 100.0 + np.concatenate(([0.0], np.cumsum(moves[:-1])))
    free, shrunk = OnlineLogit(2, 0.05, 0.0), OnlineLogit(2, 0.05, 0.5)
    p = free.predict_frame(x, close)
    shrunk.predict_frame(x, close)
    assert free.weights[0] > 1.0 and abs(free.weights[1]) < free.weights[0] / 4
    hits = ((p[200:-1] > 0.5) == (moves[200:-1] > 0)).mean()
    assert hits > 0.9
    assert 0.0 < shrunk.weights[0] < free.weights[0]


# ---------------------------------------------------------------------------------------------
# state: exact round trip through JSON


def test_state_through_json_continues_exactly_like_the_uninterrupted_model(btc: pd.DataFrame) -> None:
    import json

    close = btc["close"].to_numpy()
    indicators, frame = IndicatorSet(SPECS), frame_of(close)
    frame = dataclasses.replace(frame, features=indicators.update(frame))
    matrix = feature_matrix(frame, EXPRESSIONS)
    whole = OnlineLogit(len(EXPRESSIONS)).predict_frame(matrix, close)
    first = OnlineLogit(len(EXPRESSIONS))
    head = first.predict_frame(matrix[:1234], close[:1234])
    second = OnlineLogit.from_state(json.loads(json.dumps(first.state())))
    tail = second.predict_frame(matrix[1234:], close[1234:])
    assert np.array_equal(np.concatenate((head, tail)), whole, equal_nan=True)
    assert OnlineLogit.from_state(first.state()).state() == first.state() != OnlineLogit(4).state()


def test_a_state_of_the_wrong_shape_is_refused() -> None:
    state = OnlineLogit(2).state()
    with pytest.raises(ValueError, match="2 weights for 3 features"):
        OnlineLogit.from_state({**state, "k": 3})
    with pytest.raises(ValueError, match="not a logistic model state"):
        OnlineLogit.from_state({"k": 2})


def test_forgetting_the_previous_bar_skips_one_lesson() -> None:
    model = OnlineLogit(1)
    model.step([1.0], 10.0)
    model.forget_previous()
    model.step([2.0], 11.0)
    assert model.updates == 0
    model.step([3.0], 12.0)
    assert model.updates == 1


# ---------------------------------------------------------------------------------------------
# plug-ins


from actors.model.plugin import PluginError, PluginModel, load_plugin  # noqa: E402

PLUGINS = "tests.actors.plugin_models"


def test_a_class_plugin_gets_one_instance_per_series_and_only_whole_rows() -> None:
    target = load_plugin(f"{PLUGINS}:Momentum")
    a, b = PluginModel(target, "m"), PluginModel(target, "m")
    assert a.predictor is not b.predictor
    matrix = np.array([[np.nan, 1.0], [0.01, 1.0], [-0.01, np.inf], [-0.01, 2.0]])
    p = a.predict_frame(matrix, np.ones(4))
    assert np.isnan(p[0]) and np.isnan(p[2])
    assert p[1] == pytest.approx(1 / (1 + math.exp(-1))) and p[3] == pytest.approx(1 / (1 + math.exp(1)))


def test_an_object_with_predict_proba_two_columns_gives_column_one() -> None:
    model = PluginModel(load_plugin(f"{PLUGINS}:FITTED"), "fitted")
    assert model.predict_frame(np.array([[1.0], [-1.0]]), np.ones(2)).tolist() == [0.7, 0.3]


def test_a_callable_plugin_may_answer_one_column() -> None:
    model = PluginModel(load_plugin(f"{PLUGINS}:always_up"), "up")
    assert model.predict_frame(np.zeros((3, 2)), np.ones(3)).tolist() == [0.9, 0.9, 0.9]


def test_a_row_wise_plugin_gives_the_same_answers_whatever_the_batching(btc: pd.DataFrame) -> None:
    close = btc["close"].to_numpy()
    frame = frame_of(close)
    frame = dataclasses.replace(frame, features=IndicatorSet(SPECS).update(frame))
    matrix = feature_matrix(frame, EXPRESSIONS)
    model = PluginModel(load_plugin(f"{PLUGINS}:Momentum"), "m")
    whole = model.predict_frame(matrix, close)
    parts = np.concatenate([model.predict_frame(matrix[i:i + 37], close[i:i + 37]) for i in range(0, len(close), 37)])
    assert np.array_equal(parts, whole, equal_nan=True)
    assert np.isnan(whole[:WARMUP]).all() and not np.isnan(whole[WARMUP:]).any()


@pytest.mark.parametrize(("path", "message"), [
    ("tests.actors.plugin_models", "is not 'package.module:attr'"),
    ("no_such_package.models:Model", "cannot import 'no_such_package.models': ModuleNotFoundError"),
    (f"{PLUGINS}:Nope", f"module '{PLUGINS}' has no attribute 'Nope'"),
    (f"{PLUGINS}:NOT_A_MODEL", "is neither a class, an object with predict_proba, nor a callable"),
])
def test_a_plugin_that_cannot_load_is_a_clear_error(path: str, message: str) -> None:
    with pytest.raises(PluginError, match=message):
        load_plugin(path)


@pytest.mark.parametrize(("attr", "message"), [
    ("wrong_shape", r"returned shape \(4,\) for 3 rows"),
    ("not_a_probability", r"outside \[0, 1\]"),
])
def test_a_plugin_answering_something_else_than_probabilities_fails_loudly(attr: str, message: str) -> None:
    model = PluginModel(load_plugin(f"{PLUGINS}:{attr}"), attr)
    with pytest.raises(PluginError, match=message):
        model.predict_frame(np.zeros((3, 1)), np.ones(3))
