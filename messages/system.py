"""Supervision, health and control messages."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ChildFailed", "Crash", "DeadLetter", "Hang", "Heartbeat", "Internal", "Publish", "Query", "Watch",
    "WatchListChanged",
]


class Internal:
    """Base of messages an actor sends to itself; they are not redelivered after a restart."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """Asked by a supervisor; an actor that answers is not hung."""


@dataclass(frozen=True, slots=True)
class Query:
    """Ask an actor for a read-only view of its state, e.g. ``Query("positions")``."""

    what: str


@dataclass(frozen=True, slots=True)
class Crash:
    """Fault injection: the receiving actor raises. Only sent when fault injection is on.

    With a ``target``, the message travels down the pipeline like data and crashes the target
    exactly between the batches it was sent between.
    """

    reason: str = "injected crash"
    target: str = ""


@dataclass(frozen=True, slots=True)
class Hang:
    """Fault injection: the receiving actor blocks for ``seconds`` (to exercise hang detection)."""

    seconds: float = 30.0


@dataclass(frozen=True, slots=True, eq=False)
class ChildFailed:
    """Told to a supervisor by a child that died; carries what was queued behind the failure.

    ``instance`` identifies which incarnation failed, so a late report from a replaced one is ignored.
    """

    name: str
    error: str
    failed: Any = field(repr=False)
    pending: tuple[Any, ...] = field(default=(), repr=False)
    instance: int = 0


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message an actor failed on, recorded with its error and never silently dropped."""

    actor: str
    ts: int
    error: str
    message_type: str
    summary: str
    ticks: int = 0


@dataclass(frozen=True, slots=True, eq=False)
class Publish:
    """Ask the control actor to publish an event on the events socket under ``topic``."""

    topic: str
    event: Any


@dataclass(frozen=True, slots=True)
class Watch:
    """Change the feed's watch list: add and remove symbols."""

    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class WatchListChanged:
    """The feed's watch list changed (or a feed incarnation started): every symbol, or those named."""

    everything: bool
    symbols: tuple[str, ...] = ()
