"""The one place that reaches below pykka's public API.

Supervision needs four things pykka 4 does not offer publicly: to start an actor's loop after
its address points at it (``Actor.start`` registers and starts in one step, so a message told in
between would reach an inbox nobody reads); to stop an actor after its current message without
waiting (``ActorRef.stop`` queues behind everything already told); to take the envelopes out of
an inbox (a restart keeps the queue a failed incarnation left); and to put envelopes back, in
order, into a new incarnation's inbox. Every use of pykka's internals is here, and
``tests/supervisors/test_mailbox.py`` pins the behaviour relied on, so an upgrade that changes it
fails there first.
"""

from __future__ import annotations

import queue
from collections.abc import Iterable
from typing import Any

import pykka
from pykka.messages import _ActorStop  # noqa: PLC2701  (internal; see the module docstring)

__all__ = ["depth", "drain", "inbox_empty", "new_inbox", "put_back", "start_loop", "stop_after_current"]

_STOP = _ActorStop


def new_inbox() -> queue.SimpleQueue:
    """A mailbox: a FIFO implemented in C, a few microseconds cheaper a hop than ``queue.Queue``."""
    return queue.SimpleQueue()


def start_loop(actor: pykka.Actor) -> pykka.ActorRef:
    """Register ``actor`` and start its thread (``Actor.start`` minus the construction, so the
    caller can point an address at ``actor.actor_ref`` before anything runs)."""
    pykka.ActorRegistry.register(actor.actor_ref)
    actor._start_actor_loop()  # noqa: SLF001
    return actor.actor_ref


def stop_after_current(ref: pykka.ActorRef) -> None:
    """Stop the actor once it finishes its current message, not behind its queue (drain the
    queue first to keep it). Never blocks; a dead actor is left alone."""
    try:
        ref.tell(_STOP())
    except pykka.ActorDeadError:
        pass


def drain(ref_or_inbox: pykka.ActorRef | queue.SimpleQueue | queue.Queue, skip: tuple[type, ...] = ()) -> list[Any]:
    """Take every envelope out of an inbox (safe from any thread: the inbox is a thread-safe
    queue) and return them in order, each with ``.message`` and ``.reply_to``. Pykka's own stop
    messages and messages of the ``skip`` types are not returned; an ask among them is answered
    with None so its caller does not wait."""
    inbox = ref_or_inbox.actor_inbox if isinstance(ref_or_inbox, pykka.ActorRef) else ref_or_inbox
    kept = []
    while True:
        try:
            envelope = inbox.get_nowait()
        except queue.Empty:
            return kept
        message = envelope.message
        if isinstance(message, _STOP) or (skip and isinstance(message, skip)):
            if envelope.reply_to is not None:
                envelope.reply_to.set(None)
            continue
        kept.append(envelope)


def put_back(ref: pykka.ActorRef, envelopes: Iterable[Any]) -> None:
    """Queue envelopes taken by ``drain`` into ``ref``'s inbox, in order, asks keeping their futures."""
    inbox = ref.actor_inbox
    for envelope in envelopes:
        inbox.put(envelope)


def depth(ref: pykka.ActorRef | None) -> int:
    """Messages waiting in a live actor's inbox (0 for none or a stopped one)."""
    return ref.actor_inbox.qsize() if ref is not None and ref.is_alive() else 0


def inbox_empty(actor: pykka.Actor) -> bool:
    """Whether nothing waits in the inbox of ``actor`` (its own thread asks, to yield to a message)."""
    return actor.actor_inbox.empty()  # type: ignore[attr-defined]
