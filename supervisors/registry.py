"""Addressing by name: a stable Address per actor name that survives restarts.

Senders never hold an ActorRef. While an actor restarts, its Address holds what is told to it
and hands everything, in order, to the new instance.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pykka
from loguru import logger

from supervisors import mailbox

__all__ = ["Address", "Registry"]


class Address:
    """Where messages for one named actor go, whichever instance is alive."""

    def __init__(self, name: str, on_drop: Callable[[Any], None] | None = None) -> None:
        self.name = name
        self._on_drop = on_drop  # told each message dropped because the actor was stopped
        self._lock = threading.Lock()
        self._ref: pykka.ActorRef | None = None
        self._held: list[Any] | None = []   # None: deliver; a list: hold until attach()
        self._closed = False
        self.undeliverable = 0

    def tell(self, message: Any) -> None:
        """Deliver ``message``, or hold it while the actor restarts. Never raises for a dead actor."""
        with self._lock:
            if self._held is None:
                try:
                    self._ref.tell(message)  # type: ignore[union-attr]
                    return
                except pykka.ActorDeadError:
                    self._held = []
            if self._closed:
                self.undeliverable += 1
                logger.warning("{} is stopped; dropped {}", self.name, type(message).__name__)
                if self._on_drop is not None:
                    self._on_drop(message)
                return
            self._held.append(message)

    def ask(self, message: Any, timeout: float) -> Any:
        """Ask the current instance and wait up to ``timeout`` seconds.

        Raises pykka.ActorDeadError while the actor is restarting or stopped, and
        pykka.Timeout if it does not answer in time.
        """
        with self._lock:
            ref = self._ref if self._held is None else None
        if ref is None:
            raise pykka.ActorDeadError(f"{self.name} is not running")
        return ref.ask(message, timeout=timeout)

    def hold(self) -> None:
        """Start holding messages (called by a failing instance before it drains its inbox)."""
        with self._lock:
            if self._held is None:
                self._held = []

    def attach(self, ref: pykka.ActorRef, pending: list[Any] | tuple[Any, ...] = ()) -> None:
        """Point at a new instance: first ``pending`` envelopes, then held messages, then live traffic."""
        with self._lock:
            mailbox.put_back(ref, pending)
            for message in self._held or ():
                ref.tell(message)
            self._held = None
            self._ref = ref
            self._closed = False

    def close(self) -> list[Any]:
        """Stop delivering (the actor was stopped on purpose); return the held messages, now dropped."""
        with self._lock:
            self._closed = True
            dropped = list(self._held or ())
            self._held = []
            self.undeliverable += len(dropped)
            return dropped

    @property
    def ref(self) -> pykka.ActorRef | None:
        """The current instance, or None while restarting."""
        return self._ref if self._held is None else None

    def mailbox(self) -> int:
        """Messages waiting: the instance's inbox plus anything held during a restart."""
        with self._lock:
            held = len(self._held or ())
            ref = self._ref
        return held + mailbox.depth(ref)


class Registry:
    """Names to Addresses; one per system."""

    def __init__(self, on_drop: Callable[[Any], None] | None = None) -> None:
        """``on_drop`` is told every message dropped because its actor was stopped (for accounting)."""
        self._addresses: dict[str, Address] = {}
        self._lock = threading.Lock()
        self._on_drop = on_drop

    def address(self, name: str) -> Address:
        """Return the Address for ``name``, creating it on first use."""
        address = self._addresses.get(name)
        if address is None:
            with self._lock:
                address = self._addresses.setdefault(name, Address(name, self._on_drop))
        return address

    def tell(self, name: str, message: Any) -> None:
        """Tell the actor called ``name``."""
        self.address(name).tell(message)

    def names(self) -> list[str]:
        """Every registered name."""
        return list(self._addresses)
