"""Importing history: a bar file, validated, upserted into the database in batches."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from actors.store.writer import Database
from actors.store.history import iso_utc as _iso
from actors.store.history import load_bar_file
from messages.market import BarFrame

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

    def __str__(self) -> str:
        return (f"ingested {self.rows:,} {self.timeframe} bars of {self.symbol} from {self.path} into {self.db} "
                f"({self.new:,} new, {self.rows - self.new:,} replaced): close times {_iso(self.first_ts)} .. "
                f"{_iso(self.last_ts)}")


def ingest_file(path: str | Path, db_path: str | Path, symbol: str, timeframe: str | None = None,
                ts_label: str = "close", progress: bool = True, batch: int = 10_000) -> IngestReport:
    """Validate a bar file of one symbol (every bad row is named, nothing is written if any is
    bad) and upsert it in batches of ``batch`` rows, one transaction each, with a progress bar
    on a terminal, then bring the series' columnar copy up to date. Close times must fall on the
    timeframe's boundaries, like live bars."""
    bars = load_bar_file(path, symbol=symbol, ts_label=ts_label, timeframe=timeframe, aligned=True)
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
        db.refresh_bar_copy([symbol], timeframe)
        after = db.bar_summary(symbol, timeframe)[0]
    finally:
        db.close()
    return IngestReport(str(path), str(db_path), symbol, timeframe, len(bars), after - before,
                        int(bars["ts"].iloc[0]), int(bars["ts"].iloc[-1]))
