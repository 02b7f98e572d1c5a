"""Messages between the store and the executor about whether records are kept."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from messages.system import Internal

__all__ = ["Confirm", "HaltTrading", "RetryWrites"]


@dataclass(frozen=True, slots=True)
class HaltTrading:
    """Decide, send and fill no further order: the store can no longer keep the records."""

    reason: str


@dataclass(frozen=True, slots=True, eq=False)
class Confirm:
    """Commit what came before this, then resolve ``done`` with ``mark`` (write-ahead): the orders
    the executor marked with it are in the database. ``done`` fails if they never will be."""

    mark: int
    done: Any = field(repr=False)  # a pykka.ThreadingFuture


class RetryWrites(Internal):
    """The store tells itself to try its held-back writes again (the database was locked)."""

    __slots__ = ()
