"""Grids, metrics, ranking and walk-forward windows of run.py optimize (pure logic)."""

from __future__ import annotations

import numpy as np
import pytest

from actors.executor.portfolio import Trade
from actors.executor.report import summarize, trade_rows
from supervisors.errors import GridError, TradingError
from supervisors.grid import (METRICS, Axis, Outcome, check_axes, metric_named, param_texts, parse_axis, points,
                              rank, stitch, table, windows)

pytestmark = pytest.mark.timeout(10)

SMA = {"fast": 10, "slow": 30, "min_prob": 0.0}


def test_a_range_includes_its_stop_and_integers_stay_integers() -> None:
    assert parse_axis("fast=5:50:5").values == (5, 10, 15, 20, 25, 30, 35, 40, 45, 50)
    assert parse_axis("fast=5:12:5").values == (5, 10)
    assert all(type(v) is int for v in parse_axis("fast=5:50:5").values)
    assert parse_axis(" slow = 20:20:10 ").values == (20,)


def test_a_decimal_range_is_exact() -> None:
    assert parse_axis("min_prob=0.1:0.3:0.1").values == (0.1, 0.2, 0.3)
    assert parse_axis("k=1:2:0.25").values == (1.0, 1.25, 1.5, 1.75, 2.0)


def test_a_list_keeps_its_order_and_drops_repeats() -> None:
    assert parse_axis("slow=30,20,30,50").values == (30, 20, 50)
    assert parse_axis("flag=true,False").values == (True, False)
    assert parse_axis("k=1.5,2").values == (1.5, 2)


@pytest.mark.parametrize(("text", "why"), [
    ("fast", "no KEY=VALUES"), ("=1,2", "no KEY=VALUES"), ("fast=", "no KEY=VALUES"),
    ("fast=5:50", "three parts"), ("fast=5:x:5", "'x' is not a number"), ("fast=5:50:0", "STEP must be > 0"),
    ("fast=50:5:5", "STOP is below START"), ("fast=1,,2", "empty value"), ("fast=nan,1", "not a finite number"),
    ("fast=0:1000000:1", "over the limit"),
])
def test_a_bad_grid_is_one_line_naming_the_text(text: str, why: str) -> None:
    with pytest.raises(GridError) as caught:
        parse_axis(text)
    message = str(caught.value)
    assert why in message and repr(text) in message and "\n" not in message
    assert isinstance(caught.value, TradingError) and isinstance(caught.value, ValueError)


def test_axes_are_typed_by_the_parameter_defaults() -> None:
    axes = check_axes([parse_axis("min_prob=0,1"), parse_axis("fast=5,10")], SMA, "sma_cross")
    assert axes[0].values == (0.0, 1.0) and all(type(v) is float for v in axes[0].values)
    assert axes[1].values == (5, 10)


@pytest.mark.parametrize(("texts", "why"), [
    (["foo=1,2"], "has no parameter 'foo'; valid parameters: fast=10, slow=30, min_prob=0.0"),
    (["fast=5.5,6"], "parameter 'fast' must be an integer (its default is 10), got 5.5"),
    (["fast=true"], "must be an integer"),
    (["min_prob=true"], "must be a number"),
    (["fast=5,6", "fast=7"], "has two --grid options"),
    (["fast=1:400:1", "slow=1:400:1"], "160,000 points, over the limit"),
])
def test_an_axis_the_strategy_cannot_take_is_refused(texts: list[str], why: str) -> None:
    with pytest.raises(GridError) as caught:
        check_axes([parse_axis(t) for t in texts], SMA, "sma_cross")
    assert why in str(caught.value)


def test_points_are_the_product_with_the_last_axis_fastest() -> None:
    grid = points([Axis("fast", (5, 10), ""), Axis("slow", (20, 30, 40), "")])
    assert grid[:4] == [(("fast", 5), ("slow", 20)), (("fast", 5), ("slow", 30)), (("fast", 5), ("slow", 40)),
                        (("fast", 10), ("slow", 20))]
    assert len(grid) == 6
    assert param_texts((("fast", 5), ("min_prob", 0.25), ("on", True))) == ("fast=5", "min_prob=0.25", "on=true")


def test_metrics_by_short_name_or_summary_column_and_an_unknown_one_lists_them() -> None:
    assert metric_named("return").column == "total_return_pct"
    assert metric_named("total_return_pct").name == "return"
    assert not metric_named("max_drawdown").maximise and metric_named("sharpe").maximise
    with pytest.raises(GridError) as caught:
        metric_named("sharp")
    assert str(caught.value) == f"unknown metric 'sharp'; valid: {', '.join(m.name for m in METRICS)}"


def _outcome(fast: int, slow: int, **figures: float | None) -> Outcome:
    return Outcome((("fast", fast), ("slow", slow)), figures)


def test_ranking_is_best_first_then_missing_then_failed_and_ties_by_parameters() -> None:
    outcomes = [_outcome(10, 30, sharpe=1.0, max_drawdown_pct=20.0), _outcome(5, 30, sharpe=None, max_drawdown_pct=5.0),
                _outcome(5, 20, sharpe=2.0, max_drawdown_pct=30.0), Outcome((("fast", 1), ("slow", 2)), None, "boom"),
                _outcome(5, 40, sharpe=1.0, max_drawdown_pct=20.0)]
    by_sharpe = [o.params[0][1] * 100 + o.params[1][1] for o in rank(outcomes, metric_named("sharpe"))]
    assert by_sharpe == [520, 540, 1030, 530, 102]
    by_drawdown = [o.params[0][1] * 100 + o.params[1][1] for o in rank(outcomes, metric_named("max_drawdown"))]
    assert by_drawdown == [530, 540, 1030, 520, 102]
    assert rank(list(reversed(outcomes)), metric_named("sharpe")) == rank(outcomes, metric_named("sharpe"))


def test_windows_split_the_closes_into_consecutive_nearly_equal_parts() -> None:
    ts = np.arange(1, 11, dtype=np.int64) * 100
    bounds = windows(ts, 3)
    assert bounds == [(99, 100, 400), (400, 500, 700), (700, 800, 1000)]
    covered = [t for after, _, last in bounds for t in ts if after < t <= last]
    assert covered == list(ts)
    with pytest.raises(GridError, match="4 windows need at least 8 bar closes, the range has 7"):
        windows(ts[:7], 4)


DAY = 86_400 * 10**9


def _report(ts: list[int], equity: list[float], trades: list[Trade], fees: float, open_positions: int = 0) -> dict:
    summary = summarize(100.0, np.array(ts), np.array(equity), trades, open_positions, 0.5, fees)
    return {"summary": summary, "equity_ts": np.array(ts), "equity": np.array(equity), "trades": trade_rows(trades)}


def test_stitched_windows_run_as_one_account() -> None:
    first = _report([DAY, 2 * DAY, 3 * DAY], [100.0, 110.0, 120.0], [Trade("X", DAY, 10.0, 3 * DAY, 12.0, 10.0, 20.0)],
                    0.5)
    second = _report([4 * DAY, 5 * DAY, 6 * DAY], [100.0, 90.0, 105.0],
                     [Trade("X", 4 * DAY, 10.0, 5 * DAY, 9.0, 10.0, -10.0)], 0.25, 1)
    combined = stitch([first, second], 100.0)
    assert combined["final_equity"] == pytest.approx(120.0 * 1.05)
    assert combined["total_return_pct"] == pytest.approx(26.0)
    expected = summarize(100.0, np.array([DAY * n for n in range(1, 7)]),
                         np.array([100.0, 110.0, 120.0, 120.0, 108.0, 126.0]),
                         [Trade("X", DAY, 10.0, 3 * DAY, 12.0, 10.0, 20.0),
                          Trade("X", 4 * DAY, 10.0, 5 * DAY, 9.0, 12.0, -12.0)], 1, 0.5, 0.5 + 0.25 * 1.2)
    assert combined == expected
    assert combined["avg_holding_hours"] == pytest.approx(36.0) and combined["fees"] == pytest.approx(0.8)
    assert combined["max_drawdown_pct"] == pytest.approx(10.0) and combined["trades"] == 2


def test_a_table_aligns_numbers_right_and_text_left() -> None:
    lines = table(["rank", "params", "sharpe"], [["1", "fast=5", "1.25"], ["10", "fast=10", "n/a"]])
    assert lines == ["rank  params   sharpe", "   1  fast=5     1.25", "  10  fast=10     n/a"]


def test_the_command_line_help_lists_every_metric() -> None:
    import run

    helps = run.build_parser()._subparsers._group_actions[0].choices["optimize"].format_help()
    listed = " ".join(helps.split()).partition("what to rank by (default sharpe): ")[2].partition(" --")[0]
    assert listed.split(", ") == [m.name for m in METRICS]
