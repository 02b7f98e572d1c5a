"""History from an exchange: OHLCV bars through ccxt's ``fetch_ohlcv``, page by page, into the database.

For each symbol only what lies outside the spans fetched in full before is asked for (see
:func:`missing_spans`), so a repeat of a download asks for at most the newest page, and bars the venue
does not have are not asked for again. Each page is checked and stored, with the span it covers, in its
own transaction as it arrives, so an interrupted download keeps what it fetched and the next one
resumes after it. The
bar still forming on the venue (its close time after the venue's clock) is never stored. Each series
records its source (the venue); bars from another source are never mixed into it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import ccxt
import numpy as np
import pandas as pd
from loguru import logger
from tqdm import tqdm

from actors.store import catalog
from actors.store.cleaning import clean_bars
from actors.store.exchange import Retry, open_venue
from actors.store.history import iso_utc as _iso
from actors.store.writer import Database
from messages.market import SYMBOL_PATTERN, BarFrame, timeframe_ns
from supervisors.errors import DataError

__all__ = ["DownloadReport", "SeriesDownload", "download", "missing_spans"]

_MS = 1_000_000
_COLUMNS = ("ts", "open", "high", "low", "close", "volume")


@dataclass(frozen=True, slots=True)
class SeriesDownload:
    """What a download did for one symbol: pages asked for, bars stored (``new`` of them not stored
    before), the series' extent afterwards (close times, ns; None if it is empty), and the rows the
    cleaning dropped or repaired."""

    symbol: str
    timeframe: str
    pages: int
    stored: int
    new: int
    rows: int
    first_ts: int | None
    last_ts: int | None
    cleaned: int = 0

    def __str__(self) -> str:
        extent = f"{_iso(self.first_ts)} .. {_iso(self.last_ts)}" if self.first_ts is not None else "empty"
        cleaned = f" ({self.cleaned:,} rows cleaned: see the log)" if self.cleaned else ""
        return (f"  {self.symbol} {self.timeframe}: {self.new:,} new bars from {self.pages} page request(s)"
                f"{cleaned}; {self.rows:,} stored, close times {extent}")


@dataclass(frozen=True, slots=True)
class DownloadReport:
    """What a download did: per symbol, and the repeats the retry policy made."""

    venue: str
    db: str
    series: tuple[SeriesDownload, ...]
    retries: int

    def __str__(self) -> str:
        lines = [f"downloaded from {self.venue} into {self.db} ({self.retries} request(s) repeated)"]
        return "\n".join(lines + [str(s) for s in self.series])


def missing_spans(covered: Iterable[tuple[int, int]], step: int, start: int, end: int,
                  phase: int = 0) -> list[tuple[int, int]]:
    """The close-time spans ``(lo, hi]`` of the range ``(start, end]`` outside the ``covered`` ones (spans
    fetched in full before), each holding at least one close time of the series' grid: the multiples of
    ``step`` (ns) shifted by ``phase``."""
    pieces, cursor = [], start
    for lo, hi in sorted(covered):
        if hi <= cursor:
            continue
        if lo >= end:
            break
        if lo > cursor:
            pieces.append((cursor, lo))
        cursor = hi
    if cursor < end:
        pieces.append((cursor, end))
    return [(lo, hi) for lo, hi in pieces if lo + (phase - lo - 1) % step + 1 <= hi]


def _cleaned(page: pd.DataFrame, timeframe: str, where: str) -> tuple[pd.DataFrame, int]:
    """The page's bars (close times in ``ts``) through the store's one cleaning path for incoming bars
    (actors/store/cleaning.py): known artifacts dropped or repaired, and logged. Return the bars and
    how many rows were dropped or repaired."""
    bars, report = clean_bars(page, timeframe, source=where, symbol=str(page["symbol"].iloc[0]))
    if report.cleaned:
        logger.warning("{}", report)
    return bars, sum(report.counts.values())


class _Series:
    """The download of one symbol's series into ``db`` (one thread)."""

    def __init__(self, exchange: ccxt.Exchange, retry: Retry, db: Database, symbol: str, timeframe: str,
                 source: str, url: str, page_limit: int | None) -> None:
        self.exchange, self.retry, self.db = exchange, retry, db
        self.symbol, self.timeframe, self.source, self.url = symbol, timeframe, source, url
        self.step = timeframe_ns(timeframe)
        self.page_limit = page_limit
        self.pages = self.stored = self.cleaned = 0

    def missing(self, start: int, end: int) -> list[tuple[int, int]]:
        """What of ``(start, end]`` was never fetched in full (see ``missing_spans``)."""
        first = self.db.conn.execute("SELECT ts FROM bars WHERE symbol=? AND timeframe=? LIMIT 1",
                                     (self.symbol, self.timeframe)).fetchone()
        phase = first[0] % self.step if first else 0
        return missing_spans(catalog.coverage(self.db.conn, self.symbol, self.timeframe), self.step, start, end, phase)

    def check_source(self) -> None:
        """Refuse to mix this venue's bars into a series stored from elsewhere."""
        count = self.db.bar_summary(self.symbol, self.timeframe)[0]
        recorded = catalog.recorded_source(self.db.conn, self.symbol, self.timeframe)
        if count and (recorded is None or recorded[0] != self.source):
            origin = f"from {recorded[0]}" if recorded else "from a file or a live run (no recorded source)"
            raise DataError(f"{self.symbol} {self.timeframe} in {self.db.path} is stored {origin}, not {self.source}: "
                            f"delete it first (run.py data delete {self.symbol} --timeframe {self.timeframe}) or "
                            "download into another --db")

    def fetch_span(self, lo: int, hi: int, bar: tqdm) -> None:
        """Fetch and store the bars closing in ``(lo, hi]``, page after page, and record what was covered:
        up to the last bar received, and through ``hi`` once no further bar can close in the span. Bars
        missing before a page's first one count as missing at the venue unless they are more than the page
        holds (a venue that lists the market later, or ignores where a page should start)."""
        since = (lo - self.step) // _MS + 1  # the first bar that closes after lo opens at or after this
        reached = lo
        while True:
            what = f"fetch_ohlcv {self.symbol} {self.timeframe} after {_iso((since - 1) * _MS + self.step)}"
            page = self.retry.call(self.exchange, what, functools.partial(
                self.exchange.fetch_ohlcv, self.symbol, self.timeframe, since, self.page_limit))
            self.pages += 1
            if not page:
                return
            frame = pd.DataFrame([row[:6] for row in page], columns=list(_COLUMNS)).astype(
                {"ts": np.int64, **dict.fromkeys(_COLUMNS[1:], np.float64)})
            frame["ts"] = frame["ts"] * _MS + self.step
            frame = frame.drop_duplicates("ts").sort_values("ts", kind="stable").reset_index(drop=True)
            first, last = int(frame["ts"].iloc[0]), int(frame["ts"].iloc[-1])
            if (first - reached) // self.step - 1 > len(frame):
                reached = first - self.step  # a hole longer than the page: not taken as the venue's
            done = last + self.step > hi
            keep = frame[(frame["ts"] > lo) & (frame["ts"] <= hi)].reset_index(drop=True)
            self.commit_page(keep, reached, hi if done else min(last, hi))
            bar.update(len(keep))
            reached = max(reached, min(last, hi))
            if done or (last - self.step) // _MS < since:
                return  # no further bar closes in the span, or the venue went no further
            since = (last - self.step) // _MS + 1

    def commit_page(self, bars: pd.DataFrame, lo: int, hi: int) -> None:
        """Clean one page's bars and upsert them with the series' source and the span they cover
        (``(lo, hi]``), in one transaction."""
        if len(bars):
            where = f"{self.source} page {_iso(int(bars['ts'].iloc[0]))} .. {_iso(int(bars['ts'].iloc[-1]))}"
            bars, cleaned = _cleaned(bars.assign(symbol=self.symbol), self.timeframe, where)
            self.cleaned += cleaned
            self.db.write_frames([BarFrame.from_columns(self.symbol, self.timeframe,
                                                        **{k: bars[k].to_numpy() for k in _COLUMNS})])
            self.stored += len(bars)
        catalog.record_source(self.db, self.symbol, self.timeframe, self.source, self.url)
        if hi > lo:
            catalog.record_coverage(self.db, self.symbol, self.timeframe, lo, hi)
        self.db.commit()


def _check_request(exchange: ccxt.Exchange, symbols: Iterable[str], timeframe: str) -> None:
    """DataError (one line) for a timeframe or symbol the venue does not offer."""
    venue = exchange.id
    if not exchange.has.get("fetchOHLCV"):
        raise DataError(f"{venue} offers no OHLCV history through ccxt")
    offered = exchange.timeframes or {}
    if offered and timeframe not in offered:
        raise DataError(f"{venue} has no {timeframe} bars; it offers {', '.join(offered)}")
    markets = exchange.markets or {}
    unknown = [s for s in symbols if s not in markets]
    if unknown:
        sample = ", ".join(sorted(markets)[:5])
        raise DataError(f"{venue} lists no {', '.join(unknown)}" + (f" (it lists {len(markets):,}, e.g. {sample})"
                                                                    if markets else " (it lists no markets)"))


def download(venue: str, symbols: Iterable[str], timeframe: str, start_ns: int, end_ns: int | None, db_path: str,
             venue_url: str | None = None, retry: Retry | None = None, timeout_s: float = 10.0,
             progress: bool = True, clock_ms: Callable[[], int] | None = None) -> DownloadReport:
    """Download ``timeframe`` bars of ``symbols`` closing in ``(start_ns, end_ns]`` (``end_ns`` None: up to
    now) from ``venue`` (a ccxt id) into the database at ``db_path``; see the module's docstring.
    ``clock_ms`` is the local clock in ms (default ccxt's); the venue's clock is taken from it and the
    venue's own time where the venue tells it. DataError / VenueError (one line) on failure; what was
    stored before it stays."""
    symbols = list(dict.fromkeys(symbols))
    try:
        step = timeframe_ns(timeframe)
    except ValueError as exc:
        raise DataError(str(exc)) from None
    bad = [s for s in symbols if SYMBOL_PATTERN.fullmatch(s) is None]
    if bad:
        raise DataError(f"symbol {bad[0]!r} cannot be stored: 1-32 letters, digits and ._:/-")
    exchange = open_venue(venue, venue_url, timeout_s)
    clock_ms = clock_ms or exchange.milliseconds
    retry = retry or Retry()
    retry.call(exchange, "load_markets", exchange.load_markets)
    _check_request(exchange, symbols, timeframe)
    offset_ms = 0
    if exchange.has.get("fetchTime"):
        server = retry.call(exchange, "fetch_time", exchange.fetch_time)
        offset_ms = int(server) - clock_ms() if server else 0  # read after the reply: never ahead of the venue
    now = (clock_ms() + offset_ms) * _MS
    end = now if end_ns is None else min(end_ns, now)
    if end <= start_ns:
        raise DataError(f"nothing to download: the range ends ({_iso(end)}) before it starts ({_iso(start_ns)})")
    limit = (((exchange.features or {}).get("spot") or {}).get("fetchOHLCV") or {}).get("limit")
    db = Database(db_path)
    results = []
    try:
        for symbol in symbols:
            series = _Series(exchange, retry, db, symbol, timeframe, venue, venue_url or "", limit)
            series.check_source()
            before = db.bar_summary(symbol, timeframe)[0]
            spans = series.missing(start_ns, end)
            total = sum(max(1, (hi - lo) // step) for lo, hi in spans)
            logger.info("{} {} {}: {} span(s) to fetch, up to {:,} bars", venue, symbol, timeframe, len(spans), total)
            with tqdm(total=total, unit="bar", unit_scale=True, disable=None if progress else True,
                      desc=f"{symbol} {timeframe}", leave=False) as bar:
                for lo, hi in spans:
                    series.fetch_span(lo, hi, bar)
            rows, first, last = db.bar_summary(symbol, timeframe)
            results.append(SeriesDownload(symbol, timeframe, series.pages, series.stored, rows - before, rows,
                                          first, last, series.cleaned))
    finally:
        db.refresh_bar_copy(symbols, timeframe)
        db.close()
    return DownloadReport(venue, db_path, tuple(results), retry.retried)
