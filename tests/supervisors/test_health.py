"""The latency window behind ``metrics``: a ring of the last samples, summarised as percentiles."""

from __future__ import annotations

import numpy as np
import pytest

from supervisors.health import ActorStats, Counters, LatencyWindow

pytestmark = pytest.mark.timeout(10)


def test_an_empty_window_says_it_has_no_samples() -> None:
    assert LatencyWindow(4).summary() == {"samples": 0}


def test_percentiles_are_numpys_over_the_samples_in_microseconds() -> None:
    window = LatencyWindow(1000)
    values = [(i * 7919) % 1000 * 1000 + 500 for i in range(1000)]  # 500 ns .. 999.5 us, shuffled
    for ns in values:
        window.add(ns)
    summary = window.summary()
    assert summary["samples"] == 1000
    assert summary["p50_us"] == pytest.approx(np.percentile(values, 50) / 1e3)
    assert summary["p99_us"] == pytest.approx(np.percentile(values, 99) / 1e3)
    assert summary["max_us"] == 999.5


def test_the_window_keeps_only_the_most_recent_samples() -> None:
    window = LatencyWindow(3)
    for ns in (9_000_000, 8_000_000, 1_000, 2_000, 3_000):  # the two slow ones have left the window
        window.add(ns)
    assert window.summary() == {"samples": 3, "p50_us": 2.0, "p99_us": pytest.approx(2.98), "max_us": 3.0}
    assert window.count == 5


def test_a_window_needs_room_for_a_sample() -> None:
    with pytest.raises(ValueError, match="at least one sample"):
        LatencyWindow(0)


def test_each_actor_record_has_its_own_window() -> None:
    a, b = ActorStats("buffer"), ActorStats("feature")
    a.latency.add(1_000)
    assert a.latency.summary()["samples"] == 1 and b.latency.summary() == {"samples": 0}


def test_several_counters_are_read_together() -> None:
    counters = Counters()
    counters.add(ticks_accepted=5, ticks_processed=3, ticks_dead_lettered=1)
    assert counters.values("ticks_accepted", "ticks_processed", "ticks_dead_lettered") == (5, 3, 1)
    with pytest.raises(KeyError):
        counters.values("no_such_counter")
