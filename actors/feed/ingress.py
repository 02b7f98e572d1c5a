"""Ingress accounting: decode, validate, watch-list and seq-gap rules for one drained batch."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from messages.codec import Rejection, decode_ingress
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
        watch = self.watch
        v1 = wire == "v1"
        decode = decode_ingress if v1 else decode_cryptofeed
        for frames in messages:
            is_bar = v1 and bool(frames) and frames[0][:4] == b"bar."
            decoded = decode(frames)
            if is_bar:
                result.bars_received += 1
            else:
                result.ticks_received += 1
            if isinstance(decoded, Rejection):
                reason = decoded
            else:
                if decoded.seq >= 0:  # a publisher numbers all its messages, watched or not
                    result.seq_gaps += self._gap(decoded.src, decoded.seq)
                if watch and decoded.symbol not in watch:
                    reason = Rejection("unobserved_symbol", decoded.symbol)
                    result.bars_rejected += is_bar
                    result.ticks_rejected += not is_bar
                    result.rejected_by_reason[reason.reason] += 1
                    result.last_rejection = reason
                    continue
                if is_bar:
                    result.bars.append(decoded)  # type: ignore[arg-type]
                else:
                    result.ticks.append(decoded)  # type: ignore[arg-type]
                continue
            if is_bar:
                result.bars_rejected += 1
            else:
                result.ticks_rejected += 1
            result.rejected_by_reason[reason.reason] += 1
            result.last_rejection = reason
        return result

    def _gap(self, src: str, seq: int) -> int:
        last = self._last_seq.get(src)
        self._last_seq[src] = seq if last is None else max(last, seq)
        if last is None or seq <= last + 1:
            return 0
        missing = seq - last - 1
        self.gaps_by_src[src] += missing
        return missing
