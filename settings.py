"""One typed, frozen settings object: defaults < settings file (TOML) < env vars < CLI flags.

Every section is a frozen dataclass. Unknown keys and wrong types are errors that name the key.
Environment variables are ``TRADING_<SECTION>_<KEY>`` (e.g. ``TRADING_EXECUTOR_FEE_BPS=5``);
lists are comma-separated.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from supervisors.errors import SettingsError

__all__ = [
    "BacktestSettings", "ControlSettings", "ExecutorSettings", "FeatureSettings", "FeedSettings", "HttpSettings",
    "IngressSettings", "ModelSettings", "Settings", "SettingsError", "StoreSettings",
    "StrategySettings", "SupervisorSettings", "VenueSettings", "check_endpoint", "check_listen", "is_loopback_host",
    "load_settings",
]

ENV_PREFIX = "TRADING_"
SAMPLE_DATA = Path(__file__).resolve().parent / "data" / "sample_2024_1h.csv.gz"
SIM_DB = "sim.db"  # live --feed sim stores here unless a database is named
CREDENTIAL_ENV = ("TRADING_VENUE_API_KEY", "TRADING_VENUE_SECRET", "TRADING_VENUE_PASSWORD")  # never settings


_HOST = re.compile(r"\*|\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9._-]{0,252})?")


def check_endpoint(text: str) -> str:
    """Return ``text`` if it is a ZeroMQ endpoint this system can bind or connect:
    ``tcp://HOST:PORT`` (HOST an address, a name or ``*``; PORT 1-65535) or ``ipc://PATH``;
    else raise ValueError saying what is expected."""
    expected = f"{text!r} is not an endpoint like tcp://127.0.0.1:5555 (tcp://HOST:PORT or ipc://PATH)"
    scheme, sep, rest = text.partition("://")
    if not sep:
        raise ValueError(expected)
    if scheme == "ipc":
        if not rest:
            raise ValueError(f"{text!r} has no path after ipc://")
        return text
    if scheme != "tcp":
        raise ValueError(f"{text!r}: the scheme must be tcp:// or ipc://, not {scheme}://")
    host, colon, port = rest.rpartition(":")
    if not colon or not _HOST.fullmatch(host):
        raise ValueError(expected)
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{text!r}: the port must be a number from 1 to 65535, not {port!r}")
    return text


def is_loopback_host(host: str) -> bool:
    """Whether a host is reachable only from this machine (``localhost`` or a loopback address)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_listen(text: str) -> tuple[str, int] | None:
    """Return ``(host, port)`` for an HTTP address ``HOST:PORT`` (HOST an address or a name, an IPv6
    address in brackets; PORT 1-65535), or None for ``off``; else raise ValueError saying what is expected."""
    if text.strip().lower() == "off":
        return None
    expected = f"{text!r} is not HOST:PORT like 127.0.0.1:8780 (or off)"
    host, colon, port = text.rpartition(":")
    if not colon or not host or host == "*" or not _HOST.fullmatch(host):
        raise ValueError(expected)
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{text!r}: the port must be a number from 1 to 65535, not {port!r}")
    return host.strip("[]"), int(port)


@dataclass(frozen=True, slots=True)
class IngressSettings:
    """The ZeroMQ SUB socket that external feeds connect their PUB sockets to."""

    endpoint: str = "tcp://127.0.0.1:5555"
    batch_max: int = 1000          # most messages drained into one batch
    rcvhwm: int = 250_000          # receive high-water mark: messages queued per connected publisher
    max_in_flight: int = 20_000    # over this many ticks accepted and not yet processed, stop reading the socket
    max_store_backlog: int = 64    # over this many writes waiting for the store, stop reading the socket
    poll_ms: int = 5               # idle poll timeout; bounds how long a message to the feed waits
    cryptofeed: str = ""           # a second SUB endpoint for cryptofeed's ZeroMQ backends; empty = off
    max_future_s: float = 5.0      # a tick or bar stamped later than the feed's clock plus this is rejected
    max_age_s: float = 315_360_000.0  # ... and one stamped earlier than the clock less this (10 years); 0 = off
    max_timeframes: int = 8        # distinct bar timeframes a peer may send per symbol
    max_sources: int = 1024        # distinct src values whose seq is followed (least recently seen forgotten)
    insecure: bool = False         # allow an off-loopback ingress without CURVE (live --insecure-ingress)
    max_publishers: int = 16       # connections each ingress socket holds at once; more are refused


@dataclass(frozen=True, slots=True)
class FeedSettings:
    """What to observe, and the built-in simulator used by ``live --feed sim``."""

    source: str = "sim"            # sim | external | venue (tickers of venue.id through ccxt)
    symbols: tuple[str, ...] = ("BTCUSD", "ETHUSD", "SOLUSD")  # the watch list; "*" = every symbol
    max_symbols: int = 1000        # most symbols watched (or, with "*", distinct symbols accepted)
    sim_rate: float = 3000.0       # ticks per second over all symbols
    sim_speed: float = 600.0       # simulated seconds per wall-clock second
    sim_seed: int = 7
    stale_s: float = 30.0          # a watched symbol with no data for this long is stale; 0 = never


@dataclass(frozen=True, slots=True)
class BufferSettings:
    """Tick-to-bar aggregation."""

    timeframe: str = "1m"          # the base timeframe, built from ticks
    timeframes: tuple[str, ...] = ("1m", "5m", "15m", "1h", "1d")  # those longer than the base are built from it
    lookback: int = 500            # bars kept per symbol for warm-up
    fill_empty: bool = True        # quiet intervals emit empty bars at the previous close
    max_fill: int = 1440           # most empty bars emitted for one gap
    grace_s: float = 2.0           # live: a bar no tick closed closes this long after its end (market clock)
    warmup: bool = True            # live: start from the store's last bars


@dataclass(frozen=True, slots=True)
class FeatureSettings:
    """Indicators computed per symbol and timeframe, as ``name:period``."""

    indicators: tuple[str, ...] = ()  # extra indicators; those the strategies and the model read are added


@dataclass(frozen=True, slots=True)
class ModelSettings:
    """The model predicting P(next close > this close); it runs only when a strategy reads it."""

    enabled: bool = True           # false: never run the model (a strategy that needs it is then an error)
    kind: str = "logistic"         # logistic (online, built in) | plugin (model.plugin)
    plugin: str = ""               # "package.module:attr": a class, an object with predict_proba, or a callable
    features: tuple[str, ...] = ("ret_1", "close/sma_10", "sma_10/sma_30", "ema_12/ema_26")
    learning_rate: float = 0.05
    l2: float = 1e-4
    checkpoint_bars: int = 100     # store each series' logistic state every this many bars and on drain; 0 = never


@dataclass(frozen=True, slots=True)
class StrategySettings:
    """The strategy for every symbol, and optionally a file giving some symbols their own."""

    name: str = "sma_cross"        # sma_cross | macd_rsi | rsi_trend | bollinger_breakout | sr_breakout | ma_model
    params: tuple[str, ...] = ()   # "key=value" for that strategy; unlisted parameters keep their defaults
    file: str = ""                 # TOML file of [[strategy]] tables (name, symbols, params)
    timeframes: tuple[str, ...] = ()  # timeframes traded; empty = the bars not derived by the buffer


@dataclass(frozen=True, slots=True)
class ExecutorSettings:
    """Paper broker: cash, costs, sizing."""

    cash: float = 100_000.0
    fee_bps: float = 10.0          # 0.1% of traded value per side
    fee_fixed: float = 0.0         # plus this much per fill
    slippage_bps: float = 0.0      # market and stop fills move this much against the trader
    allocation: float = 0.0        # fraction of equity per position; 0 = 1 / number of symbols
    allow_short: bool = False      # a sell signal while flat opens a short
    latency_bars: int = 0          # orders fill this many bars later than the next bar
    latency_ms: float = 0.0        # orders cannot fill until this long after the decision
    max_position: float = 0.0      # risk: largest absolute quantity per symbol (0 = off)
    max_notional: float = 0.0      # risk: largest absolute quantity x price per symbol (0 = off)
    max_open_orders: int = 0       # risk: most open orders at once (0 = off)
    max_orders_per_minute: int = 0  # risk: most orders within a minute (0 = off)
    daily_loss_pct: float = 0.0    # risk: kill switch at this fall from the day's starting equity (0 = off)


@dataclass(frozen=True, slots=True)
class StoreSettings:
    """The sqlite database written by the store actor."""

    db: str = "trading.db"         # live on the simulator uses sim.db unless this is set
    commit_ms: int = 200           # longest a record waits before it is committed
    ticks: bool = False            # also store every tick the buffer took
    lock_patience_s: float = 30.0  # longest writes wait for another process's lock before trading stops


@dataclass(frozen=True, slots=True)
class ControlSettings:
    """Control (REP) and events (PUB) sockets."""

    endpoint: str = "tcp://127.0.0.1:5556"
    events: str = "tcp://127.0.0.1:5557"
    allow_fault_injection: bool = False
    summary_s: float = 5.0         # seconds between live summary log lines
    curve_secret_key: str = ""     # server .key_secret file; set (with curve_clients) to require CURVE
    curve_clients: str = ""        # directory of authorised client public keys (*.key)


@dataclass(frozen=True, slots=True)
class HttpSettings:
    """The dashboard and the Prometheus metrics ``live`` serves over HTTP."""

    listen: str = "127.0.0.1:8780"  # HOST:PORT to serve on (live --http); "off" = no HTTP server
    token: str = ""                # when set, every request must carry it; required off loopback (TRADING_HTTP_TOKEN)
    push_s: float = 1.0            # seconds between the dashboard's updates


@dataclass(frozen=True, slots=True)
class SupervisorSettings:
    """Supervision of the actors."""

    stop_timeout_s: float = 5.0       # each child gets this long to stop, then is abandoned
    max_restarts: int = 10            # restart intensity per supervisor: at most this many...
    within_s: float = 60.0            # ...within this many seconds, else give up and escalate
    backoff_min_s: float = 0.01       # delay before a restart after a failure with no progress
    backoff_max_s: float = 2.0        # cap of the exponential backoff
    jitter: float = 0.2               # relative random spread of the backoff
    heartbeat_s: float = 1.0          # how often supervisors ping their children
    heartbeat_timeout_s: float = 5.0  # no answer for this long: reported slow, blocked or busy in health
    stuck_timeout_s: float = 60.0     # no answer, no progress and not blocked for this long: stuck, the system stops


@dataclass(frozen=True, slots=True)
class VenueSettings:
    """Where live orders go: the paper broker, or an exchange through ccxt. Credentials are never
    settings: they come from TRADING_VENUE_API_KEY / _SECRET / _PASSWORD or the file ``key_file``."""

    id: str = "paper"              # paper | a ccxt exchange id (binance, kraken, okx, ...)
    url: str = ""                  # rebase every endpoint of the venue onto this base URL; empty = its own
    sandbox: bool = False          # the exchange's testnet (ccxt sandbox mode)
    key_file: str = ""             # TOML file with api_key, secret (and password); must be mode 600
    poll_s: float = 2.0            # order updates and fills polled this often (when not streamed)
    order_stream: bool = True      # order updates and fills from the venue's websocket where ccxt.pro has one
    reconcile_s: float = 60.0      # balances and open orders reconciled this often (and at start)
    timeout_s: float = 10.0        # a request with no reply after this long fails (and is retried)
    retries: int = 3               # repeats of a request that met a network error, a 5xx or a rate limit
    backoff_s: float = 0.5         # first wait before a repeat, doubled each time, with jitter
    breaker_failures: int = 5      # consecutive failed requests that open the circuit breaker
    lookback_s: float = 86_400.0   # how far back fills are looked for at start
    # market data from the venue (live --feed venue): polled every poll_s, requests time out after
    # timeout_s, reconnects wait backoff_s doubled each time (with jitter) up to feed_backoff_max_s
    feed_websocket: bool = True    # try the venue's websocket (ccxt.pro watch_tickers) before REST polling
    feed_backoff_max_s: float = 10.0  # longest wait between reconnection attempts
    paper: bool = False            # orders stay with the paper broker even with an exchange named (live --paper)

    @property
    def trades(self) -> bool:
        """Whether orders go to the exchange: one is named and ``paper`` is off."""
        return self.id != "paper" and not self.paper


@dataclass(frozen=True, slots=True)
class BacktestSettings:
    """Replay of stored or file bars."""

    chunk: int = 10_000            # bars per replayed batch (one batch per message)
    window: int = 4                # at most about this many batches in the pipeline at once (flow control)


@dataclass(frozen=True, slots=True)
class Settings:
    """Every setting of the system, one sub-object per component."""

    ingress: IngressSettings = field(default_factory=IngressSettings)
    feed: FeedSettings = field(default_factory=FeedSettings)
    buffer: BufferSettings = field(default_factory=BufferSettings)
    feature: FeatureSettings = field(default_factory=FeatureSettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    strategy: StrategySettings = field(default_factory=StrategySettings)
    executor: ExecutorSettings = field(default_factory=ExecutorSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    control: ControlSettings = field(default_factory=ControlSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    supervisor: SupervisorSettings = field(default_factory=SupervisorSettings)
    backtest: BacktestSettings = field(default_factory=BacktestSettings)
    venue: VenueSettings = field(default_factory=VenueSettings)

    def with_values(self, values: Mapping[str, Any]) -> Settings:
        """Return a copy with ``{"section.key": value}`` applied (values are validated)."""
        result = _apply(self, values, "override")
        _validate(result)
        return result


def load_settings(
    path: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build the settings: defaults, then the TOML file, then env vars, then ``overrides``."""
    settings = Settings()
    if path is not None:
        try:
            with open(path, "rb") as handle:
                document = tomllib.load(handle)
        except OSError as exc:
            raise SettingsError(f"cannot read settings file {path}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"settings file {path} is not valid TOML: {exc}") from exc
        flat: dict[str, Any] = {}
        for section, values in document.items():
            if not isinstance(values, dict):
                raise SettingsError(f"{path}: '{section}' must be a [section] table")
            for key, value in values.items():
                flat[f"{section}.{key}"] = value
        settings = _apply(settings, flat, str(path))
    env = os.environ if env is None else env
    from_env = {}
    for name, raw in env.items():
        if name.startswith(ENV_PREFIX) and name not in CREDENTIAL_ENV:
            section, _, key = name[len(ENV_PREFIX):].lower().partition("_")
            from_env[f"{section}.{key}"] = raw
    settings = _apply(settings, from_env, "environment")
    settings = _apply(settings, overrides or {}, "command line")
    _validate(settings)  # once, on the merged result: a later layer may complete an earlier one
    return settings


def _apply(settings: Settings, values: Mapping[str, Any], origin: str) -> Settings:
    sections = {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)}
    changes: dict[str, dict[str, Any]] = {}
    for dotted, value in values.items():
        section, _, key = dotted.partition(".")
        if section not in sections:
            raise SettingsError(f"unknown settings section '{section}' (from {origin}); valid: {', '.join(sections)}")
        hints = typing.get_type_hints(type(sections[section]))
        if key not in hints:
            raise SettingsError(
                f"unknown settings key '{dotted}' (from {origin}); valid in [{section}]: {', '.join(hints)}"
            )
        changes.setdefault(section, {})[key] = _coerce(value, hints[key], dotted, origin)
    replaced = {name: dataclasses.replace(sections[name], **kv) for name, kv in changes.items()}
    return dataclasses.replace(settings, **replaced)


def _coerce(value: Any, hint: Any, key: str, origin: str) -> Any:
    def fail(expected: str) -> SettingsError:
        return SettingsError(f"settings key '{key}' (from {origin}) must be {expected}, got {value!r}")

    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return value.lower() in ("1", "true", "yes", "on")
        raise fail("true or false")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        raise fail("an integer")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise fail("a number")
    if hint is str:
        if isinstance(value, str):
            return value
        raise fail("a string")
    if typing.get_origin(hint) is tuple:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise fail("a list of strings")
    raise fail(str(hint))  # a field type this loader does not know is a programming error


def _validate(s: Settings) -> None:
    from messages.market import SYMBOL_PATTERN, timeframe_ns

    def check(ok: bool, key: str, rule: str) -> None:
        if not ok:
            raise SettingsError(f"settings key '{key}' {rule}")

    check(s.ingress.batch_max >= 1, "ingress.batch_max", "must be at least 1")
    check(s.ingress.rcvhwm >= 1, "ingress.rcvhwm", "must be at least 1 (0 would mean no bound)")
    check(s.ingress.poll_ms >= 1, "ingress.poll_ms", "must be at least 1")
    check(0 <= s.ingress.max_future_s <= 86_400, "ingress.max_future_s", "must be in [0, 86400]")
    check(s.ingress.max_age_s >= 0, "ingress.max_age_s", "must be >= 0 (0 = off)")
    check(s.ingress.max_timeframes >= 1, "ingress.max_timeframes", "must be at least 1")
    check(s.ingress.max_sources >= 1, "ingress.max_sources", "must be at least 1")
    check(1 <= s.ingress.max_publishers <= 1024, "ingress.max_publishers", "must be in [1, 1024]")
    check(s.feed.max_symbols >= 1, "feed.max_symbols", "must be at least 1")
    for key, endpoint in (("ingress.endpoint", s.ingress.endpoint), ("ingress.cryptofeed", s.ingress.cryptofeed),
                          ("control.endpoint", s.control.endpoint), ("control.events", s.control.events)):
        if endpoint or key != "ingress.cryptofeed":  # an empty cryptofeed endpoint switches it off
            try:
                check_endpoint(endpoint)
            except ValueError as exc:
                raise SettingsError(f"settings key '{key}': {exc}") from None
    check(s.ingress.max_in_flight >= 2, "ingress.max_in_flight", "must be at least 2")
    check(s.ingress.max_store_backlog >= 2, "ingress.max_store_backlog", "must be at least 2")
    check(s.feed.source in ("sim", "external", "venue"), "feed.source", "must be 'sim', 'external' or 'venue'")
    check(s.feed.sim_rate > 0, "feed.sim_rate", "must be > 0")
    check(s.feed.sim_speed > 0, "feed.sim_speed", "must be > 0")
    check(s.feed.stale_s >= 0, "feed.stale_s", "must be >= 0")
    for key, timeframes in (("buffer.timeframe", (s.buffer.timeframe,)), ("buffer.timeframes", s.buffer.timeframes),
                            ("strategy.timeframes", s.strategy.timeframes)):
        for timeframe in timeframes:
            try:
                timeframe_ns(timeframe)
            except ValueError as exc:
                raise SettingsError(f"settings key '{key}': {exc}") from None
    base = timeframe_ns(s.buffer.timeframe)
    for timeframe in s.buffer.timeframes:  # those not longer than the base are not derived from it
        check(timeframe_ns(timeframe) <= base or timeframe_ns(timeframe) % base == 0, "buffer.timeframes",
              f"has {timeframe!r}, which is not a whole multiple of buffer.timeframe {s.buffer.timeframe!r}")
    check(s.buffer.grace_s >= 0, "buffer.grace_s", "must be >= 0")
    check(s.buffer.lookback >= 1, "buffer.lookback", "must be at least 1")
    check(s.buffer.max_fill >= 0, "buffer.max_fill", "must be >= 0")
    check(s.model.learning_rate > 0, "model.learning_rate", "must be > 0")
    check(s.model.l2 >= 0, "model.l2", "must be >= 0")
    check(s.model.checkpoint_bars >= 0, "model.checkpoint_bars", "must be >= 0")
    _validate_signals(s)
    check(s.executor.cash > 0, "executor.cash", "must be > 0")
    check(s.executor.fee_bps >= 0, "executor.fee_bps", "must be >= 0")
    check(s.executor.slippage_bps >= 0, "executor.slippage_bps", "must be >= 0")
    check(0.0 <= s.executor.allocation <= 1.0, "executor.allocation", "must be in [0, 1]")
    for key in ("fee_fixed", "latency_ms", "max_position", "max_notional", "daily_loss_pct"):
        value = getattr(s.executor, key)
        check(value >= 0 and value == value, f"executor.{key}", "must be >= 0")
    for key in ("latency_bars", "max_open_orders", "max_orders_per_minute"):
        check(getattr(s.executor, key) >= 0, f"executor.{key}", "must be >= 0")
    check(s.executor.daily_loss_pct < 100, "executor.daily_loss_pct", "must be below 100")
    check(s.store.commit_ms >= 1, "store.commit_ms", "must be at least 1")
    check(s.store.lock_patience_s > 0 and s.store.lock_patience_s == s.store.lock_patience_s,
          "store.lock_patience_s", "must be > 0")
    check(s.control.summary_s > 0, "control.summary_s", "must be > 0")
    try:
        check_listen(s.http.listen)
    except ValueError as exc:
        raise SettingsError(f"settings key 'http.listen': {exc}") from None
    check(not s.http.token or len(s.http.token) >= 16, "http.token",
          "must be at least 16 characters (make one with: python -c \"import secrets; print(secrets.token_urlsafe(24))\")")
    check(s.http.token.isprintable() and " " not in s.http.token, "http.token", "must be printable, without spaces")
    check(0.05 <= s.http.push_s <= 60, "http.push_s", "must be in [0.05, 60]")
    check(s.supervisor.stop_timeout_s > 0, "supervisor.stop_timeout_s", "must be > 0")
    check(s.supervisor.max_restarts >= 0, "supervisor.max_restarts", "must be >= 0")
    check(s.supervisor.within_s > 0, "supervisor.within_s", "must be > 0")
    check(0 <= s.supervisor.backoff_min_s <= s.supervisor.backoff_max_s, "supervisor.backoff_min_s",
          "must be >= 0 and <= supervisor.backoff_max_s")
    check(0 <= s.supervisor.jitter < 1, "supervisor.jitter", "must be in [0, 1)")
    check(s.supervisor.heartbeat_s > 0, "supervisor.heartbeat_s", "must be > 0")
    check(s.supervisor.heartbeat_timeout_s > 0, "supervisor.heartbeat_timeout_s", "must be > 0")
    check(s.supervisor.stuck_timeout_s >= s.supervisor.heartbeat_timeout_s, "supervisor.stuck_timeout_s",
          f"must be >= supervisor.heartbeat_timeout_s ({s.supervisor.heartbeat_timeout_s:g})")
    _validate_venue(s)
    check(s.backtest.chunk >= 1, "backtest.chunk", "must be at least 1")
    check(s.backtest.window >= 1, "backtest.window", "must be at least 1")
    from actors.feature.indicators import output_names, spec_for_column

    for spec in s.feature.indicators:
        try:
            output_names(spec)
        except ValueError as exc:
            raise SettingsError(f"settings key 'feature.indicators': {exc}") from None
    for expr in s.model.features:
        for name in expr.split("/"):
            if name != "close":
                try:
                    spec_for_column(name)
                except ValueError as exc:
                    raise SettingsError(f"settings key 'model.features': {exc}") from None
    check(bool(s.feed.symbols), "feed.symbols", "must not be empty; \"*\" watches every symbol")
    for symbol in s.feed.symbols:
        check(symbol == "*" or SYMBOL_PATTERN.fullmatch(symbol) is not None, "feed.symbols",
              f"has a bad symbol {symbol!r}; a symbol is 1-32 of letters, digits and ._:/- (or * for every symbol)")
    check(len(set(s.feed.symbols)) <= s.feed.max_symbols, "feed.symbols",
          f"has {len(set(s.feed.symbols)):,} symbols, over feed.max_symbols ({s.feed.max_symbols:,})")
    check(s.feed.source != "sim" or "*" not in s.feed.symbols, "feed.symbols",
          "cannot be * with feed.source 'sim': the simulator needs the symbols to simulate")


def _validate_venue(s: Settings) -> None:
    """The venue section: a known ccxt id, a base URL, positive intervals; its market data for
    ``feed.source = "venue"``."""
    v = s.venue
    if v.id != "paper":
        import ccxt

        if v.id not in ccxt.exchanges:
            raise SettingsError(f"settings key 'venue.id' must be paper or a ccxt exchange id (e.g. binance, kraken), "
                                f"got {v.id!r}")
    if v.url:
        from actors.store.exchange import check_venue_url
        try:
            check_venue_url(v.url)
        except ValueError as exc:
            raise SettingsError(f"settings key 'venue.url': {exc}") from None
    for key in ("poll_s", "reconcile_s", "timeout_s", "backoff_s", "lookback_s"):
        value = getattr(v, key)
        if not (value > 0 and value == value):
            raise SettingsError(f"settings key 'venue.{key}' must be > 0")
    if v.retries < 0:
        raise SettingsError("settings key 'venue.retries' must be >= 0")
    if v.breaker_failures < 1:
        raise SettingsError("settings key 'venue.breaker_failures' must be at least 1")
    if not v.feed_backoff_max_s >= v.backoff_s:
        raise SettingsError(f"settings key 'venue.feed_backoff_max_s' must be >= venue.backoff_s ({v.backoff_s:g})")
    if s.feed.source == "venue":
        if v.id == "paper":
            raise SettingsError("settings key 'venue.id' must name the exchange whose market data feed.source 'venue' "
                                "streams (live --feed venue --venue ID, e.g. binance)")
        if "*" in s.feed.symbols:
            raise SettingsError("settings key 'feed.symbols' cannot be * with feed.source 'venue': name the venue's "
                                "symbols to stream, e.g. BTC/USDT")


def _validate_signals(s: Settings) -> None:
    """The strategy plan and the model it may need."""
    from actors.model.plugin import PluginError, load_plugin
    from actors.strategy.registry import StrategyError, strategy_plan

    try:
        plan = strategy_plan(s.strategy)
    except StrategyError as exc:
        raise SettingsError(f"settings key '{exc.key}': {exc}") from None
    if plan.needs_prediction and not s.model.enabled:
        users = ", ".join(spec.name for spec in plan.specs if spec.needs_prediction)
        raise SettingsError(f"settings key 'model.enabled' must be true: {users} reads the model's predictions")
    if s.model.kind not in ("logistic", "plugin"):
        raise SettingsError(f"settings key 'model.kind' must be 'logistic' or 'plugin', got {s.model.kind!r}")
    if s.model.kind == "plugin":
        try:
            load_plugin(s.model.plugin)
        except PluginError as exc:
            raise SettingsError(f"settings key 'model.plugin': {exc}") from None
