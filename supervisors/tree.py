"""The supervision tree per mode: which actors, in which start order."""

from __future__ import annotations

from actors.buffer.actor import BufferActor
from actors.control.actor import ControlActor
from actors.executor.actor import ExecutorActor
from actors.feature.actor import FeatureActor
from actors.feed.actor import FeedActor, ReplayActor
from actors.model.actor import ModelActor
from actors.store.actor import StoreActor
from actors.strategy.actor import StrategyActor
from supervisors.supervisor import ChildSpec

__all__ = ["PIPELINE", "specs_for"]

PIPELINE = ("feed", "buffer", "feature", "model", "strategy", "executor")


def specs_for(mode: str) -> list[ChildSpec]:
    """Children in dependency order: sinks first, so every actor's downstream exists before it
    sends; the feed last. Stopping runs in reverse: input stops first, the store last."""
    if mode == "live":
        head = [ChildSpec("store", StoreActor), ChildSpec("control", ControlActor)]
        feed = ChildSpec("feed", FeedActor)
    elif mode == "backtest":
        head = [ChildSpec("store", StoreActor)]
        feed = ChildSpec("feed", ReplayActor)
    else:
        raise ValueError(f"unknown mode {mode!r}")
    return head + [
        ChildSpec("executor", ExecutorActor), ChildSpec("strategy", StrategyActor), ChildSpec("model", ModelActor),
        ChildSpec("feature", FeatureActor), ChildSpec("buffer", BufferActor), feed,
    ]
