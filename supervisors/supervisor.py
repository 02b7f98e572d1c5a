"""The supervisor actor: starts children in order, stops them in reverse, restarts the dead, tells
the slow from the stuck, and gives up to its parent past its restart intensity.

Slow is not dead. Every ``heartbeat_s`` a supervisor asks each worker for a heartbeat (the ask waits
in the worker's mailbox like any message). A worker that has not answered for ``heartbeat_timeout_s``
is late, and health says why: ``blocked`` while it is inside ``SupervisedActor.waiting`` (it bounds
that wait itself), ``slow`` while it is inside one message (its type, for how long), ``busy`` while
it works through a long mailbox. A late worker is never replaced: it keeps its message and its queue.

Stuck: a late worker that is not blocked and has finished no message for ``stuck_timeout_s``. Python
cannot stop its thread, and a second incarnation beside a live thread would duplicate or lose work, so
the system fails loudly instead of restarting it: its message is dead-lettered with the error, the
incarnation is retired (whatever it sends or counts if it ever wakes up is dropped, counted in
``late_output_dropped`` and logged), and the root stops the system with the reason (exit 1). The
same holds when a restart must stop a worker that stays inside a message that long.
"""

from __future__ import annotations

import random
import threading
import time
import zlib
from dataclasses import dataclass, field
from typing import Any, Protocol

import pykka
from loguru import logger

from messages.system import ChildFailed, Heartbeat, Publish
from settings import Settings
from supervisors import mailbox
from supervisors.accounting import dead_letter_for, market_load, record_dead_letter
from supervisors.actor import ChildContext, drain_inbox
from supervisors.health import ActorStats, Counters
from supervisors.policy import RestartPolicy, SupervisorPolicy
from supervisors.registry import Registry
from supervisors.spec import ChildSpec, RestartChild, StopChildren, SupervisorSpec

__all__ = ["ChildSpec", "RestartChild", "Runtime", "StopChildren", "Supervisor", "SupervisorSpec", "dead_letter_for",
           "market_load", "record_dead_letter"]  # the specs and the accounting are re-exported from their modules


@dataclass(frozen=True, slots=True, eq=False)
class _Restart:
    """A delayed restart; ``generation`` changes when the supervisor stops or gives up, so a
    restart scheduled before that is dropped."""

    generation: int
    targets: tuple[str, ...]


class _Tick:
    __slots__ = ()


class _Started:
    """Answered once a supervisor's on_start (which starts its children) has run."""

    __slots__ = ()


class Runtime(Protocol):
    """What supervisors share: registry, counters, health records, checkpoints, parked queues."""

    registry: Registry
    counters: Counters
    settings: Settings
    stats: dict[str, ActorStats]
    parked: dict[str, list[Any]]
    started: bool
    fatal: str | None

    def make_context(self, name: str, stats: ActorStats, report: Any, instance: int) -> ChildContext: ...
    def give_up(self, reason: str) -> None: ...
    def register_supervisor(self, name: str, ref: pykka.ActorRef) -> None: ...
    def orphaned(self, failed: ChildFailed) -> None: ...
    def count_dropped(self, messages: list[Any]) -> None: ...


@dataclass(eq=False)
class _Child:
    spec: ChildSpec | SupervisorSpec
    ref: pykka.ActorRef | None = None
    actor: Any = None
    ctx: ChildContext | None = None
    instance: int = 0
    processed_at_start: int = 0
    heartbeat: Any = None
    heartbeat_sent: float = 0.0
    heartbeat_sent_ns: int = 0   # the same on the wall clock (health compares it with message start times)
    progress_mark: int = 0       # stats.processed when progress was last seen
    progress_at: float = 0.0     # when progress (or a wait) was last seen
    parked: dict[str, list[Any]] = field(default_factory=dict)


_instances = iter(range(1, 1 << 62))
_instances_lock = threading.Lock()


def _next_instance() -> int:
    with _instances_lock:
        return next(_instances)


class Supervisor(pykka.ThreadingActor):
    """Supervises workers and sub-supervisors by its spec's strategy (see supervisors.policy)."""

    def __init__(self, spec: SupervisorSpec, runtime: Runtime, parent: pykka.ActorRef | None,
                 instance: int = 0) -> None:
        super().__init__()
        self.spec = spec
        self.name = spec.name
        self.runtime = runtime
        self.parent = parent
        self.instance = instance
        s = runtime.settings.supervisor
        self.stop_timeout = s.stop_timeout_s
        self.heartbeat_s = s.heartbeat_s
        self.heartbeat_timeout = s.heartbeat_timeout_s
        self.stuck_timeout = s.stuck_timeout_s
        self.policy = SupervisorPolicy(
            RestartPolicy(spec.strategy, s.max_restarts, s.within_s, s.backoff_min_s, s.backoff_max_s, s.jitter),
            [(c.name, c.kind) for c in spec.children], time.monotonic, random.Random(zlib.crc32(spec.name.encode())),
        )
        self.children = {c.name: _Child(c) for c in spec.children}
        self.generation = 0
        self.claimed: set[int] = set()  # failed incarnations whose queue _kill already parked
        self.stopping = False
        self.gave_up = False
        self._ticker_stop = threading.Event()

    # -- lifecycle -------------------------------------------------------------------------------

    def on_start(self) -> None:
        """Start the children in order and the heartbeat ticker (supervisor thread)."""
        self.runtime.register_supervisor(self.name, self.actor_ref)
        self.runtime.stats[self.name].state = "running"
        for name in self.children:
            self._spawn(name)
        ticker = threading.Thread(target=self._tick_loop, name=f"{self.name}-heartbeat", daemon=True)
        ticker.start()

    def on_stop(self) -> None:
        """Stop the heartbeat ticker (supervisor thread)."""
        self._ticker_stop.set()

    def _tick_loop(self) -> None:
        while not self._ticker_stop.wait(self.heartbeat_s):
            try:
                self.actor_ref.tell(_Tick())
            except pykka.ActorDeadError:
                return

    def on_receive(self, message: Any) -> Any:
        """Supervise (supervisor thread)."""
        if isinstance(message, ChildFailed):
            self._child_failed(message)
        elif isinstance(message, _Tick):
            self._check_heartbeats()
        elif isinstance(message, _Started):
            return True
        elif isinstance(message, _Restart):
            if message.generation == self.generation and not (self.stopping or self.gave_up):
                for name in message.targets:
                    if self.children[name].ref is None:
                        self._spawn(name)
        elif isinstance(message, RestartChild):
            return self._restart_on_request(message.name)
        elif isinstance(message, StopChildren):
            self._stop_children(message.timeout)
        else:
            return super().on_receive(message)
        return None

    # -- starting and stopping children -------------------------------------------------------------

    def _spawn(self, name: str) -> None:
        if self.runtime.fatal:  # the system is stopping (a stuck actor, or the root gave up): start nothing
            return
        child = self.children[name]
        stats = self.runtime.stats[name]
        child.instance = _next_instance()
        child.heartbeat = None
        stats.late_since_ns = 0
        stats.slow_after_ns = int(self.heartbeat_timeout * 1e9)
        if isinstance(child.spec, SupervisorSpec):
            child.ref = Supervisor.start(child.spec, self.runtime, self.actor_ref, child.instance)
            # Wait until it has started its own children: the tree starts in dependency order, so a later
            # group may rely on an earlier one (the strategy asks the executor for positions at start).
            child.ref.ask(_Started(), timeout=30.0)
            return
        ctx = self.runtime.make_context(name, stats, self._reporter(), child.instance)
        actor = child.spec.actor(ctx)
        pending = self.runtime.parked.pop(name, [])
        # Attach before the thread starts, so nothing told in between can reach a dead inbox.
        self.runtime.registry.address(name).attach(actor.actor_ref, pending)
        child.ref, child.actor, child.ctx = actor.actor_ref, actor, ctx
        child.processed_at_start = stats.processed
        mailbox.start_loop(actor)

    def _reporter(self) -> Any:
        """How a child reports its failure: to this supervisor, or, once it has stopped, to the runtime,
        which accounts for the failed message and parks the queue (nothing is lost with the report)."""
        ref, runtime = self.actor_ref, self.runtime

        def report(failed: ChildFailed) -> None:
            try:
                ref.tell(failed)
            except pykka.ActorDeadError:
                runtime.orphaned(failed)
        return report

    def _park(self, name: str, envelopes: list[Any] | tuple[Any, ...]) -> None:
        self.runtime.parked.setdefault(name, []).extend(envelopes)

    def _kill(self, name: str) -> None:
        """Stop a child now, keeping its queue parked for the next incarnation."""
        child = self.children[name]
        ref = child.ref
        if ref is None:
            return
        if isinstance(child.spec, SupervisorSpec):
            if ref.is_alive():
                try:
                    ref.ask(StopChildren(self.stop_timeout), timeout=self.stop_timeout * (len(child.spec.workers()) + 1))
                    ref.stop(block=True, timeout=self.stop_timeout)
                except pykka.Timeout:
                    logger.error("supervisor {} did not stop in time; abandoned", name)
            child.ref = None
            return
        address = self.runtime.registry.address(name)
        address.hold()
        drained = drain_inbox(ref.actor_inbox)
        if ref.is_alive():
            mailbox.stop_after_current(ref)  # after the current message
            if not self._wait_stopped(name, ref):
                self._stuck(name, f"did not finish its {self.runtime.stats[name].busy_with or 'message'} "
                                  f"within {self.stuck_timeout:g}s when told to stop for a restart")
        drained += drain_inbox(ref.actor_inbox)
        failure = child.ctx.failure if child.ctx is not None else None
        if failure is not None:  # it failed on its own, its report still on the way: its queue comes first
            self.claimed.add(failure.instance)
            drained = [*failure.pending, *drained]
        self._park(name, drained)
        child.ref = None

    def _wait_stopped(self, name: str, ref: pykka.ActorRef) -> bool:
        """Wait for a child told to stop to finish its current message: as long as it is blocked
        (it bounds that itself) or progressing, and up to ``stuck_timeout_s`` otherwise. False if stuck."""
        stats = self.runtime.stats[name]
        mark, since = stats.processed, time.monotonic()
        while not ref.actor_stopped.wait(min(0.05, self.stuck_timeout)):
            now = time.monotonic()
            if stats.waiting or stats.processed != mark:
                mark, since = stats.processed, now
            elif now - since > self.stuck_timeout:
                return False
        return True

    def _stop_children(self, timeout: float) -> None:
        self.stopping = True
        self.generation += 1
        for name in reversed(list(self.children)):
            child = self.children[name]
            ref = child.ref
            stats = self.runtime.stats[name]
            if isinstance(child.spec, SupervisorSpec):
                if ref is not None and ref.is_alive():
                    try:
                        ref.ask(StopChildren(timeout), timeout=timeout * (len(child.spec.workers()) + 1))
                        ref.stop(block=True, timeout=timeout)
                    except pykka.Timeout:
                        logger.error("supervisor {} did not stop within its timeout; abandoned", name)
                stats.state = "stopped"
                continue
            if ref is not None and ref.is_alive():
                try:
                    ref.stop(block=True, timeout=timeout)
                except pykka.Timeout:
                    logger.error("{} did not stop within {:g}s; abandoned", name, timeout)
                    stats.state = "failed"
                    self._retire_at_stop(name, ref)
            dropped = self.runtime.registry.address(name).close()
            if dropped:
                self.runtime.count_dropped(dropped)
                logger.warning("{}: {} messages arrived after it stopped and were not delivered", name, len(dropped))
            if stats.state != "failed":
                stats.state = "stopped"
        self.runtime.stats[self.name].state = "stopped"

    def _retire_at_stop(self, name: str, ref: pykka.ActorRef) -> None:
        """A child that did not stop in time: retire it and count what it held as dropped at stop."""
        child = self.children[name]
        if child.ctx is not None:
            child.ctx.retired = True
        current = getattr(child.actor, "_current", None)
        queued = [envelope.message for envelope in drain_inbox(ref.actor_inbox)]
        mailbox.stop_after_current(ref)  # the drain took the stop too
        self.runtime.count_dropped([*([current] if current is not None else []), *queued])

    # -- failures ---------------------------------------------------------------------------------------

    def _child_failed(self, failed: ChildFailed) -> None:
        child = self.children.get(failed.name)
        if child is None:
            return
        handed_over = failed.instance in self.claimed  # _kill already parked its queue, in order
        self.claimed.discard(failed.instance)
        if failed.instance != child.instance:
            # An incarnation already replaced (killed with its group) failed late: its
            # message is still dead-lettered, and anything it held goes to the current one.
            self._dead_letter(failed.name, failed.error, failed.failed)
            address = self.runtime.registry.address(failed.name)
            for envelope in () if handed_over else failed.pending:
                address.tell(envelope.message)
            return
        if isinstance(child.spec, SupervisorSpec):
            if child.ref is not None:
                child.ref.stop(block=False)  # it gave up and stopped its children already
        else:
            self._dead_letter(failed.name, failed.error, failed.failed)
            if not handed_over:
                self._park(failed.name, failed.pending)
        child.ref = None
        self._after_exit(failed.name, failed.error, in_setup=failed.failed is None)

    def _dead_letter(self, name: str, error: str, message: Any) -> None:
        record_dead_letter(self.runtime, name, error, message)

    def _after_exit(self, name: str, error: str, abnormal: bool = True, in_setup: bool = False) -> None:
        stats = self.runtime.stats[name]
        if self.stopping or self.gave_up or self.runtime.fatal:
            stats.state = "failed"
            return
        if in_setup and not self.runtime.started:  # a bad port or file: restarting will not help
            stats.state = "failed"
            self.gave_up = True
            self.runtime.give_up(f"{name} failed to start: {error}")
            return
        progressed = stats.processed > self.children[name].processed_at_start
        decision = self.policy.on_exit(name, abnormal, progressed)
        if decision.action == "ignore":
            stats.state = "stopped"
            logger.info(decision.reason)
            return
        if decision.action == "escalate":
            stats.state = "failed"
            self._give_up(f"supervisor {self.name}: {decision.reason}; last failure: {name}: {error}")
            return
        for target in decision.targets:
            if target != name:
                self._kill(target)
            if self.runtime.fatal:  # a sibling was stuck: nothing restarts
                stats.state = "failed"
                return
            self.runtime.stats[target].state = "restarting"
            self.runtime.stats[target].restarts += 1
        if decision.delay_s > 0:
            logger.warning("restarting {} in {:.3f}s", ", ".join(decision.targets), decision.delay_s)
            timer = threading.Timer(decision.delay_s, self._tell_safely, (_Restart(self.generation, decision.targets),))
            timer.daemon = True
            timer.start()
        else:
            for target in decision.targets:
                if self.children[target].ref is None:
                    self._spawn(target)
        logger.warning("{} restarted (restart #{}) by {} ({})", name, stats.restarts, self.name, self.spec.strategy)
        self._publish(name, "restarted", error)

    def _tell_safely(self, message: Any) -> None:
        try:
            self.actor_ref.tell(message)
        except pykka.ActorDeadError:
            pass

    def _give_up(self, reason: str) -> None:
        self.gave_up = True
        self.generation += 1
        for name in reversed(list(self.children)):
            self._kill(name)
            self.runtime.stats[name].state = "failed"
        self.runtime.stats[self.name].state = "failed"
        logger.error("{}", reason)
        if self.parent is None:
            self.runtime.give_up(reason)
        else:
            self.parent.tell(ChildFailed(self.name, reason, None, (), self.instance))

    def _restart_on_request(self, name: str) -> bool:
        if name not in self.children:
            raise LookupError(f"{self.name} does not supervise {name}")
        self._kill(name)
        self.runtime.stats[name].restarts += 1
        self._spawn(name)
        logger.warning("{} restarted on request", name)
        self._publish(name, "restarted", "on request")
        return True

    # -- slow, blocked, stuck ---------------------------------------------------------------------------

    def _check_heartbeats(self) -> None:
        if self.stopping or self.gave_up or self.runtime.fatal:
            return
        now = time.monotonic()
        for name, child in self.children.items():
            if isinstance(child.spec, SupervisorSpec) or child.ref is None or not child.ref.is_alive():
                continue
            stats = self.runtime.stats[name]
            if child.heartbeat is not None and _resolved(child.heartbeat):
                child.heartbeat = None
                if stats.late_since_ns:
                    stats.late_since_ns = 0
                    logger.info("{} answers its heartbeat again", name)
            if child.heartbeat is None:
                child.heartbeat = child.ref.ask(Heartbeat(), block=False)
                child.heartbeat_sent_ns = time.time_ns()
                child.heartbeat_sent = child.progress_at = now
                child.progress_mark = stats.processed
                continue
            if now - child.heartbeat_sent <= self.heartbeat_timeout:
                continue
            if not stats.late_since_ns:
                stats.late_since_ns = child.heartbeat_sent_ns
                logger.warning("{} has not answered its heartbeat for {:.2f}s: {}", name, now - child.heartbeat_sent,
                               _describe(stats.condition()))
            if stats.waiting or stats.processed != child.progress_mark:
                child.progress_mark, child.progress_at = stats.processed, now  # blocked or progressing
            elif now - child.progress_at > self.stuck_timeout:
                self._stuck(name, f"no heartbeat answer and no message finished for {now - child.progress_at:.1f}s "
                                  f"(supervisor.stuck_timeout_s {self.stuck_timeout:g}), inside "
                                  f"{stats.busy_with or 'no message'}")

    def _stuck(self, name: str, why: str) -> None:
        """A child stuck for good: dead-letter its message, retire it, park its queue, stop the system."""
        child = self.children[name]
        ref = child.ref
        stats = self.runtime.stats[name]
        stats.errors += 1
        stats.state = "failed"
        self.runtime.counters.add(hangs=1)
        if child.ctx is not None:
            child.ctx.retired = True  # whatever it does if it ever wakes up is dropped and counted
        error = f"stuck: {why}"
        self._dead_letter(name, error, getattr(child.actor, "_current", None))
        if ref is not None:
            self.runtime.registry.address(name).hold()
            self._park(name, drain_inbox(ref.actor_inbox))
            mailbox.stop_after_current(ref)  # stops if it ever finishes its message
        child.ref = None
        self.runtime.give_up(f"{name} is {error}; its thread cannot be stopped, so the system stops "
                             "instead of running a second copy beside it")

    def _publish(self, name: str, change: str, detail: str) -> None:
        if "control" not in self.runtime.stats:
            return
        stats = self.runtime.stats[name]
        self.runtime.registry.tell("control", Publish(f"health.{name}", {
            "actor": name, "supervisor": self.name, "change": change, "state": stats.state,
            "restarts": stats.restarts, "detail": detail,
        }))


def _describe(condition: dict[str, Any]) -> str:
    kind = condition["condition"]
    if kind == "blocked":
        return f"blocked on {condition['on']} for {condition['for_s']:.2f}s"
    if kind == "slow":
        return f"slow, inside a {condition['in']} for {condition['for_s']:.2f}s"
    return "busy, its heartbeat waits behind its mailbox"


def _resolved(future: Any) -> bool:
    try:
        future.get(timeout=0)
        return True
    except pykka.Timeout:
        return False
    except Exception:
        return True
