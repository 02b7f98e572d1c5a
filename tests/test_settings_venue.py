"""Settings of the venue's market data feed: defaults, and each bad value names its key."""

from __future__ import annotations

import pytest

from settings import SettingsError, load_settings

pytestmark = pytest.mark.timeout(10)


def test_venue_feed_defaults_and_environment() -> None:
    venue = load_settings(env={}).venue
    assert (venue.feed_websocket, venue.feed_backoff_max_s, venue.paper, venue.trades) == (True, 10.0, False, False)
    env = {"TRADING_VENUE_POLL_S": "0.25", "TRADING_VENUE_FEED_WEBSOCKET": "false", "TRADING_FEED_SOURCE": "venue",
           "TRADING_VENUE_ID": "binance", "TRADING_FEED_SYMBOLS": "BTC/USDT,ETH/USDT", "TRADING_VENUE_PAPER": "true"}
    settings = load_settings(env=env)
    assert (settings.venue.poll_s, settings.venue.feed_websocket, settings.feed.symbols) == (
        0.25, False, ("BTC/USDT", "ETH/USDT"))
    assert settings.venue.paper and not settings.venue.trades  # market data from binance, orders on paper
    assert load_settings(env={}, overrides={"venue.id": "binance"}).venue.trades


@pytest.mark.parametrize(("values", "key"), [
    ({"venue.backoff_s": 5, "venue.feed_backoff_max_s": 1}, "venue.feed_backoff_max_s"),
    ({"feed.source": "venue"}, "venue.id"),  # no exchange named
    ({"feed.source": "venue", "venue.id": "binance", "feed.symbols": ("*",)}, "feed.symbols"),
])
def test_a_bad_venue_feed_setting_names_its_key(values: dict, key: str) -> None:
    with pytest.raises(SettingsError, match=f"'{key}'"):
        load_settings(env={}, overrides=values)
