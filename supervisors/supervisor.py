"""The supervisor actor: starts children in order, stops them in reverse, restarts the dead."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pykka
from loguru import logger

from messages.pipeline import MarketBatch, Persist
from messages.system import ChildFailed, DeadLetter, Publish
from supervisors.actor import ChildContext, SupervisedActor
from supervisors.health import ActorStats, Counters
from supervisors.registry import Registry

__all__ = ["ChildSpec", "RestartChild", "StopChildren", "Supervisor", "dead_letter_for"]


@dataclass(frozen=True, slots=True)
class ChildSpec:
    """How to start one child: its name and actor class."""

    name: str
    actor: type[SupervisedActor]


@dataclass(frozen=True, slots=True)
class StopChildren:
    """Stop every child in reverse start order, each within ``timeout`` seconds."""

    timeout: float


@dataclass(frozen=True, slots=True)
class RestartChild:
    """Replace a running child with a fresh instance (its queue is kept)."""

    name: str


def dead_letter_for(failed: ChildFailed, ts: int) -> DeadLetter:
    """Describe the message a child failed on."""
    message = failed.failed
    if isinstance(message, MarketBatch):
        ticks = len(message.ticks)
    else:
        ticks = len(getattr(message, "messages", ()))
    summary = repr(message)[:200] if message is not None else "failure outside a message (start-up)"
    return DeadLetter(failed.name, ts, failed.error, type(message).__name__, summary, ticks)


class Supervisor(pykka.ThreadingActor):
    """One-for-one supervisor with a restart intensity limit.

    Past ``max_restarts`` restarts within ``within_s`` seconds it gives up: the children are
    left stopped and ``on_give_up`` is called with a reason (the root stops the system).
    """

    def __init__(
        self,
        name: str,
        specs: list[ChildSpec],
        make_context: Callable[[str, ActorStats, Callable[[ChildFailed], None]], ChildContext],
        registry: Registry,
        counters: Counters,
        max_restarts: int,
        within_s: float,
        on_give_up: Callable[[str], None],
        stats: dict[str, ActorStats] | None = None,
    ) -> None:
        super().__init__()
        self.name = name
        self.specs = specs
        self.registry = registry
        self.counters = counters
        self.stats = stats if stats is not None else {spec.name: ActorStats(spec.name) for spec in specs}
        self._make_context = make_context
        self._max_restarts = max_restarts
        self._within_ns = int(within_s * 1e9)
        self._restart_times: deque[int] = deque()
        self._on_give_up = on_give_up
        self._gave_up = False
        self._stopping = False

    def on_start(self) -> None:
        """Start every child in dependency order (supervisor thread)."""
        for spec in self.specs:
            self._spawn(spec, ())

    def on_receive(self, message: Any) -> Any:
        """Handle failures, restarts and the stop request (supervisor thread)."""
        if isinstance(message, ChildFailed):
            return self._child_failed(message)
        if isinstance(message, RestartChild):
            return self._restart_on_request(message.name)
        if isinstance(message, StopChildren):
            return self._stop_children(message.timeout)
        return super().on_receive(message)

    def _spec(self, name: str) -> ChildSpec:
        for spec in self.specs:
            if spec.name == name:
                return spec
        raise KeyError(f"unknown actor {name!r}; known: {', '.join(s.name for s in self.specs)}")

    def _spawn(self, spec: ChildSpec, pending: tuple[Any, ...]) -> None:
        stats = self.stats[spec.name]
        ctx = self._make_context(spec.name, stats, self.actor_ref.tell)
        actor = spec.actor(ctx)
        # Attach before the thread starts, so nothing told in between can reach a dead inbox.
        self.registry.address(spec.name).attach(actor.actor_ref, pending)
        pykka.ActorRegistry.register(actor.actor_ref)
        actor._start_actor_loop()  # noqa: SLF001  (pykka.Actor.start minus the race above)

    def _child_failed(self, failed: ChildFailed) -> None:
        now = time.time_ns()
        letter = dead_letter_for(failed, now)
        self.counters.add(dead_letters=1, ticks_dead_lettered=letter.ticks)
        logger.error("{} failed on {}: {}; message dead-lettered", failed.name, letter.message_type, failed.error)
        self.registry.tell("store", Persist(dead_letters=(letter,)))
        if self._stopping or self._gave_up:
            self.stats[failed.name].state = "failed"
            return
        self._restart_times.append(now)
        while self._restart_times and now - self._restart_times[0] > self._within_ns:
            self._restart_times.popleft()
        if len(self._restart_times) > self._max_restarts:
            self._gave_up = True
            self.stats[failed.name].state = "failed"
            reason = (
                f"supervisor {self.name}: {len(self._restart_times)} restarts within "
                f"{self._within_ns / 1e9:g}s exceeds the limit of {self._max_restarts}; last failure: "
                f"{failed.name}: {failed.error}"
            )
            self._on_give_up(reason)
            return
        self.stats[failed.name].restarts += 1
        self._spawn(self._spec(failed.name), failed.pending)
        logger.warning("{} restarted (restart #{})", failed.name, self.stats[failed.name].restarts)
        self._publish_health(failed.name, "restarted", failed.error)

    def _restart_on_request(self, name: str) -> None:
        spec = self._spec(name)
        address = self.registry.address(name)
        ref = address.ref
        if ref is not None:
            address.hold()
            ref.stop(block=True, timeout=5.0)
        self.stats[name].restarts += 1
        self._spawn(spec, ())
        logger.warning("{} restarted on request", name)
        self._publish_health(name, "restarted", "on request")

    def _stop_children(self, timeout: float) -> None:
        self._stopping = True
        for spec in reversed(self.specs):
            address = self.registry.address(spec.name)
            ref = address.ref
            if ref is not None and ref.is_alive():
                try:
                    ref.stop(block=True, timeout=timeout)
                except pykka.Timeout:
                    logger.error("{} did not stop within {:g}s; abandoned", spec.name, timeout)
                    self.stats[spec.name].state = "failed"
            dropped = address.close()
            if dropped:
                logger.warning("{}: {} messages arrived after it stopped and were not delivered", spec.name, dropped)
            if self.stats[spec.name].state != "failed":
                self.stats[spec.name].state = "stopped"

    def _publish_health(self, name: str, change: str, detail: str) -> None:
        stats = self.stats[name]
        self.registry.tell("control", Publish(f"health.{name}", {
            "actor": name, "change": change, "state": stats.state, "restarts": stats.restarts, "detail": detail,
        }))
