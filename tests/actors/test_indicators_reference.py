"""Indicators against independent pandas/numpy references, TA-Lib when installed, and any batching."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.feature.indicators import VALID_FORMS, Indicator, IndicatorSet, output_names, parse_indicator
from messages.market import BarFrame

BARS = 10_000

# Every spec under test, with its documented warm-up (leading NaN) per output column.
WARMUP: dict[str, tuple[int, ...]] = {
    "sma:1": (0,), "sma:10": (9,), "sma:20": (19,), "sma:30": (29,),
    "ema:1": (0,), "ema:12": (11,), "ema:26": (25,),
    "wma:1": (0,), "wma:20": (19,),
    "std:1": (0,), "std:20": (19,),
    "rsi:1": (1,), "rsi:14": (14,),
    "atr:1": (1,), "atr:14": (14,),
    "macd:12:26:9": (25, 33, 33), "macd:1:2:1": (1, 1, 1),
    "bb:20:2": (19,) * 5, "bb:20:2.5": (19,) * 5,
    "ret:1": (1,), "ret:5": (5,), "logret:1": (1,), "logret:5": (5,),
    "hh:1": (0,), "hh:20": (19,), "ll:20": (19,),
}


def random_walk(n: int, seed: int) -> pd.DataFrame:
    """OHLC bars of a geometric random walk, high >= max(open, close) and low <= min(open, close)."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    open_ = np.concatenate(([100.0], close[:-1])) * np.exp(rng.normal(0.0, 0.002, n))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, 0.004, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, 0.004, n)))
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close})


BARS_DF = random_walk(BARS, seed=11)


def frame_of(bars: pd.DataFrame) -> BarFrame:
    return BarFrame.from_columns("TEST", "1m", ts=np.arange(len(bars)), volume=np.ones(len(bars)),
                                 **{k: bars[k].to_numpy() for k in ("open", "high", "low", "close")})


# --- independent references -------------------------------------------------------------------


def seeded_ewm(values: pd.Series, start: int, period: int, alpha: float) -> pd.Series:
    """NaN before ``start``; at ``start`` the mean of the ``period`` values ending there; then an EWM."""
    seeded = values.iloc[start:].copy()
    seeded.iloc[0] = values.iloc[start - period + 1:start + 1].mean()
    return seeded.ewm(alpha=alpha, adjust=False).mean().reindex(values.index)


def ref_ema(close: pd.Series, n: int) -> pd.Series:
    return seeded_ewm(close, n - 1, n, 2.0 / (n + 1))


def ref_std(close: pd.Series, n: int) -> pd.Series:
    return close.rolling(n).std(ddof=0)


def reference(spec: str, bars: pd.DataFrame) -> list[pd.Series]:
    """The spec's columns, computed straightforwardly with pandas."""
    high, low, close = bars["high"], bars["low"], bars["close"]
    kind, *params = spec.split(":")
    n = int(params[0])
    if kind == "sma":
        return [close.rolling(n).mean()]
    if kind == "ema":
        return [ref_ema(close, n)]
    if kind == "wma":
        weights = np.arange(1.0, n + 1.0)
        return [close.rolling(n).apply(lambda w: w @ weights / weights.sum(), raw=True)]
    if kind == "std":
        return [ref_std(close, n)]
    if kind == "rsi":
        change = close.diff()
        gain = seeded_ewm(change.clip(lower=0.0), n, n, 1.0 / n)
        loss = seeded_ewm((-change).clip(lower=0.0), n, n, 1.0 / n)
        return [100.0 - 100.0 / (1.0 + gain / loss)]
    if kind == "atr":
        prev = close.shift(1)
        true_range = pd.concat([high - low, (high - prev).abs(), (low - prev).abs()], axis=1).max(axis=1)
        true_range.iloc[0] = np.nan
        return [seeded_ewm(true_range, n, n, 1.0 / n)]
    if kind == "macd":
        fast, slow, signal_period = (int(p) for p in params)
        line = ref_ema(close, fast) - ref_ema(close, slow)
        signal = seeded_ewm(line, slow + signal_period - 2, signal_period, 2.0 / (signal_period + 1))
        return [line, signal, line - signal]
    if kind == "bb":
        k = float(params[1])
        mid, std = close.rolling(n).mean(), ref_std(close, n)
        up, lo = mid + k * std, mid - k * std
        return [mid, up, lo, (close - lo) / (up - lo), (up - lo) / mid]
    if kind == "ret":
        return [close / close.shift(n) - 1.0]
    if kind == "logret":
        return [np.log(close / close.shift(n))]
    if kind == "hh":
        return [high.rolling(n).max()]
    if kind == "ll":
        return [low.rolling(n).min()]
    raise AssertionError(spec)


def assert_same_values(ours: np.ndarray, ref: np.ndarray, what: str) -> None:
    ref = np.asarray(ref, dtype=np.float64)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref), err_msg=f"{what}: NaN positions differ")
    valid = ~np.isnan(ref)
    np.testing.assert_allclose(ours[valid], ref[valid], rtol=1e-9, atol=1e-9, err_msg=what)


@pytest.fixture(scope="module")
def full_set() -> dict[str, np.ndarray]:
    """Every spec of WARMUP over the 10,000 bars, in one update."""
    return dict(IndicatorSet(list(WARMUP)).update(frame_of(BARS_DF)))


# --- (a) references, warm-ups, names ----------------------------------------------------------


def test_synthetic_bars_are_consistent_ohlc() -> None:
    assert (BARS_DF["high"] >= BARS_DF[["open", "close"]].max(axis=1)).all()
    assert (BARS_DF["low"] <= BARS_DF[["open", "close"]].min(axis=1)).all()


@pytest.mark.parametrize("spec", list(WARMUP))
def test_indicator_equals_pandas_reference(spec: str, full_set: dict[str, np.ndarray]) -> None:
    references = reference(spec, BARS_DF)
    names = output_names(spec)
    assert len(names) == len(references)
    for name, ref in zip(names, references, strict=True):
        assert_same_values(full_set[name], ref.to_numpy(), f"{spec} -> {name}")


@pytest.mark.parametrize("spec", list(WARMUP))
def test_warmup_is_as_documented(spec: str, full_set: dict[str, np.ndarray]) -> None:
    for name, warmup in zip(output_names(spec), WARMUP[spec], strict=True):
        nan = np.isnan(full_set[name])
        assert nan[:warmup].all() and not nan[warmup:].any(), name


@pytest.mark.parametrize(("spec", "names"), [
    ("sma:10", ("sma_10",)), ("wma:20", ("wma_20",)), ("std:20", ("std_20",)), ("rsi:14", ("rsi_14",)),
    ("atr:14", ("atr_14",)), ("logret:1", ("logret_1",)), ("hh:20", ("hh_20",)), ("ll:20", ("ll_20",)),
    ("macd:12:26:9", ("macd_12_26_9", "macd_signal_12_26_9", "macd_hist_12_26_9")),
    ("bb:20:2", ("bb_mid_20_2", "bb_up_20_2", "bb_low_20_2", "bb_pctb_20_2", "bb_width_20_2")),
    ("bb:20:2.5", ("bb_mid_20_2.5", "bb_up_20_2.5", "bb_low_20_2.5", "bb_pctb_20_2.5", "bb_width_20_2.5")),
])
def test_output_names_use_underscores(spec: str, names: tuple[str, ...]) -> None:
    assert output_names(spec) == names
    assert isinstance(parse_indicator(spec), Indicator)


def test_composites_reuse_their_parts_bit_for_bit(full_set: dict[str, np.ndarray]) -> None:
    assert np.array_equal(full_set["macd_12_26_9"], full_set["ema_12"] - full_set["ema_26"], equal_nan=True)
    assert np.array_equal(full_set["bb_mid_20_2"], full_set["sma_20"], equal_nan=True)
    assert np.array_equal(full_set["bb_up_20_2"], full_set["sma_20"] + 2.0 * full_set["std_20"], equal_nan=True)


def test_flat_prices_give_zero_std_neutral_rsi_and_pctb() -> None:
    flat = pd.DataFrame({k: np.full(40, 0.1) for k in ("open", "high", "low", "close")})
    out = dict(IndicatorSet(["std:5", "rsi:5", "bb:5:2", "atr:5"]).update(frame_of(flat)))
    assert (out["std_5"][4:] == 0.0).all()
    assert (out["rsi_5"][5:] == 50.0).all()
    assert (out["bb_pctb_5_2"][4:] == 0.5).all() and (out["bb_width_5_2"][4:] == 0.0).all()
    assert (out["atr_5"][5:] == 0.0).all()


def test_outputs_are_read_only_and_state_is_bounded() -> None:
    indicators = IndicatorSet(["sma:5", "bb:5:2", "ret:3", "rsi:5"])
    frame = frame_of(BARS_DF)
    for _, column in indicators.update(frame):
        assert not column.flags.writeable
    for indicator in indicators.indicators:
        for value in vars(indicator).values():
            tail = getattr(value, "_tail", None)
            if tail is not None:
                assert len(tail) <= indicator.period and tail.base is None  # a copy, not a view of the batch


# --- (b) batching -----------------------------------------------------------------------------

CHUNK_SPECS = (
    "sma:1", "sma:7", "sma:30", "ema:1", "ema:5", "wma:1", "wma:6", "std:1", "std:9", "rsi:1", "rsi:5",
    "atr:1", "atr:6", "macd:3:7:4", "macd:1:2:1", "bb:8:2", "bb:5:2.5", "ret:1", "ret:3", "logret:1",
    "logret:4", "hh:1", "hh:5", "ll:6",
)
CHUNK_BARS = 800
CHUNK_FRAME = frame_of(random_walk(CHUNK_BARS, seed=5))
WHOLE = IndicatorSet(CHUNK_SPECS).update(CHUNK_FRAME)


def run_in_chunks(sizes: list[int]) -> tuple[tuple[str, np.ndarray], ...]:
    indicators, parts, start = IndicatorSet(CHUNK_SPECS), [], 0
    for size in sizes:
        if start >= CHUNK_BARS:
            break
        parts.append(indicators.update(CHUNK_FRAME.slice(start, start + size)))
        start += size
    if start < CHUNK_BARS:
        parts.append(indicators.update(CHUNK_FRAME.slice(start, CHUNK_BARS)))
    return tuple((name, np.concatenate([dict(p)[name] for p in parts])) for name, _ in WHOLE)


def assert_bit_equal(got: tuple[tuple[str, np.ndarray], ...]) -> None:
    assert [name for name, _ in got] == [name for name, _ in WHOLE]
    for (name, column), (_, whole) in zip(got, WHOLE, strict=True):
        assert np.array_equal(column, whole, equal_nan=True), name


def test_bar_by_bar_equals_one_batch_exactly() -> None:
    assert_bit_equal(run_in_chunks([1] * CHUNK_BARS))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=120), min_size=1, max_size=60))
def test_any_chunking_equals_one_batch_exactly(sizes: list[int]) -> None:
    assert_bit_equal(run_in_chunks(sizes))  # empty chunks included


def test_checkpoint_copy_continues_exactly() -> None:
    """The feature actor checkpoints its sets with deepcopy; the copy and the original both go on bit for bit."""
    original = IndicatorSet(CHUNK_SPECS)
    head = original.update(CHUNK_FRAME.slice(0, 300))
    restored = copy.deepcopy(original)
    for indicators in (restored, original):
        tail = indicators.update(CHUNK_FRAME.slice(300, CHUNK_BARS))
        assert_bit_equal(tuple((name, np.concatenate((first, rest)))
                               for (name, first), (_, rest) in zip(head, tail, strict=True)))


# --- (c) parse errors -------------------------------------------------------------------------


@pytest.mark.parametrize("spec", [
    "", "sma", "sma:", "sma:0", "sma:-3", "sma:1.5", "sma:010", "sma:10:2", "sma: 10", "SMA:10", "foo:3",
    "sma:100001", "macd:12:26", "macd:26:12:9", "macd:12:12:9", "macd:12:26:0", "bb:20", "bb:20:0",
    "bb:20:-2", "bb:20:nan", "bb:20:inf", "bb:20:2e1", "bb:0:2", "bb:20:2:1", "rsi:٣",
])
def test_bad_spec_is_a_value_error_naming_the_valid_forms(spec: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_indicator(spec)
    assert repr(spec) in str(caught.value)
    assert "macd:12:26:9" in str(caught.value)


def test_valid_forms_list_every_kind() -> None:
    assert "valid kinds: sma, ema, ret, logret, wma, std, rsi, atr, hh, ll, macd, bb;" in VALID_FORMS
    for form in ("sma:N", "ema:N", "wma:N", "std:N", "rsi:N", "atr:N", "ret:N", "logret:N", "hh:N", "ll:N",
                 "macd:FAST:SLOW:SIGNAL", "bb:N:K"):
        assert form in VALID_FORMS


def test_duplicate_outputs_are_refused() -> None:
    with pytest.raises(ValueError, match="twice"):
        IndicatorSet(["sma:10", "sma:10"])


# --- (d) TA-Lib, when installed ---------------------------------------------------------------


def test_matches_talib(full_set: dict[str, np.ndarray]) -> None:
    talib = pytest.importorskip("talib")
    h, lo, c = (BARS_DF[k].to_numpy() for k in ("high", "low", "close"))
    expected = {
        "sma_30": talib.SMA(c, 30), "ema_26": talib.EMA(c, 26), "wma_20": talib.WMA(c, 20),
        "std_20": talib.STDDEV(c, 20, 1.0), "rsi_14": talib.RSI(c, 14), "atr_14": talib.ATR(h, lo, c, 14),
        "ret_5": talib.ROCR(c, 5) - 1.0, "logret_5": np.log(talib.ROCR(c, 5)),
        "hh_20": talib.MAX(h, 20), "ll_20": talib.MIN(lo, 20),
    }
    up, mid, low = talib.BBANDS(c, 20, 2.5, 2.5, 0)
    expected.update({"bb_up_20_2.5": up, "bb_mid_20_2.5": mid, "bb_low_20_2.5": low})
    for name, column in expected.items():
        assert_same_values(full_set[name], column, f"talib {name}")
    # TA-Lib seeds MACD's fast EMA later (see the module docstring); the gap is gone after a burn-in.
    for name, column in zip(output_names("macd:12:26:9"), talib.MACD(c, 12, 26, 9), strict=True):
        assert_same_values(full_set[name][1000:], column[1000:], f"talib {name}")
