"""cryptofeed's ZeroMQ wire format, mapped into our Tick.

cryptofeed's ZeroMQ backends (``TickerZMQ``, ``TradeZMQ``) connect a PUB socket and send one
text frame per update: ``"{EXCHANGE}-{key}-{SYMBOL} {json}"`` (or ``"{key} {json}"`` with
``dynamic_key=False``), where ``key`` is ``ticker`` or ``trades`` and the JSON is the update's
``to_dict()`` plus ``receipt_timestamp``:

- ticker: ``{"exchange", "symbol", "bid", "ask", "timestamp", "receipt_timestamp"}``
- trades: ``{"exchange", "symbol", "side", "amount", "price", "id", "type", "timestamp", "receipt_timestamp"}``

Timestamps are float seconds (cryptofeed puts the receipt time there when the exchange gave
none). A ticker becomes a quote tick (bid, ask, mid as last); a trade becomes a last-only tick
with the amount as volume. The symbol is exchange-qualified, ``BINANCE:BTC-USDT``, so the same
pair on two venues stays two series; ``src`` is ``cryptofeed:<EXCHANGE>``. The result is
validated exactly like a wire-protocol-v1 tick, and nothing here ever raises.
"""

from __future__ import annotations

import json
import math
from typing import Any

from messages.codec import MAX_MESSAGE_BYTES, Rejection, tick_from_map
from messages.market import Tick

__all__ = ["CHANNELS", "decode_cryptofeed", "encode_cryptofeed"]

CHANNELS = ("ticker", "trades")


def encode_cryptofeed(channel: str, data: dict[str, Any]) -> list[bytes]:
    """Return the one frame cryptofeed's backend sends for ``data`` (for tests and tools)."""
    prefix = f"{data['exchange']}-{channel}-{data['symbol']}"
    return [f"{prefix} {json.dumps(data)}".encode()]


def _channel(prefix: str, exchange: str, symbol: str) -> str:
    if prefix in CHANNELS:  # dynamic_key=False
        return prefix
    head, tail = f"{exchange}-", f"-{symbol}"
    if prefix.startswith(head) and prefix.endswith(tail) and len(prefix) > len(head) + len(tail):
        return prefix[len(head):-len(tail)]
    return prefix


def _number(value: Any) -> Any:
    """cryptofeed sends floats, or strings with ``numeric_type=str``; anything else is left for the validator."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _ns(seconds: Any) -> int | Rejection:
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        return Rejection("bad_type", "timestamp")
    if not math.isfinite(seconds) or seconds <= 0 or seconds >= 9.2e9:
        return Rejection("bad_timestamp", str(seconds)[:32])
    return int(round(seconds * 1_000_000)) * 1_000  # microseconds: exact in a float of epoch seconds


def decode_cryptofeed(frames: list[bytes]) -> Tick | Rejection:
    """Decode and validate one cryptofeed ZeroMQ message (a list of frames)."""
    if len(frames) != 1:
        return Rejection("bad_frames", f"{len(frames)} frames")
    frame = frames[0]
    if len(frame) > MAX_MESSAGE_BYTES:
        return Rejection("oversized", f"{len(frame)} bytes")
    prefix_bytes, space, payload = frame.partition(b" ")
    if not space:
        return Rejection("bad_topic", "no space after the key")
    try:
        prefix = prefix_bytes.decode("ascii")
    except UnicodeDecodeError:
        return Rejection("bad_topic", "not ASCII")
    try:
        data = json.loads(payload)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return Rejection("not_json")
    if not isinstance(data, dict):
        return Rejection("not_a_map", type(data).__name__)
    exchange, pair = data.get("exchange"), data.get("symbol")
    for key, value in (("exchange", exchange), ("symbol", pair)):
        if value is None:
            return Rejection("missing_field", key)
        if not isinstance(value, str):
            return Rejection("bad_type", key)
    channel = _channel(prefix, exchange, pair)
    if channel not in CHANNELS:
        return Rejection("unsupported_channel", channel[:32])
    stamp = data.get("timestamp") or data.get("receipt_timestamp")
    if stamp is None:
        return Rejection("missing_field", "timestamp")
    ts = _ns(stamp)
    if isinstance(ts, Rejection):
        return ts
    symbol = f"{exchange}:{pair}"
    body: dict[str, Any] = {"symbol": symbol, "ts": ts, "src": f"cryptofeed:{exchange}"[:64]}
    if channel == "ticker":
        for key in ("bid", "ask"):
            if data.get(key) is None:
                return Rejection("missing_field", key)
            body[key] = _number(data[key])
    else:
        for key in ("price", "amount"):
            if data.get(key) is None:
                return Rejection("missing_field", key)
        body["last"], body["volume"] = _number(data["price"]), _number(data["amount"])
    return tick_from_map(body, symbol)
