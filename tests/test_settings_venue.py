"""Settings of the venue and its market data feed: defaults, and each bad value names its key."""

from __future__ import annotations

import pytest

from settings import SettingsError, load_settings

pytestmark = pytest.mark.timeout(10)


def test_venue_defaults_and_environment() -> None:
    venue = load_settings(env={}).venue
    assert (venue.id, venue.url, venue.poll_s, venue.feed_websocket) == ("paper", "", 1.0, True)
    assert (venue.feed_timeout_s, venue.feed_backoff_s, venue.feed_backoff_max_s) == (10.0, 0.5, 10.0)
    env = {"TRADING_VENUE_POLL_S": "0.25", "TRADING_VENUE_FEED_WEBSOCKET": "false", "TRADING_FEED_SOURCE": "venue",
           "TRADING_VENUE_ID": "binance", "TRADING_FEED_SYMBOLS": "BTC/USDT,ETH/USDT"}
    settings = load_settings(env=env)
    assert (settings.venue.poll_s, settings.venue.feed_websocket, settings.feed.symbols) == (
        0.25, False, ("BTC/USDT", "ETH/USDT"))


@pytest.mark.parametrize(("values", "key"), [
    ({"venue.poll_s": 0}, "venue.poll_s"),
    ({"venue.feed_timeout_s": -1}, "venue.feed_timeout_s"),
    ({"venue.feed_backoff_s": 5, "venue.feed_backoff_max_s": 1}, "venue.feed_backoff_s"),
    ({"venue.id": "Binance!"}, "venue.id"),
    ({"venue.url": "ftp://x"}, "venue.url"),
    ({"feed.source": "venue"}, "venue.id"),  # no exchange named
    ({"feed.source": "venue", "venue.id": "binance", "feed.symbols": ("*",)}, "feed.symbols"),
])
def test_a_bad_venue_setting_names_its_key(values: dict, key: str) -> None:
    with pytest.raises(SettingsError, match=f"'{key}'"):
        load_settings(env={}, overrides=values)
