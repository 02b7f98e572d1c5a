"""Generate the synthetic sample dataset ``data/sample_2024_1h.csv.gz``.

The output is SYNTHETIC hourly OHLCV data for calendar year 2024 (UTC) for
three made-up instruments named after crypto pairs (``BTCUSD``, ``ETHUSD``,
``SOLUSD``). It is *not* real market data; it exists so that tests, examples
and benchmarks have a small, deterministic, committed input.

Model
-----
* Hourly log returns are ``mu + sigma * z`` (minus the Ito term), where ``z``
  is a unit-variance Student-t shock (5 degrees of freedom, fat tails). The
  shocks are independent from hour to hour, so returns are close to serially
  uncorrelated, as in a liquid market; only their *size* is persistent.
* ``sigma`` follows a GARCH(1,1) process (volatility clustering) scaled by
  each symbol's long-run hourly volatility and by the market regime.
* All symbols share one market regime (quiet, bull or bear) of random length
  (2-7 weeks). A bull or bear regime has a constant, small drift that moves
  the log price by 0.05-0.25 (times a per-symbol factor of 1.0-1.25, so
  roughly 5-30 % in price) over the whole regime; quiet regimes have no drift and lower volatility, bear
  regimes higher volatility. A weak pull towards each symbol's starting
  price, and a bias of the next trend's direction against the year-to-date
  move, keep the yearly range plausible.
* Shocks load on a common market factor, so hourly returns are correlated
  across symbols (about 0.4).
* Inside each hour the price follows a Brownian bridge from the open to the
  close (30 sub-steps); high and low are that path's extremes, so
  ``low <= min(open, close)`` and ``high >= max(open, close)`` hold by
  construction, and the open of each bar equals the previous close.
* Volumes (in units of the base asset) are lognormal, larger when
  volatility is high and on bars with bigger moves, with a mild time-of-day
  seasonality.

Everything is driven by ``numpy.random.default_rng(2024)``; the file is
written with fixed number formatting and a gzip header with ``mtime=0`` so
that running the script twice produces byte-identical output (for a given
numpy version and platform).

Usage::

    python data/make_sample.py
"""

from __future__ import annotations

import gzip
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SEED: int = 2024
SUBSTEPS: int = 30  # intrabar simulation steps per hour
START: np.datetime64 = np.datetime64("2024-01-01T00:00:00", "s")
END: np.datetime64 = np.datetime64("2025-01-01T00:00:00", "s")
N_HOURS: int = int((END - START) // np.timedelta64(1, "h"))  # 8784 (leap year)
MARKET_CORR: float = 0.65  # loading of each symbol's shocks on the common factor
OUTPUT: Path = Path(__file__).resolve().parent / "sample_2024_1h.csv.gz"

# Regime ids and per-regime parameters.
QUIET, BULL, BEAR = 0, 1, 2
TREND_SIGN: dict[int, float] = {QUIET: 0.0, BULL: 1.0, BEAR: -1.0}
VOL_MULT: dict[int, float] = {QUIET: 0.8, BULL: 1.0, BEAR: 1.2}
REGIME_HOURS: tuple[int, int] = (14 * 24, 49 * 24)  # regime length: 2-7 weeks
# Total log-price move of a trending regime over its whole length (before the
# per-symbol ``trend_beta``), spread evenly over the regime's hours.
TREND_MOVE: tuple[float, float] = (0.05, 0.25)
REGIME_PULLBACK: float = 3.0  # bias of the next trend's direction towards start
LONG_REVERSION: float = 0.0003  # per-hour pull of log price to the start price
# GARCH(1,1) on the standardised variance (long-run mean 1).
GARCH_ALPHA: float = 0.06
GARCH_BETA: float = 0.91
GARCH_CAP: float = 9.0  # cap on the variance multiplier (vol at most 3x base)
T_DOF: float = 5.0  # degrees of freedom of the Student-t shocks (fat tails)


@dataclass(frozen=True)
class SymbolSpec:
    """Static parameters of one synthetic instrument."""

    symbol: str
    start_price: float
    hourly_vol: float  # long-run standard deviation of hourly log returns
    trend_beta: float  # scaling of the regime's trend move for this symbol
    base_volume: float  # typical hourly volume, base-asset units
    price_decimals: int
    volume_decimals: int


SYMBOLS: tuple[SymbolSpec, ...] = (
    SymbolSpec("BTCUSD", 42000.0, 0.006, 1.0, 450.0, 2, 4),
    SymbolSpec("ETHUSD", 2300.0, 0.008, 1.1, 6500.0, 2, 3),
    SymbolSpec("SOLUSD", 100.0, 0.011, 1.25, 90000.0, 3, 2),
)


def next_regime(rng: np.random.Generator, current: int, deviation: float) -> int:
    """Draw the regime that follows ``current``.

    The next regime is always different from the current one. Between the two
    candidates, trending regimes are weighted so that prices drift back
    towards their starting level (``deviation`` is the mean log-price
    deviation of all symbols from their start), which keeps the year's price
    range plausible.
    """
    weights = {
        QUIET: 1.0,
        BULL: float(np.exp(-REGIME_PULLBACK * deviation)),
        BEAR: float(np.exp(REGIME_PULLBACK * deviation)),
    }
    candidates = [r for r in (QUIET, BULL, BEAR) if r != current]
    w = np.array([weights[r] for r in candidates])
    return candidates[int(rng.choice(len(candidates), p=w / w.sum()))]


def standard_t(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Student-t draws rescaled to unit variance."""
    return rng.standard_t(T_DOF, shape) * np.sqrt((T_DOF - 2.0) / T_DOF)


def simulate_log_paths(
    rng: np.random.Generator, specs: tuple[SymbolSpec, ...], n_hours: int
) -> tuple[np.ndarray, np.ndarray]:
    """Simulate regime-switching GARCH log-price paths with intrabar detail.

    Returns ``(paths, sigmas)``. ``paths`` has shape
    ``(n_symbols, n_hours, SUBSTEPS + 1)``: ``[:, h, 0]`` is the log open of
    hour ``h`` and ``[:, h, -1]`` its log close (equal to the log open of hour
    ``h + 1``). ``sigmas`` has shape ``(n_symbols, n_hours)`` and holds the
    conditional hourly volatility used for each bar.

    Hourly log returns are ``mu + sigma * z`` with ``z`` a unit-variance
    Student-t shock (common market factor plus idiosyncratic part), so they
    are serially uncorrelated; only their size is persistent (GARCH). The
    path inside each hour is a Brownian bridge from the open to the close.
    """
    n_sym = len(specs)
    vol = np.array([s.hourly_vol for s in specs])
    beta = np.array([s.trend_beta for s in specs])
    log_p0 = np.log(np.array([s.start_price for s in specs]))
    log_p = log_p0.copy()

    # Pre-draw all shocks: hourly close-to-close shocks (common factor +
    # idiosyncratic, Student-t) and Gaussian intrabar increments.
    common = standard_t(rng, (n_hours,))
    idio = standard_t(rng, (n_sym, n_hours))
    shocks = MARKET_CORR * common[None, :] + np.sqrt(1.0 - MARKET_CORR**2) * idio
    intrabar = rng.standard_normal((n_sym, n_hours, SUBSTEPS))

    paths = np.empty((n_sym, n_hours, SUBSTEPS + 1))
    sigmas = np.empty((n_sym, n_hours))
    frac = np.arange(1, SUBSTEPS + 1) / SUBSTEPS  # bridge time grid
    variance = np.ones(n_sym)  # GARCH variance multiplier, long-run mean 1
    regime = QUIET
    remaining = 0
    trend = np.zeros(n_sym)  # per-hour log drift of the current regime
    omega = 1.0 - GARCH_ALPHA - GARCH_BETA
    for h in range(n_hours):
        if remaining == 0:
            if h > 0:
                regime = next_regime(rng, regime, float(np.mean(log_p - log_p0)))
            remaining = int(rng.integers(REGIME_HOURS[0], REGIME_HOURS[1] + 1))
            move = float(rng.uniform(*TREND_MOVE))
            trend = TREND_SIGN[regime] * move * beta / remaining
        remaining -= 1

        sigma = vol * VOL_MULT[regime] * np.sqrt(variance)
        # Constant regime trend plus a weak pull towards the starting price.
        mu = trend - LONG_REVERSION * (log_p - log_p0)
        ret = mu - 0.5 * sigma**2 + sigma * shocks[:, h]

        # Brownian bridge from the open (0) to the close (ret) inside the hour.
        step_sd = sigma * np.sqrt(1.0 / SUBSTEPS)
        walk = np.cumsum(step_sd[:, None] * intrabar[:, h, :], axis=1)
        bridge = walk + frac[None, :] * (ret - walk[:, -1])[:, None]
        paths[:, h, 0] = log_p
        paths[:, h, 1:] = log_p[:, None] + bridge
        paths[:, h, -1] = log_p + ret
        sigmas[:, h] = sigma
        log_p = paths[:, h, -1].copy()

        # GARCH(1,1): next hour's variance reacts to this hour's squared shock.
        variance = omega + (GARCH_ALPHA * shocks[:, h] ** 2 + GARCH_BETA) * variance
        variance = np.minimum(variance, GARCH_CAP)
    return paths, sigmas


def build_bars(
    rng: np.random.Generator,
    paths: np.ndarray,
    sigmas: np.ndarray,
    specs: tuple[SymbolSpec, ...],
) -> dict[str, dict[str, np.ndarray]]:
    """Turn intrabar paths into rounded OHLCV arrays per symbol."""
    n_hours = paths.shape[1]
    hour_of_day = np.arange(n_hours) % 24
    # Busier during the European/US overlap (peak around 15:00 UTC).
    seasonal = 0.25 * np.cos(2.0 * np.pi * (hour_of_day - 15) / 24.0)
    vol_noise = rng.standard_normal((len(specs), n_hours))

    bars: dict[str, dict[str, np.ndarray]] = {}
    for i, spec in enumerate(specs):
        prices = np.exp(paths[i])
        d = spec.price_decimals
        open_ = np.round(prices[:, 0], d)
        close = np.round(prices[:, -1], d)
        high = np.maximum(np.round(prices.max(axis=1), d), np.maximum(open_, close))
        low = np.minimum(np.round(prices.min(axis=1), d), np.minimum(open_, close))

        # Volume rises with the volatility level and with the bar's own move.
        abs_move = np.abs(paths[i][:, -1] - paths[i][:, 0]) / sigmas[i]
        log_volume = (
            np.log(spec.base_volume)
            + 0.6 * np.log(sigmas[i] / spec.hourly_vol)
            + 0.3 * (abs_move - 0.8)
            + seasonal
            + 0.4 * vol_noise[i]
        )
        volume = np.round(np.exp(log_volume), spec.volume_decimals)
        volume = np.maximum(volume, 10.0 ** (-spec.volume_decimals))

        bars[spec.symbol] = {
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": volume,
        }
    return bars


def check_bars(bars: dict[str, dict[str, np.ndarray]]) -> None:
    """Raise ``ValueError`` if any OHLCV invariant is violated."""
    for symbol, b in bars.items():
        if not all(np.isfinite(a).all() and (a > 0).all() for a in b.values()):
            raise ValueError(f"{symbol}: non-finite or non-positive values")
        body_low = np.minimum(b["open"], b["close"])
        body_high = np.maximum(b["open"], b["close"])
        if not ((b["low"] <= body_low).all() and (b["high"] >= body_high).all()):
            raise ValueError(f"{symbol}: high/low do not bracket open/close")


def render_csv(
    bars: dict[str, dict[str, np.ndarray]], specs: tuple[SymbolSpec, ...]
) -> str:
    """Render bars as CSV text, rows sorted by ts, then symbol.

    ``ts`` is the bar's close time: bar ``h`` covers
    ``[START + h hours, START + (h + 1) hours)`` and is stamped with the end.
    """
    n_hours = next(iter(bars.values()))["close"].shape[0]
    close_times = START + np.arange(1, n_hours + 1) * np.timedelta64(1, "h")
    timestamps = [s + "Z" for s in np.datetime_as_string(close_times, unit="s")]

    per_symbol: list[tuple[str, list[tuple[float, ...]]]] = []
    for spec in sorted(specs, key=lambda s: s.symbol):
        b = bars[spec.symbol]
        pf = f"%.{spec.price_decimals}f"
        row_fmt = f"{spec.symbol},%s,{pf},{pf},{pf},{pf},%.{spec.volume_decimals}f\n"
        values = np.column_stack(
            [b["open"], b["high"], b["low"], b["close"], b["volume"]]
        )
        per_symbol.append((row_fmt, [tuple(row) for row in values.tolist()]))

    buf = io.StringIO()
    buf.write("symbol,ts,open,high,low,close,volume\n")
    for t, ts in enumerate(timestamps):
        for row_fmt, rows in per_symbol:
            buf.write(row_fmt % ((ts, *rows[t])))
    return buf.getvalue()


def write_gzip_deterministic(text: str, path: Path) -> None:
    """Write ``text`` as gzip with an empty file name and mtime=0."""
    with path.open("wb") as raw:
        with gzip.GzipFile(
            filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9
        ) as gz:
            gz.write(text.encode("ascii"))


def generate(path: Path = OUTPUT) -> Path:
    """Generate the sample dataset and write it to ``path``."""
    rng = np.random.default_rng(SEED)
    paths, sigmas = simulate_log_paths(rng, SYMBOLS, N_HOURS)
    bars = build_bars(rng, paths, sigmas, SYMBOLS)
    check_bars(bars)
    write_gzip_deterministic(render_csv(bars, SYMBOLS), path)
    return path


if __name__ == "__main__":
    out = generate()
    print(f"wrote {out} ({len(SYMBOLS)} symbols x {N_HOURS} hourly bars)")
