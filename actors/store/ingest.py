"""Importing history: a bar file, cleaned (actors/store/cleaning.py), upserted into the database in batches."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from actors.store.cleaning import CleaningReport
from actors.store.history import iso_utc as _iso
from actors.store.history import read_bar_file
from actors.store.catalog import record_source
from actors.store.writer import Database
from messages.market import BarFrame
from supervisors.errors import DataError

__all__ = ["IngestReport", "ingest_file"]


@dataclass(frozen=True, slots=True)
class IngestReport:
    """What an import did."""

    path: str
    db: str
    symbol: str
    timeframe: str
    rows: int
    new: int
    first_ts: int
    last_ts: int
    cleaning: CleaningReport | None = None

    def __str__(self) -> str:
        return (f"{self.cleaning}\n" if self.cleaning is not None else "") + (f"ingested {self.rows:,} {self.timeframe} bars of {self.symbol} from {self.path} into {self.db} "
                f"({self.new:,} new, {self.rows - self.new:,} replaced): close times {_iso(self.first_ts)} .. "
                f"{_iso(self.last_ts)}")


def ingest_file(path: str | Path, db_path: str | Path, symbol: str, timeframe: str | None = None,
                ts_label: str = "close", progress: bool = True, batch: int = 10_000, tz: str | None = None,
                strict: bool = False) -> IngestReport:
    """Clean a bar file of one symbol (``tz``: the exchange's time zone; see
    :func:`actors.store.history.read_bar_file`) and upsert it in batches of ``batch`` rows, one
    transaction each, with a progress bar on a terminal, then bring the series' columnar copy up to
    date. With ``strict``, any artifact is a DataError naming the rows, and nothing is written."""
    bars, reports = read_bar_file(path, symbol=symbol, ts_label=ts_label, timeframe=timeframe, tz=tz, strict=strict)
    if len(reports) > 1:
        raise DataError(f"{path}: bars of {symbol} in several timeframes "
                        f"({', '.join(r.timeframe for r in reports)}); pick one with --timeframe")
    timeframe = str(bars["timeframe"].iloc[0])
    db = Database(db_path)
    try:
        before = db.bar_summary(symbol, timeframe)[0]
        with tqdm(total=len(bars), unit="bar", unit_scale=True, disable=None if progress else True,
                  desc="ingest", leave=False) as bar:
            for start in range(0, len(bars), batch):
                chunk = bars.iloc[start:start + batch]
                db.write_frames([BarFrame.from_columns(symbol, timeframe, **{
                    k: chunk[k].to_numpy() for k in ("ts", "open", "high", "low", "close", "volume")})])
                db.commit()
                bar.update(len(chunk))
        record_source(db, symbol, timeframe, f"file {Path(path).name}")  # what `data list` shows as its source
        db.commit()
        db.refresh_bar_copy([symbol], timeframe)
        after = db.bar_summary(symbol, timeframe)[0]
    finally:
        db.close()
    return IngestReport(str(path), str(db_path), symbol, timeframe, len(bars), after - before,
                        int(bars["ts"].iloc[0]), int(bars["ts"].iloc[-1]), reports[0])
