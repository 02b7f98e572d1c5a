"""The buffer actor, driven in this thread: empty bars only for the symbols the feed says it watches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from actors.buffer.actor import BufferActor
from messages.market import Bar, Tick
from messages.pipeline import MarketBatch, Persist
from messages.system import WatchListChanged
from settings import load_settings
from supervisors.actor import ChildContext
from supervisors.clock import SimClock
from supervisors.deps import Deps
from supervisors.health import ActorStats, Counters
from supervisors.owned import Owned
from supervisors.registry import Registry

S = 1_000_000_000


def at(hhmmss: str) -> int:
    return pd.Timestamp(f"2024-01-01T{hhmmss}Z").value


class Probe(BufferActor):
    """The buffer's logic in this thread, keeping what it would send."""

    def __init__(self, ctx: ChildContext) -> None:
        super().__init__(ctx)
        self.sent: list[Any] = []

    def send(self, name: str, message: Any) -> None:
        self.sent.append(message)

    def stored(self, symbol: str) -> list[Bar]:
        return [bar for m in self.sent if isinstance(m, Persist) for bar in m.bars if bar.symbol == symbol]


def buffer(tmp_path: Path, clock: SimClock, owned: Owned | None = None) -> Probe:
    """A live buffer (1m bars, closed by the market clock at once, no warm-up)."""
    settings = load_settings(env={}, overrides={"buffer.timeframes": ["1m"], "buffer.grace_s": 0.0,
                                                "buffer.warmup": False})
    ctx = ChildContext("buffer", Registry(), ActorStats("buffer"), Counters(), settings, clock, "live",
                       lambda failure: None, Deps.of(settings, "live", db_path=str(tmp_path / "none.db")),
                       owned or Owned())
    actor = Probe(ctx)
    actor.setup()
    return actor


def trade(actor: Probe, clock: SimClock, *ticks: Tick) -> None:
    """One batch of ticks, the market clock at the last one."""
    clock.advance_to(ticks[-1].ts)
    actor.on_receive(MarketBatch(1, 0, ticks=ticks))


def quiet_eth(actor: Probe, clock: SimClock) -> list[Bar]:
    """ETHUSD trades in the first minute only, BTCUSD every minute: ETHUSD's bars, real and empty."""
    trade(actor, clock, Tick("BTCUSD", at("10:00:10"), 1.0, 1.0, 1.0, 1.0),
          Tick("ETHUSD", at("10:00:20"), 2.0, 2.0, 2.0, 1.0))
    for minute in range(1, 6):
        trade(actor, clock, Tick("BTCUSD", at(f"10:0{minute}:10"), 1.0, 1.0, 1.0, 1.0))
    return actor.stored("ETHUSD")


@pytest.mark.parametrize("told", [None, WatchListChanged(True), WatchListChanged(False, ("BTCUSD", "ETHUSD"))],
                         ids=["not told", "every symbol", "both named"])
def test_a_quiet_watched_symbol_gets_empty_bars(tmp_path: Path, told: WatchListChanged | None) -> None:
    clock = SimClock(at("10:00:00"))
    actor = buffer(tmp_path, clock)
    if told is not None:
        actor.on_receive(told)
    bars = quiet_eth(actor, clock)
    assert bars[0].ts == at("10:01:00") and bars[0].volume == 1.0
    assert len(bars) > 1 and all(bar.volume == 0.0 and bar.close == 2.0 for bar in bars[1:])


def test_a_symbol_the_feed_no_longer_watches_gets_no_empty_bars(tmp_path: Path) -> None:
    clock = SimClock(at("10:00:00"))
    actor = buffer(tmp_path, clock)
    actor.on_receive(WatchListChanged(False, ("BTCUSD",)))
    bars = quiet_eth(actor, clock)
    assert [bar.ts for bar in bars] == [at("10:01:00")]  # its one real bar, nothing filled after it
    assert len(actor.stored("BTCUSD")) == 5


def test_the_watch_list_the_buffer_heard_outlives_its_restart(tmp_path: Path) -> None:
    clock = SimClock(at("10:00:00"))
    first = buffer(tmp_path, clock)
    first.on_receive(WatchListChanged(False, ("BTCUSD",)))
    again = buffer(tmp_path, clock, first.ctx.owned)  # the next incarnation: the same slot, nothing re-sent
    assert [bar.ts for bar in quiet_eth(again, clock)] == [at("10:01:00")]
