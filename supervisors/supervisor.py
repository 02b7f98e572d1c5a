"""The supervisor actor: starts children in order, stops them in reverse, restarts the dead
and the hung, and gives up to its parent past its restart intensity."""

from __future__ import annotations

import random
import threading
import time
import zlib
from dataclasses import dataclass, field
from typing import Any, Protocol

import pykka
from loguru import logger

from messages.pipeline import MarketBatch, Persist
from messages.system import ChildFailed, DeadLetter, Heartbeat, Publish
from settings import Settings
from supervisors.actor import ChildContext, SupervisedActor, drain_inbox
from supervisors.health import ActorStats, Counters
from supervisors.policy import RestartPolicy, SupervisorPolicy
from supervisors.registry import Registry

__all__ = ["ChildSpec", "RestartChild", "Runtime", "StopChildren", "Supervisor", "SupervisorSpec", "dead_letter_for"]


@dataclass(frozen=True, slots=True)
class ChildSpec:
    """A worker: its name, actor class and child type."""

    name: str
    actor: type[SupervisedActor]
    kind: str = "permanent"


@dataclass(frozen=True, slots=True)
class SupervisorSpec:
    """A supervisor: its name, strategy and children (workers or supervisors), in start order."""

    name: str
    strategy: str
    children: tuple[ChildSpec | SupervisorSpec, ...]
    kind: str = "permanent"
    why: str = ""

    def workers(self) -> list[str]:
        """Every worker under this supervisor, in start order."""
        names: list[str] = []
        for child in self.children:
            names.extend(child.workers() if isinstance(child, SupervisorSpec) else [child.name])
        return names


@dataclass(frozen=True, slots=True)
class StopChildren:
    """Stop every child in reverse start order, each within ``timeout`` seconds."""

    timeout: float


@dataclass(frozen=True, slots=True)
class RestartChild:
    """Replace a running child with a fresh incarnation (its queue is kept)."""

    name: str


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

    def make_context(self, name: str, stats: ActorStats, report: Any, instance: int) -> ChildContext: ...
    def give_up(self, reason: str) -> None: ...
    def register_supervisor(self, name: str, ref: pykka.ActorRef) -> None: ...


def dead_letter_for(name: str, error: str, message: Any, ts: int) -> DeadLetter:
    """Describe a message an actor failed on."""
    if isinstance(message, MarketBatch):
        ticks = len(message.ticks)
    else:
        ticks = len(getattr(message, "messages", ()))
    summary = repr(message)[:200] if message is not None else "failure outside a message (start-up)"
    return DeadLetter(name, ts, error, type(message).__name__, summary, ticks)


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
    heartbeat_processed: int = 0
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
        child = self.children[name]
        stats = self.runtime.stats[name]
        child.instance = _next_instance()
        child.heartbeat = None
        if isinstance(child.spec, SupervisorSpec):
            child.ref = Supervisor.start(child.spec, self.runtime, self.actor_ref, child.instance)
            # Wait until it has started its own children: the tree starts in dependency order, so a later
            # group may rely on an earlier one (the strategy asks the executor for positions at start).
            child.ref.ask(_Started(), timeout=30.0)
            return
        ctx = self.runtime.make_context(name, stats, self.actor_ref.tell, child.instance)
        actor = child.spec.actor(ctx)
        pending = self.runtime.parked.pop(name, [])
        # Attach before the thread starts, so nothing told in between can reach a dead inbox.
        self.runtime.registry.address(name).attach(actor.actor_ref, pending)
        pykka.ActorRegistry.register(actor.actor_ref)
        child.ref, child.actor, child.ctx = actor.actor_ref, actor, ctx
        child.processed_at_start = stats.processed
        actor._start_actor_loop()  # noqa: SLF001  (pykka.Actor.start minus the race above)

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
            ref.tell(pykka.messages._ActorStop())  # noqa: SLF001  (stop after the current message)
            if not ref.actor_stopped.wait(min(self.stop_timeout, self.heartbeat_timeout)):
                # stuck in its current message: a hang; never block the supervisor on it
                self._abandon(name, f"did not stop within {min(self.stop_timeout, self.heartbeat_timeout):g}s")
        drained += drain_inbox(ref.actor_inbox)
        failure = child.ctx.failure if child.ctx is not None else None
        if failure is not None:  # it failed on its own, its report still on the way: its queue comes first
            self.claimed.add(failure.instance)
            drained = [*failure.pending, *drained]
        self._park(name, drained)
        child.ref = None

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
            dropped = self.runtime.registry.address(name).close()
            if dropped:
                logger.warning("{}: {} messages arrived after it stopped and were not delivered", name, dropped)
            if stats.state != "failed":
                stats.state = "stopped"
        self.runtime.stats[self.name].state = "stopped"

    # -- failures ---------------------------------------------------------------------------------------

    def _child_failed(self, failed: ChildFailed) -> None:
        child = self.children.get(failed.name)
        if child is None:
            return
        handed_over = failed.instance in self.claimed  # _kill already parked its queue, in order
        self.claimed.discard(failed.instance)
        if failed.instance != child.instance:
            # An incarnation already replaced (killed with its group, or hung) failed late: its
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
        letter = dead_letter_for(name, error, message, time.time_ns())
        self.runtime.counters.add(dead_letters=1, ticks_dead_lettered=letter.ticks)
        logger.error("{} failed on {}: {}; message dead-lettered", name, letter.message_type, error)
        self.runtime.registry.tell("store", Persist(dead_letters=(letter,)))

    def _after_exit(self, name: str, error: str, abnormal: bool = True, in_setup: bool = False) -> None:
        stats = self.runtime.stats[name]
        if self.stopping or self.gave_up:
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

    # -- hangs -----------------------------------------------------------------------------------------

    def _check_heartbeats(self) -> None:
        if self.stopping or self.gave_up:
            return
        now = time.monotonic()
        for name, child in self.children.items():
            if isinstance(child.spec, SupervisorSpec) or child.ref is None or not child.ref.is_alive():
                continue
            stats = self.runtime.stats[name]
            if child.heartbeat is None:
                child.heartbeat = child.ref.ask(Heartbeat(), block=False)
                child.heartbeat_sent, child.heartbeat_processed = now, stats.processed
            elif _resolved(child.heartbeat):
                child.heartbeat = None
            elif now - child.heartbeat_sent > self.heartbeat_timeout:
                if stats.processed != child.heartbeat_processed:
                    child.heartbeat_sent, child.heartbeat_processed = now, stats.processed  # busy, not hung
                else:
                    self._hung(name)

    def _abandon(self, name: str, why: str) -> str:
        """Give up on a stuck incarnation: count the hang, dead-letter its message, retire it."""
        child = self.children[name]
        self.runtime.stats[name].errors += 1
        self.runtime.counters.add(hangs=1)
        error = f"hung: {why}"
        logger.error("{} {}; replacing it", name, error)
        if child.ctx is not None:
            child.ctx.retired = True  # whatever it does if it ever wakes up is not delivered
        self._dead_letter(name, error, getattr(child.actor, "_current", None))
        return error

    def _hung(self, name: str) -> None:
        child = self.children[name]
        ref = child.ref
        address = self.runtime.registry.address(name)
        address.hold()
        self._park(name, drain_inbox(ref.actor_inbox))  # type: ignore[union-attr]
        ref.tell(pykka.messages._ActorStop())  # type: ignore[union-attr]  # noqa: SLF001
        error = self._abandon(name, f"no heartbeat answer and no progress for {self.heartbeat_timeout:g}s")
        child.ref = None
        self._after_exit(name, error)

    def _publish(self, name: str, change: str, detail: str) -> None:
        if "control" not in self.runtime.stats:
            return
        stats = self.runtime.stats[name]
        self.runtime.registry.tell("control", Publish(f"health.{name}", {
            "actor": name, "supervisor": self.name, "change": change, "state": stats.state,
            "restarts": stats.restarts, "detail": detail,
        }))


def _resolved(future: Any) -> bool:
    try:
        future.get(timeout=0)
        return True
    except pykka.Timeout:
        return False
    except Exception:
        return True
