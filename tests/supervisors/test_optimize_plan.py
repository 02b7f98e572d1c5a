"""A grid checked against the strategy before any backtest runs."""

from __future__ import annotations

import pytest

from settings import load_settings
from supervisors.errors import GridError
from supervisors.grid import parse_axis
from supervisors.optimize import plan_grid

pytestmark = pytest.mark.timeout(10)


def test_points_the_strategy_refuses_are_skipped_and_counted_with_one_reason() -> None:
    settings = load_settings(env={})
    plan = plan_grid(settings, [parse_axis("fast=10:30:10"), parse_axis("slow=20:40:10")])
    assert plan.valid == [(("fast", 10), ("slow", 20)), (("fast", 10), ("slow", 30)), (("fast", 10), ("slow", 40)),
                          (("fast", 20), ("slow", 30)), (("fast", 20), ("slow", 40)), (("fast", 30), ("slow", 40))]
    assert plan.skipped == 3
    assert plan.skipped_example == "fast=20 slow=20: strategy 'sma_cross': need 1 <= fast (20) < slow (20)"


def test_fixed_parameters_take_part_in_the_check() -> None:
    settings = load_settings(env={}, overrides={"strategy.params": ("slow=25",)})
    assert plan_grid(settings, [parse_axis("fast=10,20,30")]).valid == [(("fast", 10),), (("fast", 20),)]


def test_a_grid_the_strategy_refuses_entirely_is_an_error() -> None:
    with pytest.raises(GridError, match=r"^every point of the grid is refused by the strategy, e\.g\. fast=40 "
                                        r"slow=10: strategy 'sma_cross': need 1 <= fast \(40\) < slow \(10\)$"):
        plan_grid(load_settings(env={}), [parse_axis("fast=40,50"), parse_axis("slow=10,20")])
