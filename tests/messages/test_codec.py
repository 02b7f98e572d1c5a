"""The msgpack codec: ingress round trips, every ingress rejection reason, control and events."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from messages.codec import (
    MAX_CONTROL_BYTES,
    MAX_MESSAGE_BYTES,
    REJECTION_REASONS,
    Rejection,
    decode_control,
    decode_ingress,
    encode_bar,
    encode_control,
    encode_event,
    encode_tick,
    fast_tick,
    packb,
    tick_from_map,
    unpackb,
)
from messages.market import Bar, Tick, mid_price
from messages.trading import BUY, SELL, Fill, Order, Signal

TS = 1_704_070_800_000_000_000  # 2024-01-01T01:00:00Z in ns
FUZZ = settings(max_examples=200, deadline=None)


def tick_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"symbol": "BTCUSD", "ts": TS, "bid": 100.0, "ask": 101.0, "last": 100.5, "volume": 2.0}
    body.update(changes)
    return {k: v for k, v in body.items() if v is not _DROP}


def bar_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"symbol": "BTCUSD", "ts": TS, "timeframe": "1m", "open": 100.0, "high": 102.0,
                            "low": 99.0, "close": 101.0, "volume": 5.0}
    body.update(changes)
    return {k: v for k, v in body.items() if v is not _DROP}


_DROP = object()


def tick_msg(**changes: Any) -> list[bytes]:
    return [b"tick.BTCUSD", packb(tick_body(**changes))]


def bar_msg(**changes: Any) -> list[bytes]:
    return [b"bar.BTCUSD", packb(bar_body(**changes))]


# ---------------------------------------------------------------------------------------------
# Round trips


def test_tick_with_quote_round_trips() -> None:
    tick = Tick("BTCUSD", TS, 100.0, 101.0, 100.25, 3.5)
    assert decode_ingress(encode_tick(tick)) == tick


def test_tick_with_last_only_round_trips_with_nan_quote() -> None:
    tick = Tick("ETHUSD", TS, math.nan, math.nan, 2300.5, 1.25)
    frames = encode_tick(tick)
    assert "bid" not in unpackb(frames[1]) and "ask" not in unpackb(frames[1])
    decoded = decode_ingress(frames)
    assert isinstance(decoded, Tick)
    assert not decoded.has_quote
    assert math.isnan(decoded.bid) and math.isnan(decoded.ask)
    assert (decoded.symbol, decoded.ts, decoded.last, decoded.volume, decoded.src, decoded.seq) == (
        "ETHUSD", TS, 2300.5, 1.25, "", -1)


def test_tick_with_src_and_seq_round_trips() -> None:
    tick = Tick("SOL/USD", TS, 99.5, 99.75, 99.6, 0.0, src="venue-a", seq=0)
    assert encode_tick(tick)[0] == b"tick.SOL/USD"
    assert decode_ingress(encode_tick(tick)) == tick
    assert decode_ingress(encode_tick(Tick("X", TS, 1.0, 1.0, 1.0, 0.0, "feed", 123456789))) == Tick(
        "X", TS, 1.0, 1.0, 1.0, 0.0, "feed", 123456789)


def test_tick_with_quote_and_no_last_gets_the_mid_price() -> None:
    decoded = decode_ingress(tick_msg(last=_DROP, bid=100.0, ask=101.0))
    assert decoded == Tick("BTCUSD", TS, 100.0, 101.0, 100.5, 2.0)


def test_tick_with_equal_bid_and_ask_is_accepted() -> None:
    assert isinstance(decode_ingress(tick_msg(bid=100.0, ask=100.0)), Tick)


def test_integer_prices_are_accepted_as_floats() -> None:
    decoded = decode_ingress(tick_msg(bid=100, ask=101, last=_DROP, volume=3))
    assert isinstance(decoded, Tick)
    assert decoded.last == 100.5 and type(decoded.bid) is float and type(decoded.volume) is float


def test_tick_without_volume_has_zero_volume() -> None:
    decoded = decode_ingress(tick_msg(volume=_DROP))
    assert isinstance(decoded, Tick) and decoded.volume == 0.0


def test_bar_round_trips() -> None:
    bar = Bar("BTCUSD", TS, "1h", 100.0, 105.0, 95.0, 101.0, 12.5)
    assert encode_bar(bar)[0] == b"bar.BTCUSD"
    assert decode_ingress(encode_bar(bar)) == bar


def test_bar_with_src_and_seq_round_trips() -> None:
    bar = Bar("ETHUSD", TS, "5m", 10.0, 10.0, 10.0, 10.0, 0.0, src="replayer", seq=42)
    assert decode_ingress(encode_bar(bar)) == bar


# ---------------------------------------------------------------------------------------------
# Rejections: one hand-made message per reason decode_ingress can produce


def _bar_missing(key: str) -> list[bytes]:
    return bar_msg(**{key: _DROP})


REJECTIONS: list[tuple[str, list[bytes], str, str]] = [
    # (id, frames, reason, a substring of the detail)
    ("one_frame", [b"tick.BTCUSD"], "bad_frames", "1 frames"),
    ("three_frames", [b"tick.BTCUSD", packb(tick_body()), b""], "bad_frames", "3 frames"),
    ("no_frames", [], "bad_frames", "0 frames"),
    ("topic_not_ascii", [b"tick.BTC\xc3\xa9", packb(tick_body())], "bad_topic", "ASCII"),
    ("topic_wrong_prefix", [b"quote.BTCUSD", packb(tick_body())], "bad_topic", "quote.BTCUSD"),
    ("topic_without_dot", [b"tickBTCUSD", packb(tick_body())], "bad_topic", ""),
    ("topic_empty_symbol", [b"tick.", packb(tick_body())], "bad_topic", ""),
    ("topic_bad_symbol", [b"tick.BTC USD", packb(tick_body(symbol="BTC USD"))], "bad_topic", "BTC USD"),
    ("topic_symbol_too_long", [b"tick." + b"A" * 33, packb(tick_body(symbol="A" * 33))], "bad_topic", ""),
    ("oversized", [b"tick.BTCUSD", b"\x00" * (MAX_MESSAGE_BYTES + 1)], "oversized", str(MAX_MESSAGE_BYTES + 1)),
    ("not_msgpack_truncated", [b"tick.BTCUSD", packb(tick_body())[:-3]], "not_msgpack", ""),
    ("not_msgpack_reserved_byte", [b"tick.BTCUSD", b"\xc1"], "not_msgpack", ""),
    ("not_msgpack_trailing_data", [b"tick.BTCUSD", packb(tick_body()) + b"\x01"], "not_msgpack", ""),
    ("not_msgpack_empty", [b"tick.BTCUSD", b""], "not_msgpack", ""),
    ("not_a_map_list", [b"tick.BTCUSD", packb([1, 2, 3])], "not_a_map", "list"),
    ("not_a_map_int", [b"bar.BTCUSD", packb(7)], "not_a_map", "int"),
    ("missing_symbol", tick_msg(symbol=_DROP), "missing_field", "symbol"),
    ("missing_ts", tick_msg(ts=_DROP), "missing_field", "ts"),
    ("bid_without_ask", tick_msg(ask=_DROP), "missing_field", "ask"),
    ("ask_without_bid", tick_msg(bid=_DROP), "missing_field", "bid"),
    ("neither_quote_nor_last", tick_msg(bid=_DROP, ask=_DROP, last=_DROP), "missing_field", "last"),
    ("bar_missing_close", _bar_missing("close"), "missing_field", "close"),
    ("bar_missing_open", _bar_missing("open"), "missing_field", "open"),
    ("bar_missing_timeframe", _bar_missing("timeframe"), "missing_field", "timeframe"),
    ("ts_float", tick_msg(ts=float(TS)), "bad_type", "ts"),
    ("ts_bool", tick_msg(ts=True), "bad_type", "ts"),
    ("ts_string", tick_msg(ts=str(TS)), "bad_type", "ts"),
    ("price_string", tick_msg(last="100.5"), "bad_type", "last"),
    ("price_bool", tick_msg(bid=True), "bad_type", "bid"),
    ("bar_price_string", bar_msg(high="102"), "bad_type", "high"),
    ("volume_string", tick_msg(volume="1"), "bad_type", "volume"),
    ("src_not_str", tick_msg(src=5), "bad_type", "src"),
    ("src_too_long", tick_msg(src="s" * 65), "bad_type", "src"),
    ("seq_negative", tick_msg(seq=-1), "bad_type", "seq"),
    ("seq_float", tick_msg(seq=1.0), "bad_type", "seq"),
    ("seq_bool", tick_msg(seq=True), "bad_type", "seq"),
    ("timeframe_not_str", bar_msg(timeframe=60), "bad_type", "timeframe"),
    ("symbol_too_long", [b"tick.BTCUSD", packb(tick_body(symbol="B" * 33))], "bad_symbol", "BBB"),
    ("symbol_bad_chars", [b"tick.BTCUSD", packb(tick_body(symbol="BTC USD"))], "bad_symbol", "BTC USD"),
    ("symbol_empty", [b"tick.BTCUSD", packb(tick_body(symbol=""))], "bad_symbol", ""),
    ("symbol_not_str", [b"tick.BTCUSD", packb(tick_body(symbol=12))], "bad_symbol", "int"),
    ("symbol_mismatch", [b"tick.ETHUSD", packb(tick_body(symbol="BTCUSD"))], "symbol_mismatch", "ETHUSD != BTCUSD"),
    ("ts_zero", tick_msg(ts=0), "bad_timestamp", "0"),
    ("ts_negative", tick_msg(ts=-5), "bad_timestamp", "-5"),
    ("last_nan", tick_msg(last=math.nan), "non_finite", "last"),
    ("bid_inf", tick_msg(bid=math.inf), "non_finite", "bid"),
    ("volume_nan", tick_msg(volume=math.nan), "non_finite", "volume"),
    ("bar_high_inf", bar_msg(high=math.inf), "non_finite", "high"),
    ("price_zero", tick_msg(last=0.0), "bad_price", "last"),
    ("price_negative", tick_msg(bid=-1.0, ask=1.0), "bad_price", "bid"),
    ("bar_low_zero", bar_msg(low=0), "bad_price", "low"),
    ("crossed_quote", tick_msg(bid=101.5, ask=101.0), "crossed_quote", "101.5 > 101.0"),
    ("volume_negative", tick_msg(volume=-0.5), "bad_volume", "-0.5"),
    ("bar_volume_negative", bar_msg(volume=-1), "bad_volume", "-1"),
    ("bar_high_below_low", bar_msg(open=100.0, high=98.0, low=99.0, close=100.0), "bad_ohlc", "h=98.0"),
    ("bar_close_above_high", bar_msg(close=103.0), "bad_ohlc", "c=103.0"),
    ("bar_open_below_low", bar_msg(open=98.0), "bad_ohlc", "o=98.0"),
    ("timeframe_bad_unit", bar_msg(timeframe="1x"), "bad_timeframe", "1x"),
    ("timeframe_zero", bar_msg(timeframe="0m"), "bad_timeframe", "0m"),
    ("timeframe_empty", bar_msg(timeframe=""), "bad_timeframe", ""),
]


@pytest.mark.parametrize(("frames", "reason", "detail"), [r[1:] for r in REJECTIONS], ids=[r[0] for r in REJECTIONS])
def test_malformed_message_is_rejected_with_the_named_reason(frames: list[bytes], reason: str, detail: str) -> None:
    result = decode_ingress(frames)
    assert isinstance(result, Rejection), result
    assert result.reason == reason
    assert detail in result.detail


def test_every_reason_decode_ingress_can_produce_is_covered_by_a_hand_made_message() -> None:
    produced_elsewhere = {"unobserved_symbol", "internal_error", "not_json", "unsupported_channel",  # cryptofeed
                          "future_timestamp", "old_timestamp", "symbol_limit", "timeframe_limit"}  # the Ingest
    covered = {reason for _, _, reason, _ in REJECTIONS}
    assert covered == set(REJECTION_REASONS) - produced_elsewhere


def test_payload_of_exactly_the_limit_is_read_and_one_byte_more_is_oversized() -> None:
    body = tick_body(pad="x" * 1000)
    overhead = len(packb(body)) - 1000
    body["pad"] = "x" * (MAX_MESSAGE_BYTES - overhead)
    payload = packb(body)
    assert len(payload) == MAX_MESSAGE_BYTES
    assert isinstance(decode_ingress([b"tick.BTCUSD", payload]), Tick)
    body["pad"] += "x"
    assert decode_ingress([b"tick.BTCUSD", packb(body)]).reason == "oversized"  # type: ignore[union-attr]


def test_oversized_payload_is_rejected_before_the_topic_is_read() -> None:
    result = decode_ingress([b"\xff\xfe", b"\x00" * (MAX_MESSAGE_BYTES + 1)])
    assert isinstance(result, Rejection) and result.reason == "oversized"


def test_symbol_with_every_allowed_punctuation_is_accepted() -> None:
    symbol = "a.B_c:D/e-1"
    decoded = decode_ingress([f"tick.{symbol}".encode(), packb(tick_body(symbol=symbol))])
    assert isinstance(decoded, Tick) and decoded.symbol == symbol


def test_unknown_keys_in_a_valid_message_are_ignored() -> None:
    assert isinstance(decode_ingress(tick_msg(exchange="X", extra=[1, 2])), Tick)


def test_deeply_nested_symbol_is_rejected_not_raised() -> None:
    depth = 1000  # below msgpack's own nesting limit (1024), above Python's repr recursion limit
    payload = b"\x82" + packb("symbol") + b"\x91" * depth + packb("x") + packb("ts") + packb(1)
    assert len(payload) < 1100
    result = decode_ingress([b"tick.BTCUSD", payload])
    assert isinstance(result, Rejection) and result.reason == "bad_symbol"


def test_timestamp_beyond_int64_is_rejected_as_bad_timestamp() -> None:
    result = decode_ingress(bar_msg(ts=2**63))
    assert isinstance(result, Rejection) and result.reason == "bad_timestamp"


# ---------------------------------------------------------------------------------------------
# Fuzz: decode_ingress never raises


def _assert_is_outcome(result: object) -> None:
    assert isinstance(result, (Tick, Bar, Rejection))
    if isinstance(result, Rejection):
        assert result.reason in REJECTION_REASONS
        assert result.reason not in ("unobserved_symbol", "internal_error")


@FUZZ
@given(st.lists(st.binary(max_size=48), max_size=4))
def test_arbitrary_byte_frames_never_raise(frames: list[bytes]) -> None:
    _assert_is_outcome(decode_ingress(frames))


@FUZZ
@given(st.sampled_from([b"tick.", b"bar.", b"", b"tick", b"x."]), st.binary(max_size=8), st.binary(max_size=64))
def test_arbitrary_payloads_under_plausible_topics_never_raise(prefix: bytes, symbol: bytes, payload: bytes) -> None:
    _assert_is_outcome(decode_ingress([prefix + symbol, payload]))


_SCALARS = (st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64 - 1) | st.floats()
            | st.text(max_size=40) | st.binary(max_size=8))
_VALUES = _SCALARS | st.lists(_SCALARS, max_size=3) | st.dictionaries(st.text(max_size=4), _SCALARS, max_size=3)
_KEYS = st.sampled_from(["symbol", "ts", "bid", "ask", "last", "volume", "src", "seq", "timeframe", "open",
                         "high", "low", "close"]) | st.text(max_size=6) \
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)


@FUZZ
@given(st.sampled_from([b"tick.BTCUSD", b"bar.BTCUSD"]), st.dictionaries(_KEYS, _VALUES, max_size=10))
def test_arbitrary_maps_never_raise(topic: bytes, body: dict) -> None:
    _assert_is_outcome(decode_ingress([topic, packb(body)]))


_FIELDS = ["symbol", "ts", "bid", "ask", "last", "volume", "src", "seq", "timeframe", "open", "high", "low", "close"]


@FUZZ
@given(st.booleans(), st.dictionaries(st.sampled_from(_FIELDS), _VALUES | st.just(_DROP), max_size=4))
def test_valid_messages_with_fields_replaced_by_anything_never_raise(is_bar: bool, changes: dict) -> None:
    frames = bar_msg(**changes) if is_bar else tick_msg(**changes)
    result = decode_ingress(frames)
    _assert_is_outcome(result)
    if not isinstance(result, Rejection):
        assert isinstance(result, Bar if is_bar else Tick)
        assert result.ts > 0 and math.isfinite(result.last if isinstance(result, Tick) else result.close)


@FUZZ
@given(st.floats(min_value=1e-6, max_value=1e9), st.floats(min_value=0, max_value=1e6),
       st.floats(min_value=1e-6, max_value=1e9), st.integers(min_value=1, max_value=2**62))
def test_valid_ticks_always_round_trip(bid: float, spread: float, last: float, ts: int) -> None:
    tick = Tick("BTCUSD", ts, bid, bid + spread, last, spread)
    assert decode_ingress(encode_tick(tick)) == tick


def _same_tick(a: Tick, b: Tick) -> bool:
    """Field by field, NaN equal to NaN (a last-only tick has NaN quotes)."""
    return all(x == y or (x != x and y != y) for x, y in zip(a, b, strict=True))


def _full_validator(payload: bytes) -> Tick | Rejection:
    try:
        body = unpackb(payload)
    except ValueError:
        return Rejection("not_msgpack")
    return tick_from_map(body, "BTCUSD") if isinstance(body, dict) else Rejection("not_a_map")


_TICK_VALUES = (_VALUES | st.floats(min_value=1e-6, max_value=1e9) | st.integers(min_value=1, max_value=2**62)
                | st.just(float("nan")) | st.just(float("inf")) | st.just(-0.0))


@FUZZ
@given(st.dictionaries(st.sampled_from(["symbol", "ts", "bid", "ask", "last", "volume", "src", "seq", "x"]),
                       _TICK_VALUES, max_size=9),
       st.booleans())
def test_fast_tick_path_accepts_only_what_the_full_validator_accepts_and_agrees(body: dict, valid_base: bool) -> None:
    decode_ingress(tick_msg())  # the topic is now known valid, so the fast path runs
    payload = packb({**tick_body(), **body} if valid_base else body)
    fast = fast_tick(b"tick.BTCUSD", payload)
    full = _full_validator(payload)
    if fast is not None:
        assert isinstance(full, Tick) and _same_tick(fast, full)
    decoded = decode_ingress([b"tick.BTCUSD", payload])
    assert type(decoded) is type(full)
    if isinstance(full, Tick):
        assert _same_tick(decoded, full)  # type: ignore[arg-type]
    else:
        assert decoded == full or decoded.reason == full.reason  # type: ignore[union-attr]


def test_fast_tick_path_takes_the_last_of_duplicate_keys_like_the_full_validator() -> None:
    decode_ingress(tick_msg())
    pairs = [("symbol", "BTCUSD"), ("ts", TS), ("bid", 100.0), ("ask", 101.0), ("bid", 100.5)]
    payload = bytes([0x80 | len(pairs)]) + b"".join(packb(k) + packb(v) for k, v in pairs)
    fast = fast_tick(b"tick.BTCUSD", payload)
    assert fast is not None and fast.bid == 100.5 and _same_tick(fast, _full_validator(payload))  # type: ignore[arg-type]


@pytest.mark.parametrize("change", [{"bid": True}, {"ts": 1.0}, {"ts": True}, {"volume": float("nan")},
                                    {"last": float("inf")}, {"seq": -1}, {"src": None}, {"src": "s" * 65},
                                    {"bid": None}, {"ask": 99.0}, {"symbol": "ETHUSD"}, {"extra": 1}])
def test_fast_tick_path_leaves_anything_unusual_to_the_full_validator(change: dict) -> None:
    decode_ingress(tick_msg())
    assert fast_tick(b"tick.BTCUSD", packb(tick_body(**change))) is None


def test_fast_tick_path_takes_integer_prices_and_last_only_ticks_as_the_full_validator_does() -> None:
    decode_ingress(tick_msg())
    for body in (tick_body(bid=100, ask=101, last=_DROP, volume=_DROP), tick_body(bid=_DROP, ask=_DROP)):
        payload = packb(body)
        fast = fast_tick(b"tick.BTCUSD", payload)
        assert fast is not None and _same_tick(fast, _full_validator(payload))  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Control protocol and events


def test_control_request_round_trips() -> None:
    request = {"cmd": "status", "args": {"actor": "feed"}, "id": 3}
    assert decode_control(encode_control(request)) == request


def test_control_request_that_is_not_msgpack_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="not msgpack"):
        decode_control(b"\xc1")


def test_control_request_that_is_not_a_map_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="not a msgpack map"):
        decode_control(packb(["status"]))


@pytest.mark.parametrize("request_map", [{}, {"command": "status"}, {"cmd": 5}, {"cmd": None}])
def test_control_request_without_a_string_cmd_is_a_value_error(request_map: dict) -> None:
    with pytest.raises(ValueError, match='no string "cmd"'):
        decode_control(packb(request_map))


def test_oversized_control_request_is_a_value_error() -> None:
    data = packb({"cmd": "status", "pad": "x" * MAX_CONTROL_BYTES})
    with pytest.raises(ValueError, match="too large"):
        decode_control(data)


def test_unpackb_wraps_garbage_in_a_value_error() -> None:
    with pytest.raises(ValueError, match="not msgpack"):
        unpackb(b"\x92\x01")


def test_signal_event_encodes_its_fields_and_type() -> None:
    signal = Signal("sma_cross", "BTCUSD", "1h", TS, BUY, 101.5, "fast crossed above slow",
                    (("sma_10", 101.0), ("sma_30", 100.0)), (("fast", 10), ("slow", 30), ("min_prob", 0.0)))
    decoded = unpackb(encode_event(signal))
    assert decoded == {"strategy": "sma_cross", "symbol": "BTCUSD", "timeframe": "1h", "ts": TS, "side": "buy",
                       "price": 101.5, "reason": "fast crossed above slow",
                       "inputs": [["sma_10", 101.0], ["sma_30", 100.0]],
                       "params": [["fast", 10], ["slow", 30], ["min_prob", 0.0]], "order": "market", "limit_price": None,
                       "stop_price": None, "sizing": "", "size": None, "stop_loss": None, "take_profit": None,
                       "trail": None, "type": "Signal"}


def test_order_event_encodes_its_fields_and_type() -> None:
    order = Order("sma_cross:BTCUSD:1h:1:sell", "sma_cross", "BTCUSD", SELL, 0.5, TS, status="rejected",
                  reason="no position")
    assert unpackb(encode_event(order)) == {
        "client_id": "sma_cross:BTCUSD:1h:1:sell", "strategy": "sma_cross", "symbol": "BTCUSD", "side": "sell",
        "qty": 0.5, "ts": TS, "kind": "market", "status": "rejected", "reason": "no position", "limit_price": None,
        "stop_price": None, "type": "Order"}


def test_fill_event_encodes_its_fields_and_type() -> None:
    fill = Fill("cid", "ETHUSD", BUY, 2.0, 2300.0, 4.6, TS)
    assert unpackb(encode_event(fill)) == {"client_id": "cid", "symbol": "ETHUSD", "side": "buy", "qty": 2.0,
                                           "price": 2300.0, "fee": 4.6, "ts": TS, "type": "Fill"}


def test_plain_map_event_encodes_as_is() -> None:
    assert unpackb(encode_event({"a": 1})) == {"a": 1}


_HUGE_BID, _HUGE_ASK = 8.988465674311579e+307, 8.98846567431158e+307  # their sum overflows a float


def test_mid_of_two_huge_prices_is_finite_on_the_fast_path() -> None:
    body = packb({"symbol": "BTCUSD", "ts": TS, "bid": _HUGE_BID, "ask": _HUGE_ASK})
    decode_ingress([b"tick.BTCUSD", packb(tick_body())])  # the topic is now known: the fast path decides
    tick = fast_tick(b"tick.BTCUSD", body)
    assert tick is not None and math.isfinite(tick.last) and _HUGE_BID <= tick.last <= _HUGE_ASK


def test_mid_of_two_huge_prices_is_finite_on_the_full_validator() -> None:
    body = {"symbol": "BTCUSD", "ts": TS, "bid": _HUGE_BID, "ask": _HUGE_ASK}
    for tick in (tick_from_map(body, "BTCUSD"), decode_ingress([b"tick.BTCUSD", packb({**body, "x": 1})])):
        assert isinstance(tick, Tick) and math.isfinite(tick.last) and _HUGE_BID <= tick.last <= _HUGE_ASK
    top = tick_from_map({**body, "bid": 1.7976931348623157e308, "ask": 1.7976931348623157e308}, "BTCUSD")
    assert isinstance(top, Tick) and top.last == 1.7976931348623157e308


def test_mid_of_ordinary_prices_is_unchanged_by_the_overflow_guard() -> None:
    for bid, ask in ((100.0, 101.0), (0.1, 0.3), (64000.1, 64000.2), (5e-324, 1e-300)):
        assert mid_price(bid, ask) == (bid + ask) / 2.0
