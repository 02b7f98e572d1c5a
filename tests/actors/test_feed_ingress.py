"""Ingress accounting (Ingest) and the backtest replay's batching."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from actors.feed.ingress import Ingest, IngressLimits, WatchList
from actors.feed.stale import StaleWatch
from actors.feed.replay import replay_chunks
from messages.codec import encode_bar, encode_tick, packb
from messages.cryptofeed import encode_cryptofeed
from messages.market import Bar, Tick, check_symbols

TS = 1_704_070_800_000_000_000
H = 3_600_000_000_000


def tick(symbol: str = "BTCUSD", src: str = "", seq: int = -1, ts: int = TS) -> list[bytes]:
    return encode_tick(Tick(symbol, ts, 100.0, 101.0, 100.5, 1.0, src, seq))


def bar(symbol: str = "BTCUSD", src: str = "", seq: int = -1) -> list[bytes]:
    return encode_bar(Bar(symbol, TS, "1m", 100.0, 101.0, 99.0, 100.5, 3.0, src, seq))


def bad_tick(**body: object) -> list[bytes]:
    base = {"symbol": "BTCUSD", "ts": TS, "last": 100.0}
    base.update(body)
    return [b"tick.BTCUSD", packb(base)]


def test_received_equals_accepted_plus_rejected_with_reasons_counted() -> None:
    messages = [
        tick(), tick("ETHUSD"), bad_tick(last=-1.0), bad_tick(ts=0), bad_tick(last=math.nan), [b"tick.BTCUSD", b"\xc1"],
        bar(), [b"bar.BTCUSD", packb({"symbol": "BTCUSD", "ts": TS, "timeframe": "1m", "open": 1.0, "high": 0.5,
                                      "low": 1.0, "close": 1.0})],
        [b"bar.BTCUSD", packb([1])],
    ]
    result = Ingest().accept(messages)
    assert len(result.ticks) == 2 and len(result.bars) == 1
    assert result.counter_deltas() == {
        "ticks_received": 6, "ticks_accepted": 2, "ticks_rejected": 4,
        "bars_received": 3, "bars_accepted": 1, "bars_rejected": 2, "seq_gaps": 0,
        "seq_sources_evicted": 0,
    }
    assert dict(result.rejected_by_reason) == {"bad_price": 1, "bad_timestamp": 1, "non_finite": 1,
                                               "not_msgpack": 1, "bad_ohlc": 1, "not_a_map": 1}
    assert result.last_rejection is not None and result.last_rejection.reason == "not_a_map"


def test_accepted_ticks_and_bars_keep_arrival_order() -> None:
    result = Ingest().accept([tick("A"), bar("B"), tick("C"), bar("D")])
    assert [t.symbol for t in result.ticks] == ["A", "C"]
    assert [b.symbol for b in result.bars] == ["B", "D"]


def test_garbage_without_a_bar_topic_counts_as_a_tick() -> None:
    result = Ingest().accept([[b"junk"], [], [b"\xff", b"\x00"], [b"bar", b"x", b"y"]])
    assert (result.ticks_received, result.ticks_rejected, result.bars_received) == (4, 4, 0)
    assert dict(result.rejected_by_reason) == {"bad_frames": 3, "bad_topic": 1}


def test_any_message_with_a_bar_topic_counts_as_a_bar_even_when_malformed() -> None:
    result = Ingest().accept([[b"bar.BTCUSD"], [b"bar.BTCUSD", b"\xc1"], [b"bar.???", packb({})]])
    assert (result.bars_received, result.bars_rejected, result.ticks_received) == (3, 3, 0)
    assert dict(result.rejected_by_reason) == {"bad_frames": 1, "not_msgpack": 1, "bad_topic": 1}


def test_empty_batch_counts_nothing() -> None:
    result = Ingest().accept([])
    assert all(v == 0 for v in result.counter_deltas().values())
    assert result.last_rejection is None


def test_symbol_off_the_watch_list_is_rejected_as_unobserved() -> None:
    result = Ingest(["BTCUSD"]).accept([tick("BTCUSD"), tick("ETHUSD"), bar("SOLUSD"), bar("BTCUSD")])
    assert [t.symbol for t in result.ticks] == ["BTCUSD"]
    assert [b.symbol for b in result.bars] == ["BTCUSD"]
    assert dict(result.rejected_by_reason) == {"unobserved_symbol": 2}
    assert (result.ticks_rejected, result.bars_rejected) == (1, 1)
    assert result.last_rejection is not None and result.last_rejection.detail == "SOLUSD"


def test_the_star_watch_list_accepts_every_symbol_and_is_the_default() -> None:
    for ingest in (Ingest(), Ingest(["*"])):
        result = ingest.accept([tick("ANY1"), tick("ANY2")])
        assert len(result.ticks) == 2 and not result.rejected_by_reason


def test_an_empty_watch_list_accepts_no_symbol() -> None:
    result = Ingest([]).accept([tick("ANY1"), bar("ANY2")])
    assert not result.ticks and not result.bars and result.rejected_by_reason == {"unobserved_symbol": 2}


def test_watch_list_changes_take_effect_on_the_next_batch() -> None:
    ingest = Ingest(["BTCUSD"])
    assert ingest.accept([tick("ETHUSD")]).rejected_by_reason["unobserved_symbol"] == 1
    ingest.watch.change(("ETHUSD",), ())
    assert len(ingest.accept([tick("ETHUSD")]).ticks) == 1


def test_invalid_message_is_reported_with_its_own_reason_not_as_unobserved() -> None:
    result = Ingest(["BTCUSD"]).accept([bad_tick(symbol="ETHUSD", ts=0)])
    assert dict(result.rejected_by_reason) == {"symbol_mismatch": 1}


def test_seq_jump_counts_the_missing_messages() -> None:
    ingest = Ingest()
    result = ingest.accept([tick(src="a", seq=1), tick(src="a", seq=2), tick(src="a", seq=5)])
    assert result.seq_gaps == 2
    assert ingest.gaps_by_src == {"a": 2}


def test_first_seen_seq_is_never_a_gap() -> None:
    ingest = Ingest()
    assert ingest.accept([tick(src="a", seq=1000)]).seq_gaps == 0
    assert ingest.accept([tick(src="b", seq=7), tick(src="b", seq=8)]).seq_gaps == 0


def test_seq_gaps_are_counted_per_src() -> None:
    ingest = Ingest()
    result = ingest.accept([
        tick(src="a", seq=1), tick(src="b", seq=10), tick(src="a", seq=2), tick(src="b", seq=11),
        tick(src="a", seq=4), tick(src="b", seq=15),
    ])
    assert result.seq_gaps == 1 + 3
    assert ingest.gaps_by_src == {"a": 1, "b": 3}


def test_duplicate_and_regressing_seq_are_not_gaps() -> None:
    ingest = Ingest()
    result = ingest.accept([tick(src="a", seq=s) for s in (1, 2, 2, 1, 3, 0, 4)])
    assert result.seq_gaps == 0
    assert len(result.ticks) == 7  # duplicates are still delivered


def test_seq_regression_does_not_lower_the_high_water_mark() -> None:
    ingest = Ingest()
    result = ingest.accept([tick(src="a", seq=s) for s in (5, 3, 6)])
    assert result.seq_gaps == 0


def test_seq_gaps_span_batches() -> None:
    ingest = Ingest()
    assert ingest.accept([tick(src="a", seq=1)]).seq_gaps == 0
    assert ingest.accept([tick(src="a", seq=4)]).seq_gaps == 2
    assert ingest.gaps_by_src["a"] == 2


def test_ticks_and_bars_share_a_src_sequence() -> None:
    result = Ingest().accept([tick(src="a", seq=1), bar(src="a", seq=2), tick(src="a", seq=3)])
    assert result.seq_gaps == 0


def test_messages_without_seq_are_not_tracked() -> None:
    result = Ingest().accept([tick(src="a", seq=1), tick(src="a"), tick(src="a", seq=2)])
    assert result.seq_gaps == 0


def test_messages_without_src_share_the_empty_src_sequence() -> None:
    ingest = Ingest()
    assert ingest.accept([tick(seq=1), tick(seq=3)]).seq_gaps == 1
    assert ingest.gaps_by_src == {"": 1}


def test_unwatched_symbols_of_one_src_do_not_create_false_seq_gaps() -> None:
    ingest = Ingest(["BTCUSD"])
    result = ingest.accept([tick("BTCUSD", "venue", 1), tick("ETHUSD", "venue", 2), tick("BTCUSD", "venue", 3)])
    assert result.rejected_by_reason["unobserved_symbol"] == 1
    assert result.seq_gaps == 0


def cryptofeed_ticker(exchange: str = "BINANCE", pair: str = "BTC-USDT", bid: float = 100.0) -> list[bytes]:
    return encode_cryptofeed("ticker", {"exchange": exchange, "symbol": pair, "bid": bid, "ask": bid + 1.0,
                                        "timestamp": 1717200000.5, "receipt_timestamp": 1717200000.6})


def test_cryptofeed_messages_are_ticks_counted_like_any_other() -> None:
    result = Ingest().accept([cryptofeed_ticker(), cryptofeed_ticker(bid=-1.0), [b"bar.BTC ticker"], [b"x", b"y"]],
                             wire="cryptofeed")
    assert [t.symbol for t in result.ticks] == ["BINANCE:BTC-USDT"]
    assert result.counter_deltas() == {"ticks_received": 4, "ticks_accepted": 1, "ticks_rejected": 3,
                                       "bars_received": 0, "bars_accepted": 0, "bars_rejected": 0, "seq_gaps": 0,
                                       "seq_sources_evicted": 0}
    assert dict(result.rejected_by_reason) == {"bad_price": 1, "not_json": 1, "bad_frames": 1}


def test_cryptofeed_symbols_obey_the_watch_list() -> None:
    ingest = Ingest(["COINBASE:BTC-USD"])
    result = ingest.accept([cryptofeed_ticker(), cryptofeed_ticker("COINBASE", "BTC-USD")], wire="cryptofeed")
    assert [t.symbol for t in result.ticks] == ["COINBASE:BTC-USD"]
    assert dict(result.rejected_by_reason) == {"unobserved_symbol": 1}


# ---------------------------------------------------------------------------------------------
# Stale symbols

SEC = 1_000_000_000


def test_a_watched_symbol_with_no_data_becomes_stale_once_and_recovers_with_data() -> None:
    watch = StaleWatch(2 * SEC)
    watch.watch(["A", "B"], 0)
    watch.seen(["A"], 1 * SEC)
    assert watch.check(2 * SEC) == ["B"]        # never had data: counted from when it was watched
    assert watch.check(2 * SEC + 1) == []       # already stale: one episode
    assert watch.check(3 * SEC) == ["A"]
    assert watch.stale == {"A", "B"} and watch.episodes == 2
    assert watch.seen(["A", "C"], 4 * SEC) == ["A"]
    assert watch.stale == {"B"}
    assert watch.check(6 * SEC) == ["A", "C"]   # a second episode for A; C was seen, so it is tracked
    assert watch.episodes == 4


def test_unwatching_a_symbol_clears_it_and_stale_zero_is_off() -> None:
    watch = StaleWatch(SEC)
    watch.watch(["A", "B"], 0)
    assert watch.check(5 * SEC) == ["A", "B"]
    watch.unwatch(["B"])
    assert watch.stale == {"A"}
    off = StaleWatch(0)
    off.watch(["A"], 0)
    assert off.check(10**12) == [] and not off.stale


def test_watching_again_does_not_reset_a_known_symbol() -> None:
    watch = StaleWatch(2 * SEC)
    watch.watch(["A"], 0)
    watch.watch(["A"], 5 * SEC)
    assert watch.check(2 * SEC) == ["A"]


# ---------------------------------------------------------------------------------------------
# Replay


def _bars(symbols: tuple[str, ...], n: int, skip: frozenset[tuple[str, int]] = frozenset()) -> pd.DataFrame:
    rows = []
    for i in range(n):
        for k, symbol in enumerate(symbols):
            if (symbol, i) in skip:
                continue
            price = 100.0 * (k + 1) + i
            rows.append({"symbol": symbol, "timeframe": "1h", "ts": (i + 1) * H, "open": price, "high": price + 1,
                         "low": price - 1, "close": price + 0.5, "volume": float(i)})
    frame = pd.DataFrame(rows)
    return frame.sample(frac=1.0, random_state=3).reset_index(drop=True)  # replay must sort


@pytest.mark.parametrize("chunk", [1, 2, 5, 7, 100])
def test_replay_covers_every_bar_once_in_time_order(chunk: int) -> None:
    bars = _bars(("A", "B", "C"), 10, skip={("B", 3), ("C", 0)})
    seen: list[tuple[int, str]] = []
    last_batch_end = 0
    for batch in replay_chunks(bars, chunk):
        batch_ts = np.concatenate([f.ts for f in batch])
        assert batch_ts.min() > last_batch_end  # batches move forward and never split a timestamp
        last_batch_end = int(batch_ts.max())
        for frame in batch:
            assert np.all(np.diff(frame.ts) > 0)
            assert not frame.ts.flags.writeable and not frame.close.flags.writeable
            assert frame.timeframe == "1h"
            seen += [(int(t), frame.symbol) for t in frame.ts]
    assert sorted(seen) == sorted(zip(bars["ts"].tolist(), bars["symbol"].tolist(), strict=True))
    assert len(seen) == len(bars)


def test_replay_batches_hold_about_chunk_bars_and_whole_timestamps() -> None:
    batches = list(replay_chunks(_bars(("A", "B", "C"), 4), 2))
    # 3 bars per timestamp: a chunk of 2 is widened to the whole timestamp
    assert [sum(len(f) for f in batch) for batch in batches] == [3, 3, 3, 3]
    assert [[f.symbol for f in batch] for batch in batches] == [["A", "B", "C"]] * 4


def test_replay_frames_carry_the_row_values() -> None:
    (batch,) = list(replay_chunks(_bars(("A", "B"), 3), 100))
    a = next(f for f in batch if f.symbol == "A")
    assert a.ts.tolist() == [H, 2 * H, 3 * H]
    assert a.open.tolist() == [100.0, 101.0, 102.0]
    assert a.close.tolist() == [100.5, 101.5, 102.5]
    assert a.volume.tolist() == [0.0, 1.0, 2.0]


def _batches(bars: pd.DataFrame, chunk: int) -> list[list[tuple]]:
    return [[(f.symbol, f.timeframe, f.ts.tolist(), f.open.tolist(), f.close.tolist()) for f in batch]
            for batch in replay_chunks(bars, chunk)]


@pytest.mark.parametrize("chunk", [1, 3, 100])
def test_sorted_and_shuffled_bars_replay_identically(chunk: int) -> None:
    shuffled = _bars(("C", "A", "B"), 8, skip={("A", 2)})
    ordered = shuffled.sort_values(["ts", "symbol"], kind="stable").reset_index(drop=True)
    assert _batches(shuffled, chunk) == _batches(ordered, chunk)
    reversed_symbols = ordered.copy()  # same times, symbols out of order at each time: must be sorted
    reversed_symbols = reversed_symbols.iloc[::-1].sort_values("ts", kind="stable").reset_index(drop=True)
    assert _batches(reversed_symbols, chunk) == _batches(ordered, chunk)


def test_frames_of_a_batch_come_in_symbol_order_at_each_time() -> None:
    bars = _bars(("B", "A"), 3, skip={("A", 0)})  # A is missing at the first time
    (batch,) = list(replay_chunks(bars, 100))
    assert [f.symbol for f in batch] == ["B", "A"]  # B appears first in (ts, symbol) order
    (first,) = list(replay_chunks(bars, 1))[:1]
    assert [f.symbol for f in first] == ["B"]


# --- the time rule, bounds and the watch list ------------------------------------------------

SEC = 1_000_000_000
NOW = TS + 3600 * SEC


def timed(max_future_s: float = 5.0, max_age_s: float = 86_400.0, **limits: int) -> Ingest:
    return Ingest(clock=lambda: NOW, limits=IngressLimits(int(max_future_s * SEC), int(max_age_s * SEC), **limits))


def test_a_tick_beyond_the_future_tolerance_is_rejected_and_one_within_it_accepted() -> None:
    ingest = timed()
    result = ingest.accept([tick(ts=NOW + 5 * SEC), tick(ts=NOW + 5 * SEC + 1), tick(ts=2**63 - 1),
                            tick(ts=NOW + 10 * 365 * 86_400 * SEC)])
    assert [t.ts for t in result.ticks] == [NOW + 5 * SEC]
    assert result.rejected_by_reason == {"future_timestamp": 3} and result.ticks_rejected == 3


def test_a_tick_older_than_the_age_limit_is_rejected_and_zero_switches_the_rule_off() -> None:
    messages = [tick(ts=NOW - 86_400 * SEC), tick(ts=NOW - 86_400 * SEC - 1), tick(ts=1)]
    result = timed().accept(messages)
    assert [t.ts for t in result.ticks] == [NOW - 86_400 * SEC]
    assert result.rejected_by_reason == {"old_timestamp": 2}
    assert len(timed(max_age_s=0).accept(messages).ticks) == 3


def test_the_time_rule_applies_to_bars_the_slow_path_and_cryptofeed_alike() -> None:
    far = NOW + 60 * SEC
    late_bar = encode_bar(Bar("BTCUSD", far, "1m", 100.0, 101.0, 99.0, 100.5, 3.0))
    unusual = [b"tick.BTCUSD", packb({"symbol": "BTCUSD", "ts": far, "last": 1.0, "extra": 1})]  # not the fast path
    result = timed().accept([late_bar, unusual])
    assert result.rejected_by_reason == {"future_timestamp": 2}
    assert (result.bars_rejected, result.ticks_rejected) == (1, 1)
    cryptofeed = timed().accept([cryptofeed_ticker()], wire="cryptofeed")  # stamped 2024-06-01, NOW is 2024-01-01
    assert cryptofeed.rejected_by_reason == {"future_timestamp": 1}


def test_the_time_rule_follows_the_clock() -> None:
    now = [NOW]
    ingest = Ingest(clock=lambda: now[0], limits=IngressLimits(5 * SEC, 0))
    assert ingest.accept([tick(ts=NOW + 60 * SEC)]).rejected_by_reason == {"future_timestamp": 1}
    now[0] += 60 * SEC
    assert len(ingest.accept([tick(ts=NOW + 60 * SEC)]).ticks) == 1


def test_a_rejected_tick_still_counts_for_seq_gaps() -> None:
    result = timed().accept([tick(src="a", seq=1), tick(src="a", seq=2, ts=2**63 - 1), tick(src="a", seq=4)])
    assert result.seq_gaps == 1 and len(result.ticks) == 2


def test_with_every_symbol_watched_distinct_symbols_are_capped_by_the_watch_limit() -> None:
    ingest = Ingest(WatchList(["*"], limit=2))
    result = ingest.accept([tick("A"), tick("B"), tick("C"), bar("D"), tick("A"), tick("B")])
    assert [t.symbol for t in result.ticks] == ["A", "B", "A", "B"]
    assert result.rejected_by_reason == {"symbol_limit": 2} and result.bars_rejected == 1
    slow = [b"tick.E", packb({"symbol": "E", "ts": TS, "last": 1.0, "extra": 1})]
    assert ingest.accept([slow]).rejected_by_reason == {"symbol_limit": 1}


def test_bar_timeframes_per_symbol_are_capped() -> None:
    ingest = Ingest(limits=IngressLimits(max_timeframes=2))

    def bar_of(symbol: str, timeframe: str) -> list[bytes]:
        return encode_bar(Bar(symbol, TS, timeframe, 100.0, 101.0, 99.0, 100.5, 3.0))

    result = ingest.accept([bar_of("A", "1m"), bar_of("A", "2m"), bar_of("A", "3m"), bar_of("A", "1m"),
                            bar_of("B", "3m")])
    assert [(b.symbol, b.timeframe) for b in result.bars] == [("A", "1m"), ("A", "2m"), ("A", "1m"), ("B", "3m")]
    assert result.rejected_by_reason == {"timeframe_limit": 1}


def test_seq_sources_are_bounded_forgetting_the_least_recently_seen() -> None:
    ingest = Ingest(limits=IngressLimits(max_sources=2))
    first = ingest.accept([tick(src="a", seq=1), tick(src="b", seq=1), tick(src="a", seq=2), tick(src="c", seq=1)])
    assert first.sources_evicted == 1 and first.counter_deltas()["seq_sources_evicted"] == 1
    assert set(ingest._last_seq) == {"a", "c"}  # b was the least recently seen
    second = ingest.accept([tick(src="a", seq=4), tick(src="b", seq=9)])  # b starts afresh: no gap for it
    assert second.seq_gaps == 1 and ingest.sources_evicted == 2 and dict(ingest.gaps_by_src) == {"a": 1}
    many = ingest.accept([tick(src=f"s{i}", seq=1) for i in range(10_000)])
    assert many.sources_evicted == 10_000 and len(ingest._last_seq) == 2


def test_symbols_are_checked_like_the_wire_does() -> None:
    good = ("BTCUSD", "BINANCE:BTC-USDT", "a.b_c/d", "*")
    assert check_symbols(list(good)) == good
    for bad in ("", "X" * 33, "BTC USD", "BTC\n", "€", 5):
        with pytest.raises(ValueError, match="bad symbol"):
            check_symbols(["BTCUSD", bad])


def test_unsubscribing_every_symbol_empties_the_watch_list() -> None:
    watch = WatchList(["A", "B"])
    assert watch.change((), ("A", "B")) == ([], ["A", "B"])
    assert watch.listed() == [] and "A" not in watch and not watch.everything


def test_star_switches_to_every_symbol_and_removing_it_empties_the_list() -> None:
    watch = WatchList(["A"])
    watch.change(("*",), ())
    assert watch.listed() == ["*"] and "ANYTHING" in watch
    with pytest.raises(ValueError, match="unsubscribe \\*"):
        watch.change((), ("A",))
    watch.change((), ("*",))
    assert watch.listed() == [] and "A" not in watch


def test_a_change_over_the_limit_or_with_a_bad_symbol_changes_nothing() -> None:
    watch = WatchList(["A", "B"], limit=3)
    with pytest.raises(ValueError, match="4 symbols to watch, over the limit of 3"):
        watch.change(("C", "D"), ())
    with pytest.raises(ValueError, match="bad symbol"):
        watch.change(("C", "bad symbol"), ())
    assert watch.listed() == ["A", "B"]
    assert watch.change(("C", "D"), ("A",)) == (["C", "D"], ["A"]) and watch.listed() == ["B", "C", "D"]
    with pytest.raises(ValueError, match="over the limit"):
        WatchList(["A", "B"], limit=1)


def test_leaving_every_symbol_forgets_the_symbols_it_took() -> None:
    ingest = Ingest(WatchList(["*"], limit=2))
    ingest.accept([tick("A"), tick("B"), bar("A")])
    assert ingest.change_watch((), ("*",)) == ([], ["A", "B"])
    assert ingest.seen == set() and ingest.watch.listed() == [] and not ingest._timeframes
    ingest.change_watch(("*",), ())
    assert len(ingest.accept([tick("C"), tick("D"), tick("E")]).ticks) == 2  # room for two again
