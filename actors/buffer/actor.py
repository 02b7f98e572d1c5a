"""Buffer actor: ticks to bars, higher timeframes from lower ones, external bars, rolling windows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from actors.buffer.bars import BarAggregator, BarWindow
from actors.buffer.derive import TimeframeDeriver
from actors.buffer.warmup import load_warmup
from actors.store.reader import StoreReader
from messages.market import Bar, BarFrame, Tick, frame_from_bars
from messages.pipeline import Drain, MarketBatch, Persist
from messages.system import Query, WatchListChanged
from supervisors.actor import SupervisedActor

__all__ = ["BufferActor", "group_frames"]

NEXT = "feature"


def group_frames(bars: list[Bar], derived: bool = False) -> list[BarFrame]:
    """One frame per (symbol, timeframe), bars in arrival order."""
    groups: dict[tuple[str, str], list[Bar]] = {}
    for bar in bars:
        groups.setdefault((bar.symbol, bar.timeframe), []).append(bar)
    return [frame_from_bars(group, derived) for group in groups.values()]


def _frame_bars(frame: BarFrame) -> list[Bar]:
    columns = (frame.ts.tolist(), frame.open.tolist(), frame.high.tolist(), frame.low.tolist(),
               frame.close.tolist(), frame.volume.tolist())
    return [Bar(frame.symbol, ts, frame.timeframe, o, h, lo, c, v) for ts, o, h, lo, c, v in zip(*columns, strict=True)]


@dataclass(slots=True)
class BufferState:
    """What outlives the buffer's incarnations: whether the stored history was sent down, and the
    symbols the feed watches as it last said (None: every symbol, or not said yet)."""

    warmed_up: bool = False
    watched: frozenset[str] | None = None


class BufferActor(SupervisedActor):
    """Closes bars from ticks (and, live, by the market clock), derives the higher timeframes,
    passes bars and frames on, stores what it built, and keeps the last bars per key.

    Live, the first incarnation warms up from the store before the first tick: it continues
    the stored series (no duplicate or missing bar at the seam) and sends the stored bars
    down the pipeline as a ``history`` batch.
    """

    downstream = NEXT

    def setup(self) -> None:
        """Create the aggregator and deriver; warm up from the store when live (actor thread)."""
        settings = self.ctx.settings.buffer
        self.live = self.ctx.mode == "live"
        self.aggregator = BarAggregator(settings.timeframe, settings.fill_empty, settings.max_fill,
                                        int(settings.grace_s * 1e9))
        # Live derives every configured timeframe (they are stored, one continuous series); a backtest
        # derives only those a strategy trades, since nothing else would read them.
        targets = settings.timeframes if self.live else self.ctx.settings.strategy.timeframes
        self.deriver = TimeframeDeriver(targets, settings.fill_empty, settings.max_fill)
        self.lookback = settings.lookback
        self.store_ticks = self.live and self.ctx.settings.store.ticks
        self.windows: dict[tuple[str, str], BarWindow] = {}
        self.last_external: dict[tuple[str, str], int] = {}
        self._dirty = False
        self._bars_changed = True  # the derivations, windows or external-bar marks changed since last saved
        self._saved: tuple[Any, ...] = ()
        self.kept = self.ctx.keep(BufferState, BufferState)
        if self.live and settings.warmup and self.ctx.checkpoints.get(self.name) is None:
            self._warm_up()

    def snapshot(self) -> Any:
        """Open bars, derivations and windows, after a batch that changed them.

        The open bars are checkpointed cheaply (their key logs are shared, append-only); the
        derivations and windows, which change only when bars close, are copied only then.
        """
        if not self._dirty:
            return None
        self._dirty = False
        if self._bars_changed:
            self._bars_changed = False
            self._saved = (self.deriver.copy(), {key: window.copy() for key, window in self.windows.items()},
                           dict(self.last_external))
        return (self.aggregator.checkpoint(), *self._saved)

    def restore(self, state: Any) -> None:
        """Take back open bars, derivations and windows."""
        aggregator, deriver, windows, last_external = state
        settings = self.ctx.settings.buffer
        self.aggregator = BarAggregator.restored(aggregator, settings.timeframe, settings.fill_empty,
                                                 settings.max_fill, int(settings.grace_s * 1e9))
        self.deriver = deriver.copy()
        self.windows = {key: window.copy() for key, window in windows.items()}
        self.last_external = dict(last_external)
        self._bars_changed = True

    def handle(self, message: Any) -> Any:
        """Aggregate one batch, or pass a marker on (actor thread)."""
        if isinstance(message, MarketBatch):
            self._batch(message)
        elif isinstance(message, Drain):
            self.send(NEXT, message)
        elif isinstance(message, WatchListChanged):
            self.kept.watched = None if message.everything else frozenset(message.symbols)
        elif isinstance(message, Query):
            return {f"{s}/{tf}": len(w) for (s, tf), w in self.windows.items()}
        else:
            raise TypeError(f"buffer cannot handle {type(message).__name__}")
        return None

    def _warm_up(self) -> None:
        with StoreReader(self.ctx.deps.db_path) as db:
            base = self.aggregator.timeframe
            symbols = self.ctx.deps.symbols
            warm = load_warmup(db, symbols, base, self.deriver.targets_for(base), self.lookback)
        for symbol, bars in warm.base.items():
            self.aggregator.seed(symbol, bars[-1].ts, bars[-1].close)
            self.deriver.add(bars, emit=False)
        self._extend(warm.frames)
        if warm.frames and not self.kept.warmed_up:
            self.kept.warmed_up = True
            self.send(NEXT, MarketBatch(0, 0, frames=tuple(warm.frames), history=True))
            self.log.info("warmed up from the store with {:,} bars of {}", len(warm), ", ".join(warm.base))

    def _watched(self, symbol: str) -> bool:
        watched = self.kept.watched
        return watched is None or symbol in watched

    def _fresh(self, bar: Bar) -> bool:
        """An external bar is taken only if it is newer than the last one of its symbol and timeframe."""
        key = (bar.symbol, bar.timeframe)
        if bar.ts <= self.last_external.get(key, 0):
            return False
        self.last_external[key] = bar.ts
        return True

    def _batch(self, batch: MarketBatch) -> None:
        aggregator = self.aggregator
        now = self.ctx.clock.now_ns() if self.live else 0
        late, duplicates, refused = aggregator.late, aggregator.duplicates, aggregator.refused
        kept: list[Tick] | None = [] if self.store_ticks else None
        built = aggregator.add(batch.ticks, now, kept) if batch.ticks else []
        if self.live:
            built += aggregator.close_due(now, self._watched)
        external = [bar for bar in batch.bars if self._fresh(bar)]
        new_bars = built + external
        derived = self.deriver.add(new_bars)
        for frame in batch.frames:
            if not frame.derived and self.deriver.targets_for(frame.timeframe):
                derived += self.deriver.add(_frame_bars(frame))
        if not (batch.ticks or batch.bars or batch.frames or new_bars):
            return  # a clock batch that closed nothing
        self._dirty = True
        if new_bars or batch.frames or batch.bars:
            self._bars_changed = True
        frames = group_frames(new_bars) + list(batch.frames) + group_frames(derived, derived=True)
        self._extend(frames)
        self.ctx.counters.add(bars=len(new_bars) + len(derived), ticks_late=aggregator.late - late,
                              ticks_duplicate=aggregator.duplicates - duplicates,
                              ticks_refused=aggregator.refused - refused,
                              bars_late=len(batch.bars) - len(external))
        if new_bars or kept:
            self.send("store", Persist(bars=tuple(new_bars + derived), ticks=tuple(kept or ())))
        self.send(NEXT, MarketBatch(batch.seq, batch.recv_ns, batch.ticks, (), tuple(frames), batch.history))

    def _extend(self, frames: list[BarFrame]) -> None:
        for frame in frames:
            key = (frame.symbol, frame.timeframe)
            window = self.windows.get(key)
            if window is None:
                window = self.windows[key] = BarWindow(self.lookback)
            window.extend(frame)
