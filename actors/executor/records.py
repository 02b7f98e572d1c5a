"""An append-only record log whose copies cost nothing, for the account's orders, fills and trades.

The executor checkpoints its account after every batch. Copying every order, fill and trade
each time grows with the run (quadratic over a backtest); a :class:`RecordLog` copy instead
shares the underlying list and remembers its own end. Records are immutable and only ever
appended, so a shared prefix never changes: whichever of two sharing logs appends while the
other has appended past their common end first takes a private copy of its own records.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Generic, TypeVar

__all__ = ["RecordLog"]

T = TypeVar("T")


class RecordLog(Generic[T]):
    """The latest ``maxlen`` records appended (all of them when ``maxlen`` is None), oldest first."""

    __slots__ = ("_end", "_items", "_start", "maxlen")

    def __init__(self, items: Iterable[T] = (), maxlen: int | None = None) -> None:
        self._items: list[T] = []
        self._start = self._end = 0
        self.maxlen = maxlen
        for item in items:
            self.append(item)

    def append(self, item: T) -> None:
        """Add a record (dropping the oldest beyond ``maxlen``)."""
        if self._end != len(self._items):  # another log sharing the list appended past our end
            self._own()
        self._items.append(item)
        self._end += 1
        self._trim()

    def extend(self, items: Iterable[T]) -> None:
        """Add records in order (dropping the oldest beyond ``maxlen``)."""
        if self._end != len(self._items):
            self._own()
        self._items.extend(items)
        self._end = len(self._items)
        self._trim()

    def _trim(self) -> None:
        """Drop the oldest records beyond ``maxlen``."""
        if self.maxlen is not None and self._end - self._start > self.maxlen:
            self._start = self._end - self.maxlen
            if self._start >= self.maxlen:  # compact into a new list (copies keep the old one)
                self._own()

    def copy(self) -> RecordLog[T]:
        """An independent log with the same records, in O(1)."""
        twin = RecordLog.__new__(RecordLog)
        twin._items, twin._start, twin._end, twin.maxlen = self._items, self._start, self._end, self.maxlen
        return twin

    def _own(self) -> None:
        self._items = self._items[self._start:self._end]
        self._start, self._end = 0, len(self._items)

    def __len__(self) -> int:
        return self._end - self._start

    def __iter__(self) -> Iterator[T]:
        return islice(self._items, self._start, self._end)

    def __getitem__(self, index: int) -> T:
        size = self._end - self._start
        if not -size <= index < size:
            raise IndexError("record log index out of range")
        return self._items[self._start + index % size]

    def __repr__(self) -> str:
        return f"RecordLog({len(self)} records, maxlen={self.maxlen})"
