"""History from an exchange: OHLCV bars through ccxt's ``fetch_ohlcv``, page by page, into the database.

For each symbol only what is missing in the requested range is asked for: before the first stored
bar, the gaps between stored bars, after the last one (see :func:`missing_spans`), so a repeat of a
download asks for at most the newest page. Each page is checked and stored in its own transaction as
it arrives, so an interrupted download keeps what it fetched and the next one resumes after it. The
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
from actors.store.exchange import Retry, open_venue
from actors.store.history import _row_problems
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
    before), and the series' extent afterwards (close times, ns; None if it is empty)."""

    symbol: str
    timeframe: str
    pages: int
    stored: int
    new: int
    rows: int
    first_ts: int | None
    last_ts: int | None

    def __str__(self) -> str:
        extent = f"{_iso(self.first_ts)} .. {_iso(self.last_ts)}" if self.first_ts is not None else "empty"
        return (f"  {self.symbol} {self.timeframe}: {self.new:,} new bars from {self.pages} page request(s); "
                f"{self.rows:,} stored, close times {extent}")


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


def missing_spans(stored: np.ndarray, step: int, start: int, end: int) -> list[tuple[int, int]]:
    """The close-time spans ``(lo, hi]`` of the range ``(start, end]`` that hold no stored bar, given the
    stored close times ``stored`` (sorted, ns) and the bar length ``step``: before the first stored bar,
    each gap between two (a step of two bars or more), after the last one."""
    inside = stored[(stored > start) & (stored <= end)]
    if not len(inside):
        return [(start, end)] if end > start else []
    spans = []
    if inside[0] - step > start:
        spans.append((start, int(inside[0]) - step))
    steps = np.diff(inside)
    for i in np.flatnonzero(np.rint(steps / step) >= 2).tolist():
        spans.append((int(inside[i]), int(inside[i + 1]) - step))
    if inside[-1] + step <= end:
        spans.append((int(inside[-1]), end))
    return spans


def _checked(page: pd.DataFrame, where: str) -> pd.DataFrame:
    """The page's bars if they pass the store's checks on bars; DataError naming the bad ones."""
    problems = _row_problems(page, np.array([_iso(t) for t in page["ts"].tolist()], dtype=object))
    if problems:
        raise DataError(f"{where}: " + "; ".join(problems).replace(" at rows ", " at bars closing "))
    return page


class _Series:
    """The download of one symbol's series into ``db`` (one thread)."""

    def __init__(self, exchange: ccxt.Exchange, retry: Retry, db: Database, symbol: str, timeframe: str,
                 source: str, url: str, page_limit: int | None) -> None:
        self.exchange, self.retry, self.db = exchange, retry, db
        self.symbol, self.timeframe, self.source, self.url = symbol, timeframe, source, url
        self.step = timeframe_ns(timeframe)
        self.page_limit = page_limit
        self.pages = self.stored = 0

    def stored_closes(self) -> np.ndarray:
        """The close times of the series' stored bars, in order."""
        rows = self.db.conn.execute("SELECT ts FROM bars WHERE symbol=? AND timeframe=? ORDER BY ts",
                                    (self.symbol, self.timeframe))
        return np.fromiter((r[0] for r in rows), dtype=np.int64)

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
        """Fetch and store the bars closing in ``(lo, hi]``, page after page."""
        since = (lo - self.step) // _MS + 1  # the first bar that closes after lo opens at or after this
        while True:
            what = f"fetch_ohlcv {self.symbol} {self.timeframe} after {_iso((since - 1) * _MS + self.step)}"
            page = self.retry.call(self.exchange, what, functools.partial(
                self.exchange.fetch_ohlcv, self.symbol, self.timeframe, since, self.page_limit))
            self.pages += 1
            if not page:
                return
            opens = np.array([row[0] for row in page], dtype=np.int64)
            frame = pd.DataFrame([row[:6] for row in page], columns=list(_COLUMNS)).astype(
                {"ts": np.int64, **dict.fromkeys(_COLUMNS[1:], np.float64)})
            frame["ts"] = (opens * _MS) + self.step
            keep = frame[(frame["ts"] > lo) & (frame["ts"] <= hi)].drop_duplicates("ts").sort_values("ts")
            if len(keep):
                self.store(keep.reset_index(drop=True))
                bar.update(len(keep))
            last_close = int(opens.max()) * _MS + self.step
            if last_close + self.step > hi or int(opens.max()) < since:
                return  # no further bar closes in the span, or the venue went no further
            since = int(opens.max()) + 1

    def store(self, bars: pd.DataFrame) -> None:
        """Check one page and upsert it with the series' source, in one transaction."""
        bars = bars.assign(symbol=self.symbol)
        where = f"{self.source} {self.symbol} {self.timeframe} bars {_iso(int(bars['ts'].iloc[0]))} .. " \
                f"{_iso(int(bars['ts'].iloc[-1]))}"
        bars = _checked(bars, where)
        self.db.write_frames([BarFrame.from_columns(self.symbol, self.timeframe,
                                                    **{k: bars[k].to_numpy() for k in _COLUMNS})])
        catalog.record_source(self.db, self.symbol, self.timeframe, self.source, self.url)
        self.db.commit()
        self.stored += len(bars)


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
            spans = missing_spans(series.stored_closes(), step, start_ns, end)
            total = sum(max(1, (hi - lo) // step) for lo, hi in spans)
            logger.info("{} {} {}: {} span(s) to fetch, up to {:,} bars", venue, symbol, timeframe, len(spans), total)
            with tqdm(total=total, unit="bar", unit_scale=True, disable=None if progress else True,
                      desc=f"{symbol} {timeframe}", leave=False) as bar:
                for lo, hi in spans:
                    series.fetch_span(lo, hi, bar)
            rows, first, last = db.bar_summary(symbol, timeframe)
            results.append(SeriesDownload(symbol, timeframe, series.pages, series.stored, rows - before, rows,
                                          first, last))
    finally:
        db.refresh_bar_copy(symbols, timeframe)
        db.close()
    return DownloadReport(venue, db_path, tuple(results), retry.retried)
