"""Before a live run on a venue starts anything: credentials given, accepted by the venue, symbols listed."""

from __future__ import annotations

import ccxt

from actors.store.exchange import Retry, VenueError
from actors.venue.actor import quote_of
from actors.venue.breaker import CircuitBreaker
from actors.venue.credentials import load_credentials
from actors.venue.session import VenueSession, open_trading
from settings import Settings
from supervisors.errors import StartupError

__all__ = ["venue_preflight"]


def venue_preflight(settings: Settings) -> str:
    """Check the venue: credentials (environment or key file), its markets, the traded symbols and their one
    quote currency, and the credentials themselves (a balance read). Return a line saying what was found;
    StartupError (one line; authentication named when the venue refused the credentials) otherwise."""
    v = settings.venue
    try:
        credentials = load_credentials(v.id, v.key_file)
    except Exception as exc:  # SettingsError: one line already
        raise StartupError(str(exc)) from None
    exchange = open_trading(v.id, credentials, v.url, v.sandbox, v.timeout_s)
    session = VenueSession(exchange, Retry(retries=v.retries, backoff_s=v.backoff_s), CircuitBreaker())
    where = f"{v.id}{' testnet' if v.sandbox else ''}{' at ' + v.url if v.url else ''}"
    try:
        markets = session.load()
        symbols = tuple(s for s in settings.feed.symbols if s != "*")
        quote = quote_of(markets, symbols)
        balances = session.balances()
    except VenueError as exc:
        if isinstance(exc.__cause__, ccxt.AuthenticationError):
            raise StartupError(f"venue {where}: authentication failed: the venue refused the API key or secret "
                               f"({type(exc.__cause__).__name__})") from None
        raise StartupError(f"venue {where}: {exc}") from None
    except ccxt.NotSupported as exc:
        raise StartupError(f"venue {where}: {exc}") from None
    except ValueError as exc:
        raise StartupError(f"venue {where}: {exc}") from None
    return (f"venue {where}: credentials from {credentials.origin.split('/')[-1] if credentials.origin else '?'} "
            f"accepted; {quote} balance {balances.get(quote, 0.0):,.2f}")
