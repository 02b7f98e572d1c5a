"""The supervision tree per mode.

```
root (one_for_one)
├── execution (one_for_one): store, executor[, venue]
├── control                                   (live only)
├── web                                       (live with http.listen on)
├── signals (rest_for_one): feature, model, strategy
└── market (rest_for_one): buffer, feed
```

Sinks start first, so every actor's downstream exists before it sends; stopping runs in reverse
(input first, the store last).

- execution: the store is everyone's sink and the executor's memory; neither's failure says
  anything about the other, so each restarts alone. With a venue, its execution actor starts after
  the executor (it asks the executor for the open orders) and restarts alone too: it recovers from
  the venue itself (a reconciliation) and the executor's account.
- signals: each stage consumes what the one before it produced; a failed stage restarts with
  every stage after it, so no stage keeps state derived from inputs its upstream no longer has.
- market: the buffer's bars feed everything downstream; if it fails the feed restarts with it.
  The ingress socket belongs to the system, so nothing published meanwhile is lost.
- web: the dashboard and /metrics read views and the database, never sit on the pipeline's path,
  and restart alone, like control.
- root: the groups are independent: a group that gives up (past its restart intensity) is
  restarted on its own, and past the root's intensity the system stops.
"""

from __future__ import annotations

from actors.buffer.actor import BufferActor
from actors.control.actor import ControlActor
from actors.executor.actor import ExecutorActor
from actors.feature.actor import FeatureActor
from actors.feed.actor import FeedActor
from actors.feed.replay_actor import ReplayActor
from actors.model.actor import ModelActor
from actors.store.actor import StoreActor
from actors.strategy.actor import StrategyActor
from actors.web.actor import WebActor
from supervisors.supervisor import ChildSpec, SupervisorSpec

__all__ = ["PIPELINE", "tree_for"]

PIPELINE = ("feed", "buffer", "feature", "model", "strategy", "executor")


def tree_for(mode: str, web: bool = False, venue: bool = False) -> SupervisorSpec:
    """The root supervisor's spec for ``live`` or ``backtest``; ``web``: with the HTTP server (live only);
    ``venue``: live orders go to an exchange."""
    if mode == "live":
        feed = ChildSpec("feed", FeedActor)
        control: list[ChildSpec | SupervisorSpec] = [ChildSpec("control", ControlActor)]
        if web:
            control.append(ChildSpec("web", WebActor))
    elif mode == "backtest":
        feed = ChildSpec("feed", ReplayActor)
        control = []
    else:
        raise ValueError(f"unknown mode {mode!r}")
    venue_child: tuple[ChildSpec, ...] = ()
    if venue and mode == "live":
        from actors.venue.actor import VenueActor  # ccxt is loaded only when a venue is traded on
        venue_child = (ChildSpec("venue", VenueActor),)
    return SupervisorSpec("root", "one_for_one", (
        SupervisorSpec("execution", "one_for_one", (ChildSpec("store", StoreActor), ChildSpec("executor", ExecutorActor),
                                                    *venue_child),
                       why="the store and the executor recover independently"),
        *control,
        SupervisorSpec("signals", "rest_for_one", (ChildSpec("feature", FeatureActor), ChildSpec("model", ModelActor),
                                                   ChildSpec("strategy", StrategyActor)),
                       why="each stage consumes the one before it"),
        SupervisorSpec("market", "rest_for_one", (ChildSpec("buffer", BufferActor), feed),
                       why="the feed restarts with the buffer it feeds"),
    ), why="independent groups")
