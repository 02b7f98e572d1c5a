"""The base of every supervised actor: counts its work and hands its queue over when it dies."""

from __future__ import annotations

import queue
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pykka
from loguru import logger

from messages.system import ChildFailed, Crash, Heartbeat, Internal, Publish
from settings import Settings
from supervisors.clock import Clock
from supervisors.health import ActorStats, Counters
from supervisors.registry import Address, Registry

__all__ = ["ChildContext", "InjectedCrash", "SupervisedActor", "publish"]


class InjectedCrash(RuntimeError):
    """Raised by an actor told to crash by fault injection."""


@dataclass(eq=False)
class ChildContext:
    """What a supervised actor is given: its name, where to send things, and shared resources."""

    name: str
    registry: Registry
    stats: ActorStats
    counters: Counters
    settings: Settings
    clock: Clock
    mode: str
    report_failure: Callable[[ChildFailed], None]
    resources: dict[str, Any] = field(default_factory=dict)

    @property
    def address(self) -> Address:
        """This actor's own stable address."""
        return self.registry.address(self.name)


class SupervisedActor(pykka.ThreadingActor):
    """A pykka actor under supervision.

    Subclasses implement ``setup`` (actor thread, before the first message), ``handle``
    (actor thread, one message) and optionally ``teardown`` (actor thread, on stop or failure).
    A failure in a tell hands the failed message and everything queued behind it to the
    supervisor, which restarts a fresh instance with the same queue.
    """

    def __init__(self, ctx: ChildContext) -> None:
        super().__init__()
        self.ctx = ctx
        self.name = ctx.name
        self.log = logger.bind(actor=ctx.name)
        self._current: Any = None

    # -- hooks for subclasses ---------------------------------------------------------------

    def setup(self) -> None:
        """Prepare resources; runs in the actor thread before the first message."""

    def handle(self, message: Any) -> Any:
        """Handle one message; runs in the actor thread. The return value answers an ask."""
        raise NotImplementedError(f"{type(self).__name__} does not handle {type(message).__name__}")

    def teardown(self) -> None:
        """Release resources; runs in the actor thread on stop and on failure."""

    # -- pykka hooks --------------------------------------------------------------------------

    def on_start(self) -> None:
        """Run ``setup``; a failure here is reported like any other (actor thread)."""
        try:
            self.setup()
        except Exception as exc:
            self._current = None
            self._fail(exc)
            raise
        self.ctx.stats.state = "running"
        self.ctx.stats.last_activity_ns = time.time_ns()

    def on_receive(self, message: Any) -> Any:
        """Count and dispatch one message (actor thread)."""
        stats = self.ctx.stats
        stats.last_activity_ns = time.time_ns()
        if isinstance(message, Heartbeat):
            return True
        if isinstance(message, Internal):
            return self.handle(message)
        self._current = message
        if isinstance(message, Crash):
            stats.errors += 1
            raise InjectedCrash(message.reason)
        try:
            result = self.handle(message)
        except Exception:
            stats.errors += 1
            raise
        self._current = None
        stats.processed += 1
        return result

    def on_stop(self) -> None:
        """Release resources when stopped on purpose (actor thread)."""
        self.ctx.stats.state = "stopped"
        self._teardown()

    def on_failure(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        """Hand the failed message and the queue behind it to the supervisor (actor thread)."""
        self._fail(exc)

    # -- internals ------------------------------------------------------------------------------

    def _fail(self, exc: BaseException | None) -> None:
        self.ctx.stats.state = "restarting"
        self.ctx.address.hold()
        pending = []
        while True:
            try:
                envelope = self.actor_inbox.get_nowait()  # type: ignore[attr-defined]
            except queue.Empty:
                break
            if isinstance(envelope.message, Internal | pykka.messages._ActorStop):  # noqa: SLF001
                if envelope.reply_to is not None:
                    envelope.reply_to.set(None)
                continue
            pending.append(envelope)
        self._teardown()
        error = "".join(traceback.format_exception_only(type(exc), exc)).strip() if exc else "failed"
        self.ctx.report_failure(ChildFailed(self.name, error, self._current, tuple(pending)))

    def _teardown(self) -> None:
        try:
            self.teardown()
        except Exception:
            self.log.exception("teardown of {} failed", self.name)


def publish(ctx: ChildContext, topic: str, event: Any) -> None:
    """Send an event to the events socket, when this system has one."""
    if ctx.resources.get("events", False):
        ctx.registry.tell("control", Publish(topic, event))
