"""The record log behind the account's orders, fills and trades: append-only, bounded, O(1) copies."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.executor.records import RecordLog


def test_keeps_the_latest_maxlen_records_in_order() -> None:
    log = RecordLog(range(10), maxlen=3)
    assert list(log) == [7, 8, 9] and len(log) == 3
    assert log[0] == 7 and log[-1] == 9 and log[-3] == 7
    with pytest.raises(IndexError):
        log[3]
    with pytest.raises(IndexError):
        log[-4]


def test_unbounded_log_keeps_everything() -> None:
    log: RecordLog[int] = RecordLog()
    log.extend(range(5))
    log.append(5)
    assert list(log) == [0, 1, 2, 3, 4, 5] and log[-1] == 5


def test_a_copy_is_unchanged_by_later_appends_of_either_side() -> None:
    log = RecordLog([1, 2, 3])
    twin = log.copy()
    log.append(4)
    log.extend([5, 6])
    assert list(twin) == [1, 2, 3]
    twin.append(40)  # the twin appends after the original moved on: it takes its own records
    assert list(twin) == [1, 2, 3, 40]
    assert list(log) == [1, 2, 3, 4, 5, 6]
    log.append(7)
    assert list(log) == [1, 2, 3, 4, 5, 6, 7] and list(twin) == [1, 2, 3, 40]


def test_a_copy_of_a_bounded_log_survives_compaction() -> None:
    log = RecordLog(range(4), maxlen=4)
    twin = log.copy()
    log.extend(range(4, 20))  # drops and compacts many times
    assert list(log) == list(range(16, 20))
    assert list(twin) == [0, 1, 2, 3]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["append", "extend", "copy", "switch"]), st.integers(0, 3)), max_size=40),
       st.one_of(st.none(), st.integers(1, 5)))
def test_every_log_matches_a_plain_list_model(steps: list[tuple[str, int]], maxlen: int | None) -> None:
    logs = [RecordLog(maxlen=maxlen)]
    models: list[list[int]] = [[]]
    current, counter = 0, 0
    for op, n in steps:
        if op == "append":
            counter += 1
            logs[current].append(counter)
            models[current].append(counter)
        elif op == "extend":
            items = list(range(counter + 1, counter + 1 + n))
            counter += n
            logs[current].extend(items)
            models[current] += items
        elif op == "copy":
            logs.append(logs[current].copy())
            models.append(list(models[current]))
        else:
            current = n % len(logs)
        for log, model in zip(logs, models, strict=True):
            expected = model[-maxlen:] if maxlen is not None else model
            assert list(log) == expected and len(log) == len(expected)
