"""Write-ahead marks: in live, an order may fill only once the store has committed it.

Each batch that leaves a new order open gets a mark, one above the last; the orders it opened wait
for that mark. When the store confirms it has committed everything up to a mark, the orders waiting
for it (or an earlier one) are armed. With write-ahead off, marks stay 0 and orders are free to fill.
"""

from __future__ import annotations

from actors.executor.orderbook import PendingOrder

__all__ = ["WriteAhead"]


class WriteAhead:
    """The marks handed out to batches and the arming of the open orders that wait for them."""

    __slots__ = ("enabled", "mark")

    def __init__(self, enabled: bool = False, mark: int = 0) -> None:
        self.enabled = enabled
        self.mark = mark                     # the last mark handed out

    def next_mark(self) -> int:
        """Return the mark an order opened in the running batch waits for (0: none)."""
        return self.mark + 1 if self.enabled else 0

    def end_batch(self, pending: dict[str, PendingOrder]) -> int:
        """Hand out the batch's mark if an open order waits for it; return it (0: none)."""
        if self.enabled and any(p.mark > self.mark for p in pending.values()):
            self.mark += 1
            return self.mark
        return 0

    @staticmethod
    def confirm(pending: dict[str, PendingOrder], mark: int) -> int:
        """Arm the open orders waiting for ``mark`` or an earlier one; return how many."""
        armed = 0
        for order in pending.values():
            if 0 < order.mark <= mark:
                order.mark = 0
                armed += 1
        return armed

    @staticmethod
    def unconfirmed(pending: dict[str, PendingOrder]) -> int:
        """Return the highest mark an open order still waits for (0: none)."""
        return max((p.mark for p in pending.values()), default=0)

    def copy(self) -> WriteAhead:
        """Return an independent copy."""
        return WriteAhead(self.enabled, self.mark)
