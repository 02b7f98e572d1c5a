"""Flow control of the live feed: when it stops and starts reading, and what counts as overloaded."""

from __future__ import annotations

import pytest

from actors.feed.flow import FlowControl

pytestmark = pytest.mark.timeout(10)

S = 1_000_000_000


def test_the_feed_stops_at_the_in_flight_bound_and_starts_again_at_half() -> None:
    flow = FlowControl(max_in_flight=100, max_store_backlog=10)
    assert flow.admit(99, 0, 0)
    assert not flow.admit(100, 0, 1)
    assert not flow.admit(51, 0, 2)  # hysteresis: still above half
    assert flow.admit(50, 0, 3)
    assert flow.admit(99, 0, 4)
    assert (flow.pauses, flow.episodes) == (1, 1)


def test_the_store_backlog_stops_the_feed_too_and_both_must_fall_to_half() -> None:
    flow = FlowControl(max_in_flight=100, max_store_backlog=10)
    assert not flow.admit(0, 10, 0)
    assert not flow.admit(0, 6, 1)
    assert not flow.admit(60, 5, 2)  # the backlog is down, the ticks in flight are not
    assert flow.admit(50, 5, 3)


def test_an_episode_lasts_until_a_second_without_a_pause_and_is_counted_once() -> None:
    flow = FlowControl(max_in_flight=100, max_store_backlog=10, hold_ns=S)
    flow.admit(100, 0, 0)
    assert flow.overloaded
    flow.admit(10, 0, S // 2)              # reading again, but the episode holds a second from the pause
    assert not flow.settle(S - 1)
    flow.admit(100, 0, S - 1)              # paused again within the hold: the same episode
    flow.admit(10, 0, S)
    assert flow.overloaded and flow.episodes == 1 and flow.pauses == 2
    assert not flow.settle(2 * S - 2)
    assert flow.settle(2 * S - 1)
    assert not flow.overloaded and not flow.settle(3 * S)
    flow.admit(100, 0, 4 * S)
    assert flow.episodes == 2


def test_an_episode_does_not_end_while_paused() -> None:
    flow = FlowControl(max_in_flight=100, max_store_backlog=10, hold_ns=S)
    flow.admit(100, 0, 0)
    assert not flow.settle(10 * S)
    assert flow.overloaded


def test_the_view_shows_the_backlog_against_its_bounds() -> None:
    flow = FlowControl(max_in_flight=100, max_store_backlog=10)
    flow.admit(120, 3, 5 * S)
    view = flow.view(7 * S)
    assert view == {"overloaded": True, "for_s": 2.0, "paused": True, "behind": False, "episodes": 1, "pauses": 1,
                    "in_flight": 120, "max_in_flight": 100, "store_backlog": 3, "max_store_backlog": 10}
    assert FlowControl(100, 10).view(0)["overloaded"] is False


def test_reads_that_all_take_a_full_batch_for_a_while_are_overload_without_a_pause() -> None:
    flow = FlowControl(max_in_flight=100, max_store_backlog=10, hold_ns=S, behind_ns=S // 2)
    flow.read(True, 0)
    flow.read(True, S // 2 - 1)
    assert not flow.overloaded
    flow.read(False, S // 2)               # a read that emptied the socket starts the run again
    flow.read(True, S)
    flow.read(True, S + S // 2 - 1)
    assert not flow.overloaded
    flow.read(True, S + S // 2)
    assert flow.overloaded and flow.behind and not flow.paused and flow.pauses == 0
    flow.read(False, S + S // 2 + 1)
    assert not flow.behind
    assert not flow.settle(2 * S + S // 2 - 1)
    assert flow.settle(2 * S + S // 2)
    assert flow.episodes == 1


def test_bounds_below_one_are_refused() -> None:
    with pytest.raises(ValueError):
        FlowControl(0, 10)
