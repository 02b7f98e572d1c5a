"""The shape of a supervision tree, and the commands a supervisor takes from outside."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from supervisors.actor import SupervisedActor

__all__ = ["ChildSpec", "RestartChild", "StopChildren", "SupervisorSpec"]


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
