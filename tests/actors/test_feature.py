"""Indicators: agreement with pandas/numpy references, and batching independence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.feature.indicators import EMA, SMA, IndicatorSet, Return, parse_indicator
from messages.market import BarFrame

N = 10_000


def run(indicator: object, close: np.ndarray) -> np.ndarray:
    """The first output column of ``indicator`` for bars whose high, low and close are ``close``."""
    close = np.asarray(close, dtype=np.float64)
    return indicator.update(close, close, close)[0]  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def closes() -> np.ndarray:
    rng = np.random.default_rng(20240101)
    return 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, N)))


def ema_reference(close: np.ndarray, n: int) -> np.ndarray:
    """TA-Lib EMA: NaN before n-1, SMA seed at n-1, then value += alpha * (x - value)."""
    out = np.full(len(close), np.nan)
    if len(close) < n:
        return out
    seeded = pd.Series(np.concatenate(([close[:n].mean()], close[n:])))
    out[n - 1:] = seeded.ewm(alpha=2.0 / (n + 1.0), adjust=False).mean().to_numpy()
    return out


def assert_close(actual: np.ndarray, expected: np.ndarray) -> None:
    assert np.array_equal(np.isnan(actual), np.isnan(expected))
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-9, equal_nan=True)


@pytest.mark.parametrize("n", [1, 2, 3, 10, 30, 200])
def test_sma_matches_pandas_rolling_mean(closes: np.ndarray, n: int) -> None:
    actual = run(SMA(n), closes)
    assert_close(actual, pd.Series(closes).rolling(n).mean().to_numpy())
    assert np.isnan(actual[: n - 1]).all() and not np.isnan(actual[n - 1:]).any()


@pytest.mark.parametrize("n", [1, 2, 3, 12, 26, 200])
def test_ema_matches_the_ta_lib_convention(closes: np.ndarray, n: int) -> None:
    actual = run(EMA(n), closes)
    assert_close(actual, ema_reference(closes, n))
    assert np.isnan(actual[: n - 1]).all() and not np.isnan(actual[n - 1:]).any()


def test_ema_is_seeded_with_the_sma_of_the_first_n_closes() -> None:
    actual = run(EMA(3), np.array([1.0, 2.0, 6.0, 7.0, 3.0]))
    # seed 3.0; alpha 0.5: 3 + 0.5*(7-3) = 5; 5 + 0.5*(3-5) = 4
    assert np.isnan(actual[:2]).all()
    assert actual[2:].tolist() == [3.0, 5.0, 4.0]


@pytest.mark.parametrize("n", [1, 2, 5, 24])
def test_return_matches_pandas_pct_change(closes: np.ndarray, n: int) -> None:
    actual = run(Return(n), closes)
    assert_close(actual, pd.Series(closes).pct_change(n).to_numpy())
    assert np.isnan(actual[:n]).all() and not np.isnan(actual[n:]).any()


def test_sma_by_hand() -> None:
    actual = run(SMA(2), np.array([1.0, 3.0, 5.0, 4.0]))
    assert np.isnan(actual[0]) and actual[1:].tolist() == [2.0, 4.0, 4.5]


def test_return_by_hand() -> None:
    actual = run(Return(2), np.array([100.0, 50.0, 110.0, 75.0]))
    assert np.isnan(actual[:2]).all() and actual[2:].tolist() == pytest.approx([0.1, 0.5])


def test_indicators_of_fewer_bars_than_the_period_are_all_nan() -> None:
    for indicator in (SMA(5), EMA(5), Return(5)):
        assert np.isnan(run(indicator, np.array([1.0, 2.0, 3.0]))).all()
        assert run(indicator, np.empty(0)).shape == (0,)


def test_indicator_names_are_the_spec_with_an_underscore() -> None:
    assert (SMA(10).names, EMA(26).names, Return(1).names) == (("sma_10",), ("ema_26",), ("ret_1",))


def ohlc(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    close = 50.0 * np.exp(np.cumsum(rng.normal(0.0, 0.02, n)))
    high = close * np.exp(np.abs(rng.normal(0.0, 0.01, n)))
    low = close * np.exp(-np.abs(rng.normal(0.0, 0.01, n)))
    return high, low, close


_SPECS = st.sampled_from(["sma", "ema", "ret"]).flatmap(
    lambda kind: st.integers(min_value=1, max_value=40).map(lambda n: f"{kind}:{n}"))
_OTHER_SPECS = st.sampled_from(["wma:7", "std:5", "rsi:3", "atr:4", "macd:2:5:3", "bb:6:2", "logret:2", "hh:4", "ll:3"])


@settings(max_examples=200, deadline=None)
@given(_SPECS | _OTHER_SPECS, st.lists(st.integers(min_value=0, max_value=25), min_size=1, max_size=12),
       st.integers(min_value=0, max_value=2**32))
def test_batch_and_incremental_updates_agree_bit_for_bit(spec: str, chunks: list[int], seed: int) -> None:
    high, low, close = ohlc(sum(chunks), seed)
    whole = parse_indicator(spec).update(high, low, close)
    incremental = parse_indicator(spec)
    parts, start = [], 0
    for size in chunks:
        parts.append(incremental.update(high[start:start + size], low[start:start + size], close[start:start + size]))
        start += size
    for k, column in enumerate(whole):
        assert np.array_equal(np.concatenate([part[k] for part in parts]), column, equal_nan=True), spec


@pytest.mark.parametrize("spec", ["sma:30", "ema:26", "ret:3"])
def test_one_bar_at_a_time_equals_one_update_on_a_long_series(closes: np.ndarray, spec: str) -> None:
    whole = run(parse_indicator(spec), closes[:3000])
    single = parse_indicator(spec)
    stepped = np.concatenate([run(single, closes[i:i + 1]) for i in range(3000)])
    assert np.array_equal(stepped, whole, equal_nan=True)


@pytest.mark.parametrize(("spec", "kind", "period", "name"), [
    ("sma:10", SMA, 10, "sma_10"), ("ema:26", EMA, 26, "ema_26"), ("ret:1", Return, 1, "ret_1"),
])
def test_parse_indicator_builds_the_named_indicator(spec: str, kind: type, period: int, name: str) -> None:
    indicator = parse_indicator(spec)
    assert isinstance(indicator, kind) and indicator.period == period and indicator.names == (name,)


ALL_KINDS = ("sma", "ema", "wma", "std", "rsi", "atr", "ret", "logret", "hh", "ll", "macd", "bb")


@pytest.mark.parametrize("spec", ["rsx:14", "SMA:10", "", "10", "vwap", "sma", "sma:", "sma:0", "ema:-3", "ret:x",
                                  "sma:2.5", "sma:010", "sma:10:5"])
def test_bad_indicator_spec_names_itself_and_lists_every_valid_kind(spec: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_indicator(spec)
    message = str(caught.value)
    assert repr(spec) in message
    for kind in ALL_KINDS:
        assert f"{kind}:" in message, kind


def test_non_string_spec_is_a_value_error_listing_the_valid_kinds() -> None:
    with pytest.raises(ValueError, match=r"10.*sma:") as caught:
        parse_indicator(10)  # type: ignore[arg-type]
    assert all(f"{kind}:" in str(caught.value) for kind in ALL_KINDS)


def test_indicator_set_returns_named_read_only_columns_per_frame() -> None:
    close = [1.0, 2.0, 3.0, 4.0]
    frame = BarFrame.from_columns("X", "1m", ts=[1, 2, 3, 4], open=close, high=close, low=close, close=close,
                                  volume=[0.0] * 4)
    features = IndicatorSet(["sma:2", "ret:1"]).update(frame)
    assert [name for name, _ in features] == ["sma_2", "ret_1"]
    assert np.array_equal(features[0][1], [np.nan, 1.5, 2.5, 3.5], equal_nan=True)
    assert features[1][1][1:].tolist() == pytest.approx([1.0, 0.5, 1 / 3])
    assert all(not column.flags.writeable for _, column in features)


def test_indicator_set_continues_across_frames() -> None:
    def frame(values: list[float]) -> BarFrame:
        return BarFrame.from_columns("X", "1m", ts=list(range(len(values))), open=values, high=values, low=values,
                                     close=values, volume=[0.0] * len(values))
    indicators = IndicatorSet(["sma:3"])
    indicators.update(frame([1.0, 2.0]))
    ((_, column),) = indicators.update(frame([3.0, 4.0]))
    assert column.tolist() == [2.0, 3.0]


def test_indicator_set_with_a_bad_spec_fails_at_construction() -> None:
    with pytest.raises(ValueError, match="'vwap:5'"):
        IndicatorSet(["sma:10", "vwap:5"])


def test_indicator_set_refuses_a_column_computed_twice() -> None:
    with pytest.raises(ValueError, match="twice"):
        IndicatorSet(["sma:10", "sma:10"])


def _feature_actor() -> object:
    from actors.feature.actor import FeatureActor
    from settings import load_settings
    from supervisors.actor import ChildContext
    from supervisors.clock import LiveClock
    from supervisors.deps import Deps
    from supervisors.health import ActorStats, Counters
    from supervisors.registry import Registry

    class Probe(FeatureActor):
        """The feature actor's logic in this thread, keeping what it would send on."""

        def send(self, name: str, message: object) -> None:
            self.sent.append(message)

    settings = load_settings(env={})
    ctx = ChildContext("feature", Registry(), ActorStats("feature"), Counters(), settings, LiveClock(), "live",
                       lambda failure: None, Deps.of(settings, "live"))
    actor = Probe(ctx)
    actor.sent = []
    actor.setup()
    return actor


def _bars_batch(seq: int, symbols: tuple[str, ...], start: int, count: int) -> object:
    from messages.market import Bar, frame_from_bars
    from messages.pipeline import MarketBatch

    minute = 60_000_000_000
    frames = tuple(frame_from_bars([Bar(symbol, (start + k) * minute, "1m", 100.0 + k % 7, 101.0 + k % 5,
                                        99.0 - k % 3, 100.0 + (k * k + j) % 11, 1.0) for k in range(count)])
                   for j, symbol in enumerate(symbols))
    return MarketBatch(seq, 0, frames=frames)


def test_a_feature_checkpoint_restores_every_series_as_it_was_after_the_last_batch() -> None:
    original = _feature_actor()
    original.on_receive(_bars_batch(1, ("AAA", "BBB"), 0, 40))   # both series
    original.on_receive(_bars_batch(2, ("AAA",), 40, 5))          # only AAA: BBB's copy is carried over
    state = original.ctx.checkpoints["feature"]
    later = (_bars_batch(3, ("BBB",), 40, 3), _bars_batch(4, ("AAA", "BBB"), 45, 2))
    for batch in later:
        original.on_receive(batch)
    restored = _feature_actor()
    restored.restore(state)
    for batch in later:
        restored.on_receive(batch)
    for got, want in zip(restored.sent[-1].frames, original.sent[-1].frames, strict=True):
        assert [(n, np.nan_to_num(c).tolist()) for n, c in got.features] == \
            [(n, np.nan_to_num(c).tolist()) for n, c in want.features]
