"""A running system: the root supervisor, its registry and counters, and the control view."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pykka
from loguru import logger

from messages.pipeline import Drain
from messages.system import ChildFailed, Crash, Heartbeat, Query, Watch
from settings import Settings
from supervisors.actor import ChildContext
from supervisors.clock import Clock, LiveClock
from supervisors.health import ActorStats, Counters
from supervisors.registry import Registry
from supervisors.supervisor import RestartChild, StopChildren, Supervisor
from supervisors.tree import specs_for

__all__ = ["StartupError", "System"]


class StartupError(RuntimeError):
    """The system could not start; the message says which actor and why."""


class _MarkStarted:
    __slots__ = ()


class System:
    """Builds, runs and stops the actor tree of one mode; also the control socket's view of it."""

    def __init__(self, settings: Settings, mode: str, resources: dict[str, Any] | None = None,
                 clock: Clock | None = None) -> None:
        self.settings = settings
        self.mode = mode
        self.clock = clock or LiveClock()
        self.registry = Registry()
        self.counters = Counters()
        self.resources = dict(resources or {})
        self.resources.setdefault("view", self)
        self.resources.setdefault("events", mode == "live")
        self.specs = specs_for(mode)
        self.actor_names = tuple(spec.name for spec in self.specs)
        self.fault_injection = settings.control.allow_fault_injection
        self.stop_requested = threading.Event()
        self.stop_reason = ""
        self.fatal: str | None = None
        self._started = False
        self.supervisor: pykka.ActorRef | None = None
        self._stats = {spec.name: ActorStats(spec.name) for spec in self.specs}

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> None:
        """Start every actor and wait until each answers; StartupError if one cannot start."""
        self.supervisor = _RootSupervisor.start(
            "root", self.specs, self._context, self.registry, self.counters,
            self.settings.supervisor.max_restarts, self.settings.supervisor.within_s, self._give_up, self._stats,
        )
        deadline = time.monotonic() + timeout
        for name in self.actor_names:
            address = self.registry.address(name)
            while True:
                if self.fatal:
                    self.stop()
                    raise StartupError(self.fatal)
                try:
                    address.ask(Heartbeat(), timeout=0.5)
                    break
                except (pykka.ActorDeadError, pykka.Timeout):
                    if time.monotonic() > deadline:
                        self.stop()
                        raise StartupError(f"{name} did not start within {timeout:g}s") from None
                    self.stop_requested.wait(0.01)
        self.supervisor.ask(_MarkStarted(), timeout=timeout)
        self._started = True
        logger.info("{} system started: {}", self.mode, ", ".join(self.actor_names))

    def _context(self, name: str, stats: ActorStats, report: Callable[[ChildFailed], None]) -> ChildContext:
        return ChildContext(name, self.registry, stats, self.counters, self.settings, self.clock, self.mode,
                            report, self.resources)

    def _give_up(self, reason: str) -> None:
        self.fatal = reason
        if self._started:
            logger.critical("stopping the system: {}", reason)
        self.request_stop(reason)

    def request_stop(self, reason: str) -> None:
        """Ask the running system to stop (from any thread)."""
        if not self.stop_requested.is_set():
            self.stop_reason = reason
            self.stop_requested.set()

    def drain(self, timeout: float) -> bool:
        """Push a marker through the pipeline; True once everything before it is processed and stored."""
        done = pykka.ThreadingFuture()
        self.registry.tell("feed", Drain(done))
        try:
            return bool(done.get(timeout=timeout))
        except pykka.Timeout:
            logger.error("the pipeline did not drain within {:g}s", timeout)
            return False

    def stop(self) -> None:
        """Stop every actor in reverse start order and release the sockets."""
        if self.supervisor is not None and self.supervisor.is_alive():
            timeout = self.settings.supervisor.stop_timeout_s
            try:
                self.supervisor.ask(StopChildren(timeout), timeout=timeout * (len(self.specs) + 1))
            except pykka.Timeout:
                logger.error("actors did not stop in time")
            self.supervisor.stop(block=True, timeout=timeout)
        ingress = self.resources.get("ingress")
        if ingress is not None:
            ingress.close()

    # -- the control view ----------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """The health tree: status and every actor's record."""
        actors = {name: self._stats[name].snapshot(self.registry.address(name).mailbox())
                  for name in self.actor_names if name in self._stats}
        states = {a["state"] for a in actors.values()}
        if self.fatal or "failed" in states:
            status = "failed"
        elif states <= {"running"}:
            status = "healthy"
        else:
            status = "degraded"
        return {"status": status, "mode": self.mode, "actors": actors,
                "supervisors": {"root": {"strategy": "one_for_one", "children": list(self.actor_names)}}}

    def metrics(self) -> dict[str, Any]:
        """Counters, and latency from the executor when it answers in time."""
        reply: dict[str, Any] = {"counters": self.counters.snapshot()}
        try:
            reply["latency"] = self.registry.address("executor").ask(Query("latency"), timeout=1.0)
        except (pykka.ActorDeadError, pykka.Timeout):
            reply["latency"] = {"samples": 0, "unavailable": True}
        return reply

    def query(self, actor: str, what: str) -> Any:
        """Ask an actor for a read-only view."""
        try:
            return self.registry.address(actor).ask(Query(what), timeout=2.0)
        except pykka.ActorDeadError as exc:
            raise LookupError(f"{actor} is restarting; try again") from exc
        except pykka.Timeout as exc:
            raise TimeoutError(f"{actor} did not answer within 2s") from exc

    def watch(self, add: tuple[str, ...], remove: tuple[str, ...]) -> list[str]:
        """Change the feed's watch list; return the new list."""
        try:
            return self.registry.address("feed").ask(Watch(add, remove), timeout=2.0)
        except (pykka.ActorDeadError, pykka.Timeout) as exc:
            raise LookupError("the feed is not available") from exc

    def restart(self, actor: str) -> None:
        """Replace an actor with a fresh instance, keeping its queue."""
        self.supervisor.tell(RestartChild(actor))  # type: ignore[union-attr]

    def crash(self, actor: str) -> None:
        """Fault injection: make an actor raise on its next message."""
        self.registry.tell(actor, Crash(f"crash injected over the control socket into {actor}"))

    def shutdown(self, reason: str) -> None:
        """Stop the system (the runner notices and stops cleanly)."""
        logger.info(reason)
        self.request_stop(reason)


class _RootSupervisor(Supervisor):
    """The root: before start-up completes, any failure is fatal (a bad port, a bad file)."""

    _startup_done = False

    def on_receive(self, message: Any) -> Any:
        """Mark start-up done, or supervise (supervisor thread)."""
        if isinstance(message, _MarkStarted):
            self._startup_done = True
            return True
        if isinstance(message, ChildFailed) and not self._startup_done:
            self._gave_up = True
            self.stats[message.name].state = "failed"
            self._on_give_up(f"{message.name} failed to start: {message.error}")
            return None
        return super().on_receive(message)
