"""What every actor of a run is given: the run's dependencies, built once with the system, never changed."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from settings import Settings

if TYPE_CHECKING:
    from actors.control.security import CurveKeys
    from actors.feed.actor import IngressSocket
    from actors.feed.replay import ReplayPlan
    from supervisors.clock import Clock
    from supervisors.system import System

__all__ = ["Deps"]


@dataclass(frozen=True, slots=True, eq=False)
class Deps:
    """The inputs of one run, the same for every actor and every incarnation (``ctx.deps``).

    Built by the runner (``Deps.of``) and completed by the ``System`` with itself as ``view``; what an
    actor must keep across its incarnations is its own (``ctx.keep``), and what it shows the rest of
    the system it shows through its context (``ctx.show``), never through these.
    """

    run: str
    """The run its records are stored under (``live`` or ``backtest``)."""
    db_path: str
    """The database the store writes and the actors warm up or resume from."""
    symbols: tuple[str, ...]
    """The symbols traded: what the executor sizes for and the buffer warms up."""
    events: bool
    """Whether the system publishes on an events socket."""
    ingress: IngressSocket | None = None
    """The wire-protocol-v1 ingress socket (live)."""
    cryptofeed: IngressSocket | None = None
    """The cryptofeed ingress socket, when one is configured (live)."""
    feed_clock: Clock | None = None
    """The clock ticks are judged by, when not the system's (the simulator's market runs on its own)."""
    curve: CurveKeys | None = None
    """The control socket's CURVE keys, when it is bound off loopback."""
    replay: ReplayPlan | None = None
    """The bars to replay, in chunks (backtest)."""
    view: System | None = None
    """The running system, set by the system itself: the control socket's view, and where the store
    reports a durability failure."""

    @classmethod
    def of(cls, settings: Settings, mode: str, **given: Any) -> Deps:
        """Return the dependencies of a run in ``mode``: the settings' database and symbols, records under
        the mode's name, events in live; each of ``given`` (a field's name and value) replaces the default."""
        defaults = cls(run=mode, db_path=str(settings.store.db), symbols=tuple(settings.feed.symbols),
                       events=mode == "live")
        return replace(defaults, **given)

    def need(self, name: str) -> Any:
        """Return the dependency ``name``; LookupError naming it when this run was not given it."""
        value = getattr(self, name)
        if value is None:
            raise LookupError(f"this run was built without {name!r}, which the actor needs")
        return value
