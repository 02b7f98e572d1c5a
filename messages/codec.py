"""The one msgpack codec: ingress wire protocol v1, control protocol v1, and events.

This is the only module that imports msgpack (and msgspec, which decodes the common tick in C).
Ingress validation never raises: every message decodes to a Tick, a Bar, or a Rejection with a
named reason.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from dataclasses import dataclass
from typing import Annotated, Any

import msgpack
import msgspec

from messages.market import SYMBOL_PATTERN, Bar, Tick, mid_price, timeframe_ns

__all__ = [
    "MAX_CONTROL_BYTES", "MAX_CONTROL_READ", "MAX_INGRESS_READ", "MAX_MESSAGE_BYTES", "REJECTION_REASONS", "Rejection",
    "decode_control", "decode_ingress", "encode_bar", "encode_control", "encode_event", "encode_tick", "fast_tick",
    "packb", "tick_from_map", "unpackb",
]

MAX_MESSAGE_BYTES = 64 * 1024
MAX_CONTROL_BYTES = 64 * 1024
MAX_INGRESS_READ = 1024 * 1024  # the ingress socket's MAXMSGSIZE: a larger frame is never read (the peer is cut off)
MAX_CONTROL_READ = 1024 * 1024  # the control socket's: between the two limits a request is read and refused

REJECTION_REASONS = (
    "bad_frames",        # not exactly two frames
    "bad_topic",         # topic not tick.<SYMBOL> / bar.<SYMBOL> in ASCII
    "oversized",         # payload over 64 KiB, rejected unread
    "not_msgpack",       # payload does not decode
    "not_a_map",         # payload decodes to something other than a map
    "missing_field",     # a required key is absent
    "bad_type",          # a key has the wrong type
    "bad_symbol",        # symbol not 1-32 of letters, digits and ._:/-
    "symbol_mismatch",   # the topic's symbol differs from the map's
    "bad_timestamp",     # ts not positive
    "non_finite",        # NaN or infinity in a number
    "bad_price",         # a price <= 0
    "crossed_quote",     # bid > ask
    "bad_volume",        # volume < 0
    "bad_ohlc",          # high < low, or open/close outside [low, high]
    "bad_timeframe",     # timeframe not like "1m"
    "not_json",          # cryptofeed: the text after the key is not JSON
    "unsupported_channel",  # cryptofeed: a channel other than ticker or trades
    "unobserved_symbol", # valid, but the symbol is not on the watch list
    "future_timestamp",  # ts later than the feed's clock plus ingress.max_future_s
    "old_timestamp",     # ts earlier than the feed's clock less ingress.max_age_s
    "symbol_limit",      # watching every symbol (*), and feed.max_symbols distinct ones are taken
    "timeframe_limit",   # a bar of a new timeframe for a symbol that has ingress.max_timeframes
    "internal_error",    # the feed failed while validating; the batch is also dead-lettered
)

_SYMBOL = SYMBOL_PATTERN
_MAX_TS = 2**63  # timestamps are int64 nanoseconds
_NUMBER = (int, float)


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why an ingress message was refused; ``reason`` is one of REJECTION_REASONS."""

    reason: str
    detail: str = ""


def packb(obj: Any) -> bytes:
    """Encode plain data as msgpack."""
    return msgpack.packb(obj, use_bin_type=True)


def unpackb(data: bytes) -> Any:
    """Decode msgpack into plain data (raises ValueError on anything malformed)."""
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises several unrelated types on garbage
        raise ValueError(f"not msgpack: {exc}") from exc


# ---------------------------------------------------------------------------------------------
# Ingress wire protocol v1


def encode_tick(tick: Tick) -> list[bytes]:
    """Return the two frames of a tick message."""
    body: dict[str, Any] = {"symbol": tick.symbol, "ts": tick.ts, "last": tick.last, "volume": tick.volume}
    if tick.has_quote:
        body["bid"] = tick.bid
        body["ask"] = tick.ask
    if tick.src:
        body["src"] = tick.src
    if tick.seq >= 0:
        body["seq"] = tick.seq
    return [b"tick." + tick.symbol.encode("ascii"), packb(body)]


def encode_bar(bar: Bar) -> list[bytes]:
    """Return the two frames of a bar message."""
    body: dict[str, Any] = {
        "symbol": bar.symbol, "ts": bar.ts, "timeframe": bar.timeframe, "open": bar.open,
        "high": bar.high, "low": bar.low, "close": bar.close, "volume": bar.volume,
    }
    if bar.src:
        body["src"] = bar.src
    if bar.seq >= 0:
        body["seq"] = bar.seq
    return [b"bar." + bar.symbol.encode("ascii"), packb(body)]


_TOPICS: dict[bytes, str] = {}  # tick topics seen valid -> their symbol (at most _TOPICS_MAX; others: slow path)
_TOPICS_MAX = 10_000
_FLOAT_MAX = sys.float_info.max
_Price = Annotated[float, msgspec.Meta(gt=0.0, le=_FLOAT_MAX)]  # NaN and inf fail both bounds


class _WireTick(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """The common tick map, typed and bounded in C by msgspec. A map this refuses (an unknown key,
    a wrong type, a value out of bounds) goes to the full validator, which names the reason."""

    symbol: str
    ts: Annotated[int, msgspec.Meta(gt=0, le=_MAX_TS - 1)]
    bid: _Price | None = None
    ask: _Price | None = None
    last: _Price | None = None
    volume: Annotated[float, msgspec.Meta(ge=0.0, le=_FLOAT_MAX)] | None = None
    src: Annotated[str, msgspec.Meta(max_length=64)] = ""
    seq: Annotated[int, msgspec.Meta(ge=0)] = -1


_decode_wire_tick = msgspec.msgpack.Decoder(_WireTick).decode
_NAN = math.nan
_INF = math.inf
_tuple_new = tuple.__new__  # what Tick(...) calls, without the Python frame of its generated __new__


def decode_ingress(frames: list[bytes]) -> Tick | Bar | Rejection:
    """Decode and validate one ingress message (a list of frames).

    Well-formed ticks take a fast path; anything unusual goes through the full validator,
    which names the reason.
    """
    if len(frames) == 2:
        tick = fast_tick(frames[0], frames[1])
        if tick is not None:
            return tick
    return _decode_slow(frames)


def fast_tick(topic_frame: bytes, payload_frame: bytes) -> Tick | None:
    """The common tick (a topic already seen valid, a map of known keys and sound values), or
    None to let ``decode_ingress`` decide. Never accepts what the full validator refuses."""
    symbol = _TOPICS.get(topic_frame)
    if symbol is None or len(payload_frame) > MAX_MESSAGE_BYTES:
        return None
    try:
        wire = _decode_wire_tick(payload_frame)
    except Exception:  # malformed, mistyped or out of bounds: the full validator names it
        return None
    if wire.symbol != symbol:
        return None
    bid, ask, last, volume = wire.bid, wire.ask, wire.last, wire.volume
    if volume is None:
        volume = 0.0
    if bid is None:
        if ask is not None or last is None:
            return None
        return _tuple_new(Tick, (symbol, wire.ts, _NAN, _NAN, last, volume, wire.src, wire.seq))
    if ask is None or bid > ask:
        return None
    if last is None:
        last = (bid + ask) / 2.0
        if last == _INF:  # the sum of two finite prices overflowed; the halves do not
            last = bid * 0.5 + ask * 0.5
    return _tuple_new(Tick, (symbol, wire.ts, bid, ask, last, volume, wire.src, wire.seq))


def _decode_slow(frames: list[bytes]) -> Tick | Bar | Rejection:
    if len(frames) != 2:
        return Rejection("bad_frames", f"{len(frames)} frames")
    topic_frame, payload_frame = frames
    if len(payload_frame) > MAX_MESSAGE_BYTES:
        return Rejection("oversized", f"{len(payload_frame)} bytes")
    try:
        topic = topic_frame.decode("ascii")
    except UnicodeDecodeError:
        return Rejection("bad_topic", "not ASCII")
    kind, dot, topic_symbol = topic.partition(".")
    if not dot or kind not in ("tick", "bar") or not _SYMBOL.fullmatch(topic_symbol):
        return Rejection("bad_topic", topic[:64])
    try:
        body = msgpack.unpackb(payload_frame, raw=False, strict_map_key=False)
    except Exception:  # garbage of every kind is one reason
        return Rejection("not_msgpack")
    if not isinstance(body, dict):
        return Rejection("not_a_map", type(body).__name__)
    common = _common(body, topic_symbol)
    if isinstance(common, Rejection):
        return common
    symbol, ts, src, seq = common
    if kind == "tick":
        decoded = _tick(body, symbol, ts, src, seq)
        if isinstance(decoded, Tick) and len(_TOPICS) < _TOPICS_MAX:
            _TOPICS[bytes(topic_frame)] = symbol
        return decoded
    return _bar(body, symbol, ts, src, seq)


def tick_from_map(body: dict, topic_symbol: str) -> Tick | Rejection:
    """Validate a tick map (the v1 tick fields) whose symbol must equal ``topic_symbol``."""
    common = _common(body, topic_symbol)
    if isinstance(common, Rejection):
        return common
    return _tick(body, *common)


def _common(body: dict, topic_symbol: str) -> tuple[str, int, str, int] | Rejection:
    symbol = body.get("symbol")
    if symbol is None:
        return Rejection("missing_field", "symbol")
    if not isinstance(symbol, str) or not _SYMBOL.fullmatch(symbol):
        return Rejection("bad_symbol", symbol[:64] if isinstance(symbol, str) else type(symbol).__name__)
    if symbol != topic_symbol:
        return Rejection("symbol_mismatch", f"{topic_symbol} != {symbol}")
    ts = body.get("ts")
    if ts is None:
        return Rejection("missing_field", "ts")
    if type(ts) is not int:
        return Rejection("bad_type", "ts")
    if ts <= 0 or ts >= _MAX_TS:
        return Rejection("bad_timestamp", str(ts)[:32])
    src = body.get("src", "")
    if not isinstance(src, str) or len(src) > 64:
        return Rejection("bad_type", "src")
    seq = body.get("seq", -1)
    if type(seq) is not int or (seq < 0 and "seq" in body):
        return Rejection("bad_type", "seq")
    return symbol, ts, src, seq


def _number(body: dict, key: str) -> float | Rejection | None:
    value = body.get(key)
    if value is None:
        return None
    if type(value) not in _NUMBER:
        return Rejection("bad_type", key)
    value = float(value)
    if not math.isfinite(value):
        return Rejection("non_finite", key)
    return value


def _price(body: dict, key: str) -> float | Rejection | None:
    value = _number(body, key)
    if isinstance(value, float) and value <= 0.0:
        return Rejection("bad_price", key)
    return value


def _volume(body: dict) -> float | Rejection:
    volume = _number(body, "volume")
    if volume is None:
        return 0.0
    if isinstance(volume, float) and volume < 0.0:
        return Rejection("bad_volume", str(volume))
    return volume


def _tick(body: dict, symbol: str, ts: int, src: str, seq: int) -> Tick | Rejection:
    bid = _price(body, "bid")
    ask = _price(body, "ask")
    last = _price(body, "last")
    for value in (bid, ask, last):
        if isinstance(value, Rejection):
            return value
    volume = _volume(body)
    if isinstance(volume, Rejection):
        return volume
    if (bid is None) != (ask is None):
        return Rejection("missing_field", "ask" if ask is None else "bid")
    if bid is None:
        if last is None:
            return Rejection("missing_field", "bid+ask or last")
        return Tick(symbol, ts, math.nan, math.nan, last, volume, src, seq)
    if bid > ask:
        return Rejection("crossed_quote", f"{bid} > {ask}")
    return Tick(symbol, ts, bid, ask, mid_price(bid, ask) if last is None else last, volume, src, seq)


def _bar(body: dict, symbol: str, ts: int, src: str, seq: int) -> Bar | Rejection:
    timeframe = body.get("timeframe")
    if timeframe is None:
        return Rejection("missing_field", "timeframe")
    if not isinstance(timeframe, str):
        return Rejection("bad_type", "timeframe")
    try:
        timeframe_ns(timeframe)
    except ValueError:
        return Rejection("bad_timeframe", timeframe[:16])
    prices = []
    for key in ("open", "high", "low", "close"):
        value = _price(body, key)
        if value is None:
            return Rejection("missing_field", key)
        if isinstance(value, Rejection):
            return value
        prices.append(value)
    open_, high, low, close = prices
    volume = _volume(body)
    if isinstance(volume, Rejection):
        return volume
    if high < low or not (low <= open_ <= high) or not (low <= close <= high):
        return Rejection("bad_ohlc", f"o={open_} h={high} l={low} c={close}")
    return Bar(symbol, ts, timeframe, open_, high, low, close, volume, src, seq)


# ---------------------------------------------------------------------------------------------
# Control protocol v1 and events


def encode_control(message: dict[str, Any]) -> bytes:
    """Encode one control request or reply."""
    return packb(message)


def decode_control(data: bytes) -> dict[str, Any]:
    """Decode one control request; raise ValueError with a readable message if it is not one."""
    if len(data) > MAX_CONTROL_BYTES:
        raise ValueError(f"request too large ({len(data)} bytes, limit {MAX_CONTROL_BYTES})")
    try:
        message = msgpack.unpackb(data, raw=False, strict_map_key=False)
    except Exception as exc:
        raise ValueError("request is not msgpack") from exc
    if not isinstance(message, dict):
        raise ValueError("request is not a msgpack map")
    if not isinstance(message.get("cmd"), str):
        raise ValueError('request has no string "cmd"')
    return message


def _plain(value: Any) -> Any:
    """NaN (an unset optional price) travels as nil, which every consumer understands."""
    return None if isinstance(value, float) and value != value else value


def encode_event(event: Any) -> bytes:
    """Encode an event (a NamedTuple such as Signal, Order, Fill; a frozen dataclass; or a plain map) as msgpack."""
    if isinstance(event, tuple) and hasattr(event, "_fields"):
        body = {name: _plain(value) for name, value in zip(event._fields, event, strict=True)}
        body["type"] = type(event).__name__
        return packb(body)
    if dataclasses.is_dataclass(event) and not isinstance(event, type):
        body = {f.name: _plain(getattr(event, f.name)) for f in dataclasses.fields(event)}
        body["type"] = type(event).__name__
        return packb(body)
    return packb(event)
