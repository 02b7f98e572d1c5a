"""The base of every supervised actor: counts its work, checkpoints its state, and hands its
queue over when it dies."""

from __future__ import annotations

import queue
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pykka
from loguru import logger

from messages.pipeline import MarketBatch
from messages.system import ChildFailed, Crash, Hang, Heartbeat, Internal, Publish
from settings import Settings
from supervisors import mailbox
from supervisors.clock import Clock
from supervisors.deps import Deps
from supervisors.errors import InjectedCrash
from supervisors.health import ActorStats, Counters
from supervisors.owned import Owned
from supervisors.registry import Address, Registry

__all__ = ["ChildContext", "IncarnationCounters", "InjectedCrash", "SupervisedActor", "drain_inbox", "publish",
           "publish_all"]

T = TypeVar("T")


class IncarnationCounters:
    """The shared counters as one incarnation sees them: once it is retired, what it adds is ignored,
    so a stuck thread that wakes up cannot count twice what was already dead-lettered or dropped."""

    __slots__ = ("_ctx", "shared")

    def __init__(self, shared: Counters, ctx: ChildContext) -> None:
        self.shared = shared
        self._ctx = ctx

    def add(self, reasons: dict[str, int] | None = None, **deltas: int) -> None:
        """Add to the shared counters, unless this incarnation was retired."""
        if not self._ctx.retired:
            self.shared.add(reasons, **deltas)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.shared, name)


@dataclass(eq=False)
class ChildContext:
    """What one incarnation of a supervised actor is given.

    ``deps`` are the run's dependencies, the same for every actor (frozen); ``owned`` is this actor's
    own slot (``keep``, ``show``) and ``checkpoints`` its last states, both outliving restarts;
    ``retired`` is set when the supervisor gave up on this incarnation (stuck, or abandoned at
    stop), after which nothing it sends is delivered (each such message is counted in
    ``late_output_dropped`` and logged) and nothing it counts is counted.
    """

    name: str
    registry: Registry
    stats: ActorStats
    counters: Counters
    settings: Settings
    clock: Clock
    mode: str
    report_failure: Callable[[ChildFailed], None]
    deps: Deps
    owned: Owned = field(default_factory=Owned)
    checkpoints: dict[str, Any] = field(default_factory=dict)
    instance: int = 0
    retired: bool = False
    failure: ChildFailed | None = None  # set by this incarnation before it reports its failure

    def __post_init__(self) -> None:
        if not isinstance(self.counters, IncarnationCounters):
            self.counters = IncarnationCounters(self.counters, self)  # type: ignore[assignment]

    @property
    def address(self) -> Address:
        """This actor's own stable address."""
        return self.registry.address(self.name)

    def keep(self, kind: type[T], make: Callable[[], T]) -> T:
        """Return this actor's state that outlives its incarnations, made by ``make`` on first use."""
        return self.owned.keep(kind, make)

    def show(self, view: Any) -> None:
        """Show the rest of the system this actor's view (``health`` reads it), unless retired."""
        if not self.retired:
            self.owned.view = view


def drain_inbox(inbox: queue.Queue | queue.SimpleQueue) -> list[Any]:
    """Take every envelope out of an inbox, keeping user messages (not self-sent or pykka's own).
    Safe from any thread: the inbox is a thread-safe queue."""
    return mailbox.drain(inbox, skip=(Internal, Heartbeat))


class SupervisedActor(pykka.ThreadingActor):
    """A pykka actor under supervision.

    Subclasses implement ``setup`` (actor thread, before the first message), ``handle``
    (actor thread, one message), optionally ``teardown`` (actor thread, on stop or failure),
    and, to survive restarts with their state, ``snapshot``/``restore``. A failure in a tell
    hands the failed message and everything queued behind it to the supervisor, which starts
    a fresh incarnation with the same queue and the last checkpoint.
    """

    downstream: str | None = None
    """The next actor down the pipeline (markers and targeted faults travel there)."""

    use_daemon_thread = True
    """A stuck incarnation (retired, its thread impossible to stop) must not keep the process from
    exiting once the system has stopped and said why."""

    checkpoint_on: tuple[type, ...] = (MarketBatch,)
    """After handling a message of these types, the state (``snapshot``) is checkpointed."""

    times_batches = True
    """Record each ingress batch's latency (receive to done here) in the actor's stats; an actor
    with a more telling moment (the executor's decision) records it itself."""

    def __init__(self, ctx: ChildContext) -> None:
        super().__init__()
        self.ctx = ctx
        self.name = ctx.name
        self.log = logger.bind(actor=ctx.name)
        self._current: Any = None

    @staticmethod
    def _create_actor_inbox() -> queue.SimpleQueue:  # type: ignore[override]
        """The mailbox (pykka's hook for it): see ``supervisors.mailbox.new_inbox``."""
        return mailbox.new_inbox()

    # -- hooks for subclasses ---------------------------------------------------------------

    def setup(self) -> None:
        """Prepare resources; runs in the actor thread before the first message."""

    def handle(self, message: Any) -> Any:
        """Handle one message; runs in the actor thread. The return value answers an ask."""
        raise NotImplementedError(f"{type(self).__name__} does not handle {type(message).__name__}")

    def teardown(self) -> None:
        """Release resources; runs in the actor thread on stop and on failure."""

    def snapshot(self) -> Any:
        """Return a copy of the state to restore after a crash, or None to keep none."""
        return None

    def restore(self, state: Any) -> None:
        """Take back a state returned by ``snapshot`` (actor thread, after ``setup``)."""

    # -- for subclasses -------------------------------------------------------------------------

    @contextmanager
    def waiting(self, why: str) -> Iterator[None]:
        """Mark this actor as blocked on something outside it (a locked database, a venue) while the
        block runs (actor thread). Health shows ``why`` and since when; the supervisor reports the
        actor as blocked and never takes it for stuck meanwhile. The actor bounds the wait itself."""
        stats = self.ctx.stats
        stats.waiting_since_ns, stats.waiting = time.time_ns(), why
        try:
            yield
        finally:
            stats.waiting, stats.waiting_since_ns = "", 0

    def send(self, name: str, message: Any) -> None:
        """Tell the actor called ``name``, unless this incarnation was retired (then count and log the drop:
        its message was dead-lettered or counted as dropped when it was retired)."""
        if self.ctx.retired:
            self.ctx.counters.shared.add(late_output_dropped=1)  # type: ignore[attr-defined]
            self.log.warning("retired {} incarnation dropped a {} for {} (counted in late_output_dropped)",
                             self.name, type(message).__name__, name)
            return
        self.ctx.registry.tell(name, message)

    # -- pykka hooks --------------------------------------------------------------------------

    def on_start(self) -> None:
        """Run ``setup`` and restore the last checkpoint (actor thread)."""
        try:
            self.setup()
            state = self.ctx.checkpoints.get(self.name)
            if state is not None:
                self.restore(state)
                self.log.info("{} restored its state from the last checkpoint", self.name)
        except Exception as exc:
            self._current = None
            self._fail(exc)
            raise
        self.ctx.stats.state = "running"
        self.ctx.stats.last_activity_ns = time.time_ns()

    def on_receive(self, message: Any) -> Any:
        """Count, dispatch and checkpoint one message (actor thread). While it runs, ``stats.busy_with``
        names its type and ``stats.last_activity_ns`` says since when (health shows a slow actor so)."""
        stats = self.ctx.stats
        stats.last_activity_ns = time.time_ns()
        if isinstance(message, Heartbeat):
            return True
        stats.busy_with = type(message).__name__
        try:
            return self._dispatch(message, stats)
        finally:
            stats.busy_with = ""

    def _dispatch(self, message: Any, stats: ActorStats) -> Any:
        if isinstance(message, Internal):
            result = self.handle(message)
            if isinstance(message, self.checkpoint_on):
                self._checkpoint()
            return result
        if isinstance(message, Crash) and message.target not in ("", self.name):
            if self.downstream:
                self.send(self.downstream, message)
            return None
        self._current = message
        if isinstance(message, Crash):
            stats.errors += 1
            raise InjectedCrash(message.reason)
        if isinstance(message, Hang):
            threading.Event().wait(message.seconds)
            self._current = None
            return None
        try:
            result = self.handle(message)
        except Exception:
            stats.errors += 1
            raise
        if isinstance(message, MarketBatch) and message.recv_ns and self.times_batches and not self.ctx.retired:
            stats.latency.add(time.perf_counter_ns() - message.recv_ns)
        if isinstance(message, self.checkpoint_on):
            self._checkpoint()
        self._current = None
        stats.processed += 1
        return result

    def _checkpoint(self) -> None:
        if not self.ctx.retired:
            state = self.snapshot()
            if state is not None:
                self.ctx.checkpoints[self.name] = state

    def on_stop(self) -> None:
        """Release resources when stopped on purpose (actor thread)."""
        if not self.ctx.retired:
            self.ctx.stats.state = "stopped"
        self._teardown()

    def on_failure(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        """Hand the failed message and the queue behind it to the supervisor (actor thread)."""
        self._fail(exc)

    # -- internals ------------------------------------------------------------------------------

    def _fail(self, exc: BaseException | None) -> None:
        if self.ctx.retired:
            self._teardown()
            return
        self.ctx.stats.state = "restarting"
        self.ctx.address.hold()
        pending = drain_inbox(self.actor_inbox)  # type: ignore[arg-type]
        self._teardown()
        error = "".join(traceback.format_exception_only(type(exc), exc)).strip() if exc else "failed"
        # Recorded before reporting: a supervisor killing this incarnation before the report reaches it
        # (a sibling failed first) takes the queue from here, in order.
        self.ctx.failure = ChildFailed(self.name, error, self._current, tuple(pending), self.ctx.instance)
        self.ctx.report_failure(self.ctx.failure)

    def _teardown(self) -> None:
        try:
            self.teardown()
        except Exception:
            self.log.exception("teardown of {} failed", self.name)


def publish(ctx: ChildContext, topic: str, event: Any) -> None:
    """Send an event to the events socket, when this system has one."""
    if ctx.deps.events and not ctx.retired:
        ctx.registry.tell("control", Publish(topic, event))


def publish_all(ctx: ChildContext, kind: str, events: Iterable[Any]) -> None:
    """Publish each event under ``kind.SYMBOL``, when this system has an events socket (checked once)."""
    if ctx.deps.events and not ctx.retired:
        tell = ctx.registry.tell
        for event in events:
            tell("control", Publish(f"{kind}.{event.symbol}", event))
