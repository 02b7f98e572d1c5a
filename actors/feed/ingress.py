"""Ingress accounting: decode, validate, watch-list and seq-gap rules for one drained batch."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from messages.codec import Rejection, decode_ingress, fast_tick
from messages.cryptofeed import decode_cryptofeed
from messages.market import Bar, Tick

__all__ = ["Ingest", "IngestResult"]


class IngestResult:
    """What one batch of raw messages became."""

    __slots__ = ("bars", "bars_received", "bars_rejected", "rejected_by_reason", "seq_gaps", "ticks",
                 "ticks_received", "ticks_rejected", "last_rejection")

    def __init__(self) -> None:
        self.ticks: list[Tick] = []
        self.bars: list[Bar] = []
        self.ticks_received = 0
        self.ticks_rejected = 0
        self.bars_received = 0
        self.bars_rejected = 0
        self.seq_gaps = 0
        self.rejected_by_reason: Counter[str] = Counter()
        self.last_rejection: Rejection | None = None

    def counter_deltas(self) -> dict[str, int]:
        """The counter increments this batch implies."""
        return {
            "ticks_received": self.ticks_received, "ticks_accepted": len(self.ticks),
            "ticks_rejected": self.ticks_rejected, "bars_received": self.bars_received,
            "bars_accepted": len(self.bars), "bars_rejected": self.bars_rejected, "seq_gaps": self.seq_gaps,
        }


class Ingest:
    """Turns raw ingress messages into accepted ticks and bars, counting every rejection.

    A message whose topic starts with ``bar.`` counts as a bar; everything else (including
    garbage) counts as a tick. ``seq`` gaps are counted per ``src``: a jump from n to n+k
    counts k-1 missing messages. The watch list, when not empty, limits the symbols accepted.
    Messages in cryptofeed's format (``wire="cryptofeed"``) are all ticks.
    """

    def __init__(self, symbols: Iterable[str] = ()) -> None:
        self.watch: set[str] = set(symbols)
        self._last_seq: dict[str, int] = {}
        self.gaps_by_src: Counter[str] = Counter()

    def accept(self, messages: Iterable[list[Any]], wire: str = "v1") -> IngestResult:
        """Decode and validate a batch of multipart messages (lists of bytes frames) in
        wire protocol v1 or, with ``wire="cryptofeed"``, in cryptofeed's ZeroMQ format."""
        result = IngestResult()
        if wire != "v1":
            for frames in messages:
                self._take(decode_cryptofeed(frames), False, result)
            return result
        ticks, watch, gap = result.ticks, self.watch, self._gap
        fast = 0
        for frames in messages:
            tick = fast_tick(frames[0], frames[1]) if len(frames) == 2 else None
            if tick is None:
                self._take(decode_ingress(frames), bool(frames) and frames[0][:4] == b"bar.", result)
                continue
            if tick.seq >= 0:  # a publisher numbers all its messages, watched or not
                result.seq_gaps += gap(tick.src, tick.seq)
            if watch and tick.symbol not in watch:
                self._refuse(Rejection("unobserved_symbol", tick.symbol), False, result)
            else:
                ticks.append(tick)
            fast += 1
        result.ticks_received += fast
        return result

    def _take(self, decoded: Tick | Bar | Rejection, is_bar: bool, result: IngestResult) -> None:
        """Count one message that did not take the fast path, and keep it if it is accepted."""
        if is_bar:
            result.bars_received += 1
        else:
            result.ticks_received += 1
        if isinstance(decoded, Rejection):
            self._refuse(decoded, is_bar, result)
            return
        if decoded.seq >= 0:
            result.seq_gaps += self._gap(decoded.src, decoded.seq)
        if self.watch and decoded.symbol not in self.watch:
            self._refuse(Rejection("unobserved_symbol", decoded.symbol), is_bar, result)
        elif is_bar:
            result.bars.append(decoded)  # type: ignore[arg-type]
        else:
            result.ticks.append(decoded)  # type: ignore[arg-type]

    @staticmethod
    def _refuse(reason: Rejection, is_bar: bool, result: IngestResult) -> None:
        if is_bar:
            result.bars_rejected += 1
        else:
            result.ticks_rejected += 1
        result.rejected_by_reason[reason.reason] += 1
        result.last_rejection = reason

    def _gap(self, src: str, seq: int) -> int:
        last = self._last_seq.get(src)
        self._last_seq[src] = seq if last is None else max(last, seq)
        if last is None or seq <= last + 1:
            return 0
        missing = seq - last - 1
        self.gaps_by_src[src] += missing
        return missing
