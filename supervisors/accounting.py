"""Accounting for messages that were not handled: what market data a message carries, and the
dead-letter record of one an actor failed on (counted, logged and stored)."""

from __future__ import annotations

import time
from typing import Any, Protocol

from loguru import logger

from messages.pipeline import MarketBatch, Persist
from messages.system import DeadLetter
from supervisors.health import Counters
from supervisors.registry import Registry

__all__ = ["Ledger", "dead_letter_for", "market_load", "record_dead_letter"]


class Ledger(Protocol):
    """Where a dead letter is counted and sent: the running system's counters and registry."""

    counters: Counters
    registry: Registry


def market_load(message: Any) -> tuple[int, int]:
    """The ticks and the bars (as counted in ``bars``: frames) a message carries; (0, 0) if none."""
    if isinstance(message, MarketBatch):
        return len(message.ticks), sum(len(frame) for frame in message.frames)
    return 0, 0


def dead_letter_for(name: str, error: str, message: Any, ts: int) -> DeadLetter:
    """Describe a message an actor failed on."""
    if isinstance(message, MarketBatch):
        ticks = len(message.ticks)
    else:
        ticks = len(getattr(message, "messages", ()))
    summary = repr(message)[:200] if message is not None else "failure outside a message (start-up)"
    return DeadLetter(name, ts, error, type(message).__name__, summary, ticks)


def record_dead_letter(runtime: Ledger, name: str, error: str, message: Any) -> None:
    """Count, log and store (through the store actor) a message ``name`` failed on."""
    letter = dead_letter_for(name, error, message, time.time_ns())
    runtime.counters.add(dead_letters=1, ticks_dead_lettered=letter.ticks, bars_dead_lettered=market_load(message)[1])
    logger.error("{} failed on {}: {}; message dead-lettered", name, letter.message_type, error)
    runtime.registry.tell("store", Persist(dead_letters=(letter,)))
