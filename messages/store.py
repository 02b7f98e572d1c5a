"""Messages between the store and the executor about whether records are kept."""

from __future__ import annotations

from dataclasses import dataclass

from messages.system import Internal

__all__ = ["Committed", "Confirm", "HaltTrading", "RetryWrites"]


@dataclass(frozen=True, slots=True)
class HaltTrading:
    """Decide, send and fill no further order: the store can no longer keep the records."""

    reason: str


@dataclass(frozen=True, slots=True)
class Confirm:
    """Commit what came before this and answer the executor with ``Committed(mark)`` (write-ahead)."""

    mark: int


@dataclass(frozen=True, slots=True)
class Committed:
    """Everything the executor sent the store up to its write-ahead mark ``mark`` is committed."""

    mark: int


class RetryWrites(Internal):
    """The store tells itself to try its held-back writes again (the database was locked)."""

    __slots__ = ()
