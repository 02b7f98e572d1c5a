"""What supervision relies on below pykka's public API (supervisors.mailbox), pinned against the
installed pykka: an upgrade that changes any of it fails here first."""

from __future__ import annotations

import queue
import threading
from typing import Any

import pykka
import pytest

from supervisors import mailbox

pytestmark = pytest.mark.timeout(20)


class Recorder(pykka.ThreadingActor):
    """Records what it handles; a ``threading.Event`` message blocks it until set; "boom" raises."""

    use_daemon_thread = True

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Any] = []
        self.entered = threading.Event()
        self.failed_with_pending: list[Any] | None = None

    _create_actor_inbox = staticmethod(mailbox.new_inbox)  # type: ignore[assignment]

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, threading.Event):
            self.entered.set()
            message.wait(10)
            return None
        if message == "boom":
            raise RuntimeError("boom")
        self.seen.append(message)
        return f"handled {message}"

    def on_failure(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        # what a supervised actor does in on_failure: take the queue behind the failed message
        self.failed_with_pending = [e.message for e in mailbox.drain(self.actor_inbox)]


def test_the_inbox_is_the_one_the_hook_makes_and_the_thread_is_a_daemon() -> None:
    actor = Recorder()
    ref = mailbox.start_loop(actor)
    assert isinstance(ref.actor_inbox, queue.SimpleQueue)
    assert ref.ask("x", timeout=5) == "handled x"
    threads = [t for t in threading.enumerate() if "Recorder" in t.name]
    assert threads and all(t.daemon for t in threads)


def test_a_message_told_before_the_loop_starts_is_handled_first_and_the_actor_is_registered() -> None:
    actor = Recorder()
    ref = actor.actor_ref
    ref.tell("early")  # the address points at the ref before the thread runs
    assert pykka.ActorRegistry.get_by_urn(ref.actor_urn) is None
    mailbox.start_loop(actor)
    assert pykka.ActorRegistry.get_by_urn(ref.actor_urn) is ref
    assert ref.ask("late", timeout=5) == "handled late"
    assert actor.seen == ["early", "late"]


def test_stop_after_current_stops_after_the_message_in_hand_and_drain_keeps_the_queue_in_order() -> None:
    actor = Recorder()
    ref = mailbox.start_loop(actor)
    gate = threading.Event()
    ref.tell(gate)
    assert actor.entered.wait(5)
    for n in range(5):
        ref.tell(n)
    asked = ref.ask("question", block=False)
    queued = mailbox.drain(ref)
    mailbox.stop_after_current(ref)
    gate.set()
    assert ref.actor_stopped.wait(5)
    assert [e.message for e in queued] == [0, 1, 2, 3, 4, "question"]
    assert queued[-1].reply_to is asked  # the ask keeps its future
    assert actor.seen == []
    mailbox.stop_after_current(ref)  # a dead actor is left alone, no error


def test_drained_envelopes_put_back_into_a_new_actor_are_handled_in_order_and_asks_answered() -> None:
    first = Recorder()
    ref = mailbox.start_loop(first)
    gate = threading.Event()
    ref.tell(gate)
    assert first.entered.wait(5)
    ref.tell("a")
    asked = ref.ask("b", block=False)
    ref.tell("c")
    queued = mailbox.drain(ref)
    mailbox.stop_after_current(ref)
    gate.set()
    second = Recorder()
    mailbox.put_back(second.actor_ref, queued)
    assert mailbox.depth(second.actor_ref) == 3  # waiting for the loop to start
    mailbox.start_loop(second)
    assert asked.get(timeout=5) == "handled b"
    assert second.actor_ref.ask("d", timeout=5) == "handled d"
    assert second.seen == ["a", "b", "c", "d"]


def test_drain_answers_skipped_asks_and_drops_pykkas_stop() -> None:
    actor = Recorder()
    ref = mailbox.start_loop(actor)
    gate = threading.Event()
    ref.tell(gate)
    assert actor.entered.wait(5)
    skipped = ref.ask(1.5, block=False)
    ref.tell("kept")
    mailbox.stop_after_current(ref)
    kept = mailbox.drain(ref, skip=(float,))
    assert [e.message for e in kept] == ["kept"]
    assert skipped.get(timeout=1) is None
    gate.set()
    ref.stop(block=False)  # the drain took the stop: the actor still runs until told again
    assert ref.actor_stopped.wait(5)


def test_a_failure_in_a_tell_leaves_the_queue_behind_it_in_the_inbox_for_on_failure() -> None:
    actor = Recorder()
    ref = mailbox.start_loop(actor)
    gate = threading.Event()
    ref.tell(gate)
    assert actor.entered.wait(5)
    ref.tell("boom")
    ref.tell("after-1")
    ref.tell("after-2")
    assert mailbox.depth(ref) == 3
    gate.set()
    assert ref.actor_stopped.wait(5)  # a failure in a tell stops the actor
    assert actor.failed_with_pending == ["after-1", "after-2"]
    assert actor.seen == []
