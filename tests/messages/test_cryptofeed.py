"""cryptofeed's ZeroMQ format: frames built exactly as its backend builds them, and fuzzing."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from messages.codec import REJECTION_REASONS, Rejection
from messages.cryptofeed import decode_cryptofeed, encode_cryptofeed
from messages.market import Tick

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
STAMP = 1717200000.123456


def ticker(**changes: object) -> dict:
    data = {"exchange": "BINANCE", "symbol": "BTC-USDT", "bid": 64000.1, "ask": 64000.2, "timestamp": STAMP,
            "receipt_timestamp": STAMP + 0.05}
    data.update(changes)
    return data


def trade(**changes: object) -> dict:
    data = {"exchange": "COINBASE", "symbol": "ETH-USD", "side": "buy", "amount": 0.5, "price": 3000.25, "id": "123",
            "type": None, "timestamp": STAMP, "receipt_timestamp": STAMP + 0.05}
    data.update(changes)
    return data


def frame(prefix: str, data: object) -> list[bytes]:
    return [f"{prefix} {json.dumps(data)}".encode()]


def test_the_frame_is_the_backends_key_then_json() -> None:
    (raw,) = encode_cryptofeed("ticker", ticker())
    assert raw.startswith(b"BINANCE-ticker-BTC-USDT {") and json.loads(raw.split(b" ", 1)[1]) == ticker()


def test_a_ticker_becomes_a_quote_tick_with_an_exchange_qualified_symbol() -> None:
    tick = decode_cryptofeed(encode_cryptofeed("ticker", ticker()))
    assert tick == Tick("BINANCE:BTC-USDT", 1717200000123456000, 64000.1, 64000.2, (64000.1 + 64000.2) / 2, 0.0,
                        "cryptofeed:BINANCE", -1)


def test_a_trade_becomes_a_last_price_tick_with_its_amount_as_volume() -> None:
    tick = decode_cryptofeed(encode_cryptofeed("trades", trade()))
    assert isinstance(tick, Tick) and not tick.has_quote
    assert (tick.symbol, tick.ts, tick.last, tick.volume, tick.src) == (
        "COINBASE:ETH-USD", 1717200000123456000, 3000.25, 0.5, "cryptofeed:COINBASE")


def test_a_static_key_and_numbers_as_strings_are_understood() -> None:
    tick = decode_cryptofeed(frame("ticker", ticker(bid="100.5", ask="101")))
    assert isinstance(tick, Tick) and (tick.bid, tick.ask) == (100.5, 101.0)
    assert isinstance(decode_cryptofeed(frame("trades", trade(price="3.5", amount="2"))), Tick)


def test_exchange_names_with_underscores_and_symbols_with_dashes_are_parsed() -> None:
    data = ticker(exchange="BINANCE_FUTURES", symbol="BTC-USDT-PERP")
    tick = decode_cryptofeed(encode_cryptofeed("ticker", data))
    assert isinstance(tick, Tick) and tick.symbol == "BINANCE_FUTURES:BTC-USDT-PERP"


def test_without_an_exchange_timestamp_the_receipt_time_is_used() -> None:
    for missing in (None, 0, 0.0):
        tick = decode_cryptofeed(encode_cryptofeed("ticker", ticker(timestamp=missing)))
        assert isinstance(tick, Tick) and tick.ts == 1717200000173456000


def test_microsecond_timestamps_are_exact() -> None:
    for stamp, ns in ((1717200000.000001, 1717200000000001000), (1717200000.999999, 1717200000999999000)):
        assert decode_cryptofeed(encode_cryptofeed("trades", trade(timestamp=stamp))).ts == ns


REJECTIONS = [
    ("two_frames", [b"a", b"b"], "bad_frames"),
    ("no_space", [b"BINANCE-ticker-BTC-USDT{}"], "bad_topic"),
    ("not_ascii", ["BINANCÉ-ticker-X {}".encode()], "bad_topic"),
    ("not_json", [b"BINANCE-ticker-BTC-USDT {nope"], "not_json"),
    ("not_a_map", frame("ticker", [1, 2]), "not_a_map"),
    ("no_exchange", frame("ticker", {"symbol": "X"}), "missing_field"),
    ("exchange_not_text", frame("ticker", ticker(exchange=5)), "bad_type"),
    ("book", encode_cryptofeed("book", ticker()), "unsupported_channel"),
    ("funding", frame("funding", ticker()), "unsupported_channel"),
    ("no_timestamp", frame("ticker", ticker(timestamp=None, receipt_timestamp=None)), "missing_field"),
    ("timestamp_text", frame("ticker", ticker(timestamp="soon")), "bad_type"),
    ("timestamp_negative", frame("ticker", ticker(timestamp=-5.0)), "bad_timestamp"),
    ("timestamp_huge", frame("ticker", ticker(timestamp=1e300)), "bad_timestamp"),
    ("no_bid", frame("ticker", ticker(bid=None)), "missing_field"),
    ("crossed", frame("ticker", ticker(bid=2.0, ask=1.0)), "crossed_quote"),
    ("negative_price", frame("trades", trade(price=-1.0)), "bad_price"),
    ("nan_text", frame("trades", trade(price="nan")), "non_finite"),
    ("price_is_a_list", frame("trades", trade(price=[1])), "bad_type"),
    ("negative_amount", frame("trades", trade(amount=-1)), "bad_volume"),
    ("no_amount", frame("trades", trade(amount=None)), "missing_field"),
    ("long_symbol", frame("ticker", ticker(symbol="X" * 40)), "bad_symbol"),
    ("oversized", [b"ticker " + b" " * (64 * 1024)], "oversized"),
]


@pytest.mark.parametrize(("frames", "reason"), [r[1:] for r in REJECTIONS], ids=[r[0] for r in REJECTIONS])
def test_malformed_messages_are_rejected_with_a_reason(frames: list[bytes], reason: str) -> None:
    result = decode_cryptofeed(frames)
    assert isinstance(result, Rejection), result
    assert result.reason == reason


def _assert_outcome(result: object) -> None:
    assert isinstance(result, (Tick, Rejection))
    if isinstance(result, Rejection):
        assert result.reason in REJECTION_REASONS
    else:
        assert result.ts > 0 and math.isfinite(result.last) and result.last > 0


@FUZZ
@given(st.lists(st.binary(max_size=64), max_size=3))
def test_arbitrary_bytes_never_raise(frames: list[bytes]) -> None:
    _assert_outcome(decode_cryptofeed(frames))


_SCALARS = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.floats()
            | st.text(max_size=20))
_VALUES = _SCALARS | st.lists(_SCALARS, max_size=3) | st.dictionaries(st.text(max_size=4), _SCALARS, max_size=3)
_KEYS = st.sampled_from(["exchange", "symbol", "bid", "ask", "price", "amount", "side", "id", "timestamp",
                         "receipt_timestamp"]) | st.text(max_size=8)


@FUZZ
@given(st.sampled_from(["ticker", "trades", "BINANCE-ticker-BTC-USDT", "X-trades-Y", "book", ""]),
       st.dictionaries(_KEYS, _VALUES, max_size=10))
def test_arbitrary_maps_never_raise(prefix: str, data: dict) -> None:
    _assert_outcome(decode_cryptofeed([f"{prefix} {json.dumps(data)}".encode()]))


@FUZZ
@given(st.booleans(), st.dictionaries(st.sampled_from(["exchange", "symbol", "bid", "ask", "price", "amount",
                                                        "timestamp"]), _VALUES, max_size=3))
def test_valid_updates_with_fields_replaced_by_anything_never_raise(is_trade: bool, changes: dict) -> None:
    data = trade(**changes) if is_trade else ticker(**changes)
    prefix = "trades" if is_trade else "ticker"
    _assert_outcome(decode_cryptofeed([f"{prefix} {json.dumps(data)}".encode()]))


def test_deeply_nested_json_is_rejected_not_raised() -> None:
    assert decode_cryptofeed([b"ticker " + b"[" * 60_000]).reason == "not_json"


def test_a_ticker_whose_prices_sum_past_the_largest_float_gets_a_finite_mid() -> None:
    bid, ask = 8.988465674311579e+307, 8.98846567431158e+307  # found by the fuzzer above: the mid was inf
    tick = decode_cryptofeed(encode_cryptofeed("ticker", ticker(bid=bid, ask=ask)))
    assert isinstance(tick, Tick) and math.isfinite(tick.last) and bid <= tick.last <= ask
