"""Ingress accounting: decode, validate, time, watch-list, bounds and seq-gap rules for one drained batch."""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from messages.codec import Rejection, decode_ingress, fast_tick
from messages.cryptofeed import decode_cryptofeed
from messages.market import EVERY_SYMBOL, Bar, Tick, check_symbols

__all__ = ["Ingest", "IngestResult", "IngressLimits", "WatchList", "ingress_limits"]


class WatchList:
    """The symbols the feed accepts: those listed, or every symbol (``*``). An empty list accepts none.

    ``symbol in watch_list`` says whether a symbol is accepted. At most ``limit`` symbols can be
    listed; with ``*`` the Ingest accepts at most ``limit`` distinct symbols.
    """

    def __init__(self, symbols: Iterable[str] = (EVERY_SYMBOL,), limit: int = 1000) -> None:
        wanted = set(check_symbols(symbols))
        self.limit = limit
        self.everything = EVERY_SYMBOL in wanted
        self.symbols: set[str] = set() if self.everything else wanted
        if len(self.symbols) > limit:
            raise ValueError(f"{len(self.symbols):,} symbols to watch, over the limit of {limit:,} (feed.max_symbols)")

    def __contains__(self, symbol: object) -> bool:
        return self.everything or symbol in self.symbols

    def listed(self) -> list[str]:
        """Return the watch list as the control socket shows it: the symbols in name order, or ``["*"]``."""
        return [EVERY_SYMBOL] if self.everything else sorted(self.symbols)

    def after(self, add: Iterable[str], remove: Iterable[str]) -> tuple[bool, set[str]]:
        """Return what adding then removing symbols would give, as ``(everything, symbols)``; raise
        ValueError if a symbol is bad, the result is over the limit, or a named symbol is removed from ``*``.

        Adding ``*`` accepts every symbol; removing ``*`` empties the list; adding named symbols to
        ``*`` changes nothing.
        """
        add, remove = set(check_symbols(add)), set(check_symbols(remove))
        everything, symbols = self.everything, set(self.symbols)
        if EVERY_SYMBOL in add:
            everything, symbols = True, set()
        elif not everything:
            symbols |= add
        if EVERY_SYMBOL in remove:
            everything, symbols = False, set()
        elif remove and everything:
            raise ValueError("the watch list is * (every symbol): unsubscribe * to empty it, then subscribe "
                             "the symbols wanted")
        else:
            symbols -= remove
        if len(symbols) > self.limit:
            raise ValueError(f"{len(symbols):,} symbols to watch, over the limit of {self.limit:,} (feed.max_symbols)")
        return everything, symbols

    def change(self, add: Iterable[str], remove: Iterable[str]) -> tuple[list[str], list[str]]:
        """Add then remove symbols (all or nothing, see ``after``); return the symbols added and removed."""
        everything, symbols = self.after(add, remove)
        added, removed = sorted(symbols - self.symbols), sorted(self.symbols - symbols)
        self.everything, self.symbols = everything, symbols
        return added, removed


@dataclass(frozen=True, slots=True)
class IngressLimits:
    """What a peer may make the ingress accept and hold.

    - ``max_future_ns``: a tick or bar stamped later than the feed's clock plus this is rejected
      (``future_timestamp``);
    - ``max_age_ns``: one stamped earlier than the clock less this is rejected (``old_timestamp``);
      0 switches the rule off;
    - ``max_timeframes``: distinct bar timeframes per symbol (``timeframe_limit`` beyond);
    - ``max_sources``: distinct ``src`` values whose ``seq`` is followed; the least recently seen
      one is forgotten to make room (counted in ``sources_evicted``).
    """

    max_future_ns: int = 5_000_000_000
    max_age_ns: int = 10 * 365 * 86_400 * 1_000_000_000
    max_timeframes: int = 8
    max_sources: int = 1024


def ingress_limits(settings: Any) -> IngressLimits:
    """Return the limits an ``IngressSettings`` states."""
    return IngressLimits(int(settings.max_future_s * 1e9), int(settings.max_age_s * 1e9), settings.max_timeframes,
                         settings.max_sources)


class IngestResult:
    """What one batch of raw messages became."""

    __slots__ = ("bars", "bars_received", "bars_rejected", "rejected_by_reason", "seq_gaps", "ticks",
                 "ticks_received", "ticks_rejected", "last_rejection", "sources_evicted")

    def __init__(self) -> None:
        self.ticks: list[Tick] = []
        self.bars: list[Bar] = []
        self.ticks_received = 0
        self.ticks_rejected = 0
        self.bars_received = 0
        self.bars_rejected = 0
        self.seq_gaps = 0
        self.sources_evicted = 0
        self.rejected_by_reason: Counter[str] = Counter()
        self.last_rejection: Rejection | None = None

    def counter_deltas(self) -> dict[str, int]:
        """The counter increments this batch implies."""
        return {
            "ticks_received": self.ticks_received, "ticks_accepted": len(self.ticks),
            "ticks_rejected": self.ticks_rejected, "bars_received": self.bars_received,
            "bars_accepted": len(self.bars), "bars_rejected": self.bars_rejected, "seq_gaps": self.seq_gaps,
            "seq_sources_evicted": self.sources_evicted,
        }


class Ingest:
    """Turns raw ingress messages into accepted ticks and bars, counting every rejection.

    A message whose topic starts with ``bar.`` counts as a bar; everything else (including
    garbage) counts as a tick. ``seq`` gaps are counted per ``src``: a jump from n to n+k
    counts k-1 missing messages. A valid message is then refused if its time is far from
    ``clock()`` (see IngressLimits; no clock, no time rule), if its symbol is not on the watch
    list, or if it would take the symbols (with ``*``) or a symbol's bar timeframes over their
    limits. Messages in cryptofeed's format (``wire="cryptofeed"``) are all ticks.
    """

    def __init__(self, watch: WatchList | Iterable[str] | None = None, clock: Callable[[], int] | None = None,
                 limits: IngressLimits | None = None) -> None:
        self.watch = watch if isinstance(watch, WatchList) else WatchList((EVERY_SYMBOL,) if watch is None else watch)
        self.clock = clock
        self.limits = limits or IngressLimits()
        self.seen: set[str] = set()  # symbols accepted while watching every symbol (bounded by the watch limit)
        self._timeframes: dict[str, set[str]] = {}
        self._last_seq: OrderedDict[str, int] = OrderedDict()
        self.gaps_by_src: Counter[str] = Counter()
        self.sources_evicted = 0

    def accept(self, messages: Iterable[list[Any]], wire: str = "v1") -> IngestResult:
        """Decode and validate a batch of multipart messages (lists of bytes frames) in
        wire protocol v1 or, with ``wire="cryptofeed"``, in cryptofeed's ZeroMQ format."""
        result = IngestResult()
        low, high = self._window()
        if wire != "v1":
            for frames in messages:
                self._take(decode_cryptofeed(frames), False, result, low, high)
            return result
        ticks, gap, watch = result.ticks, self._gap, self.watch
        symbols = None if watch.everything else watch.symbols
        fast = 0
        for frames in messages:
            tick = fast_tick(frames[0], frames[1]) if len(frames) == 2 else None
            if tick is None:
                self._take(decode_ingress(frames), bool(frames) and frames[0][:4] == b"bar.", result, low, high)
                continue
            fast += 1
            if tick.seq >= 0:  # a publisher numbers all its messages, watched or not
                result.seq_gaps += gap(tick.src, tick.seq, result)
            if not low <= tick.ts <= high:
                self._refuse(self._out_of_time(tick.ts, low), False, result)
            elif symbols is not None:
                if tick.symbol in symbols:
                    ticks.append(tick)
                else:
                    self._refuse(Rejection("unobserved_symbol", tick.symbol), False, result)
            elif tick.symbol in self.seen or self._admit(tick.symbol, False, result):
                ticks.append(tick)
        result.ticks_received += fast
        return result

    def _window(self) -> tuple[int, int]:
        """The timestamps accepted now: ``(earliest, latest)``."""
        if self.clock is None:
            return 0, 2**63
        now = self.clock()
        limits = self.limits
        return (now - limits.max_age_ns if limits.max_age_ns > 0 else 0), now + limits.max_future_ns

    @staticmethod
    def _out_of_time(ts: int, low: int) -> Rejection:
        if ts < low:
            return Rejection("old_timestamp", str(ts))
        return Rejection("future_timestamp", str(ts))

    def _admit(self, symbol: str, is_bar: bool, result: IngestResult) -> bool:
        """With ``*``: take a symbol not seen before if the limit allows."""
        if len(self.seen) >= self.watch.limit:
            self._refuse(Rejection("symbol_limit", symbol), is_bar, result)
            return False
        self.seen.add(symbol)
        return True

    def _take(self, decoded: Tick | Bar | Rejection, is_bar: bool, result: IngestResult, low: int, high: int) -> None:
        """Count one message that did not take the fast path, and keep it if it is accepted."""
        if is_bar:
            result.bars_received += 1
        else:
            result.ticks_received += 1
        if isinstance(decoded, Rejection):
            self._refuse(decoded, is_bar, result)
            return
        if decoded.seq >= 0:
            result.seq_gaps += self._gap(decoded.src, decoded.seq, result)
        symbol = decoded.symbol
        if not low <= decoded.ts <= high:
            self._refuse(self._out_of_time(decoded.ts, low), is_bar, result)
        elif symbol not in self.watch:
            self._refuse(Rejection("unobserved_symbol", symbol), is_bar, result)
        elif self.watch.everything and symbol not in self.seen and not self._admit(symbol, is_bar, result):
            return
        elif is_bar:
            if self._new_timeframe_refused(decoded, result):  # type: ignore[arg-type]
                return
            result.bars.append(decoded)  # type: ignore[arg-type]
        else:
            result.ticks.append(decoded)  # type: ignore[arg-type]

    def _new_timeframe_refused(self, bar: Bar, result: IngestResult) -> bool:
        known = self._timeframes.setdefault(bar.symbol, set())
        if bar.timeframe in known:
            return False
        if len(known) >= self.limits.max_timeframes:
            self._refuse(Rejection("timeframe_limit", f"{bar.symbol} {bar.timeframe}"), True, result)
            return True
        known.add(bar.timeframe)
        return False

    def change_watch(self, add: Iterable[str], remove: Iterable[str]) -> tuple[list[str], list[str]]:
        """Change the watch list (all or nothing, see ``WatchList.after``) and drop what is held for
        the symbols it no longer accepts; return the symbols newly listed and those no longer accepted."""
        was_everything = self.watch.everything
        added, removed = self.watch.change(add, remove)
        if was_everything and not self.watch.everything:
            removed = sorted(set(removed) | (self.seen - self.watch.symbols))
            self.seen.clear()
        for symbol in removed:
            self._timeframes.pop(symbol, None)
        return added, removed

    @staticmethod
    def _refuse(reason: Rejection, is_bar: bool, result: IngestResult) -> None:
        if is_bar:
            result.bars_rejected += 1
        else:
            result.ticks_rejected += 1
        result.rejected_by_reason[reason.reason] += 1
        result.last_rejection = reason

    def _gap(self, src: str, seq: int, result: IngestResult) -> int:
        last_seq = self._last_seq
        last = last_seq.get(src)
        if last is None:
            if len(last_seq) >= self.limits.max_sources:
                evicted, _ = last_seq.popitem(last=False)  # the least recently seen
                self.gaps_by_src.pop(evicted, None)
                self.sources_evicted += 1
                result.sources_evicted += 1
            last_seq[src] = seq
            return 0
        last_seq.move_to_end(src)
        if seq <= last + 1:
            if seq == last + 1:
                last_seq[src] = seq
            return 0
        last_seq[src] = seq
        missing = seq - last - 1
        self.gaps_by_src[src] += missing
        return missing
