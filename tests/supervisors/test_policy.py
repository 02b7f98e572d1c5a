"""Restart policy with a fake clock: strategies, child types, intensity, backoff."""

from __future__ import annotations

import random

import pytest

from supervisors.policy import RestartPolicy, SupervisorPolicy


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


CHILDREN = [("a", "permanent"), ("b", "permanent"), ("c", "permanent")]


def make(strategy: str = "one_for_one", children=CHILDREN, **kw) -> tuple[SupervisorPolicy, FakeClock]:
    clock = FakeClock()
    return SupervisorPolicy(RestartPolicy(strategy, **kw), list(children), clock, random.Random(1)), clock


@pytest.mark.parametrize("strategy, failed, expected", [
    ("one_for_one", "b", ("b",)),
    ("one_for_all", "b", ("a", "b", "c")),
    ("rest_for_one", "a", ("a", "b", "c")),
    ("rest_for_one", "b", ("b", "c")),
    ("rest_for_one", "c", ("c",)),
])
def test_strategy_picks_the_children_to_restart_in_start_order(strategy, failed, expected) -> None:
    policy, _ = make(strategy)
    decision = policy.on_exit(failed, abnormal=True)
    assert decision.action == "restart"
    assert decision.targets == expected


def test_child_types_decide_whether_an_exit_is_restarted() -> None:
    policy, _ = make(children=[("p", "permanent"), ("t", "transient"), ("x", "temporary")])
    assert policy.on_exit("p", abnormal=False).action == "restart"
    assert policy.on_exit("t", abnormal=False).action == "ignore"
    assert policy.on_exit("t", abnormal=True).action == "restart"
    assert policy.on_exit("x", abnormal=True).action == "ignore"


def test_intensity_escalates_past_max_restarts_within_the_window() -> None:
    policy, clock = make(max_restarts=3, within_s=10.0)
    for _ in range(3):
        assert policy.on_exit("a", True).action == "restart"
        clock.now += 1.0
    decision = policy.on_exit("a", True)
    assert decision.action == "escalate"
    assert "4 restarts within 10s exceeds the limit of 3" in decision.reason


def test_restarts_older_than_the_window_are_forgotten() -> None:
    policy, clock = make(max_restarts=2, within_s=10.0)
    for _ in range(10):
        assert policy.on_exit("a", True).action == "restart"
        clock.now += 6.0   # never more than 2 restarts inside any 10 s window


def test_restarts_of_different_children_share_the_supervisors_intensity() -> None:
    policy, _ = make(max_restarts=2)
    assert policy.on_exit("a", True).action == "restart"
    assert policy.on_exit("b", True).action == "restart"
    assert policy.on_exit("c", True).action == "escalate"


def test_backoff_grows_exponentially_for_a_child_failing_without_progress_and_is_bounded() -> None:
    policy, _ = make(max_restarts=100, backoff_min_s=0.01, backoff_max_s=0.5, jitter=0.0)
    delays = [policy.on_exit("a", True, made_progress=False).delay_s for _ in range(10)]
    assert delays[:6] == [0.0, 0.01, 0.02, 0.04, 0.08, 0.16]
    assert max(delays) == 0.5
    assert policy.on_exit("a", True, made_progress=True).delay_s == 0.0  # progress resets the backoff


def test_jitter_spreads_the_delay_within_its_bound() -> None:
    policy, _ = make(max_restarts=1000, backoff_min_s=0.1, backoff_max_s=10.0, jitter=0.2)
    policy.on_exit("a", True, made_progress=False)
    policy.on_exit("a", True, made_progress=False)
    delays = []
    for _ in range(200):
        policy.consecutive["a"] = 2
        delays.append(policy.on_exit("a", True, made_progress=False).delay_s)  # base 0.2
    assert all(0.16 - 1e-12 <= d <= 0.24 + 1e-12 for d in delays)
    assert len(set(delays)) > 100


def test_bad_policy_values_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown strategy"):
        RestartPolicy("one_for_some")
    with pytest.raises(ValueError, match="unknown type"):
        SupervisorPolicy(RestartPolicy(), [("a", "eternal")], FakeClock())
