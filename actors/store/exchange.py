"""A venue's public REST API through ccxt: opening it (optionally rebased onto another address) and
calling it with retries.

``open_venue`` builds ccxt's exchange class with its rate limiter on. ``rebase_urls`` moves every
endpoint of a venue (``urls['api']``: REST and, in ccxt.pro, websocket) onto one base URL, for
testnets, proxies and loopback doubles. ``Retry.call`` repeats a call that met a rate limit (HTTP
429/418), an unavailable venue (5xx) or a network error (ccxt's ``OperationFailed`` family, the errors
it says a repeat may cure), with exponential backoff and jitter, and
turns the last failure into one line (:class:`VenueError`).
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import ccxt
from loguru import logger

from supervisors.errors import DataError, TradingError

__all__ = ["Retry", "VenueError", "check_venue_url", "open_venue", "rebase_urls"]

T = TypeVar("T")


class VenueError(TradingError, RuntimeError):
    """A venue refused or failed a request (after the retries, where it is worth retrying); one line."""


def check_venue_url(url: str) -> str:
    """``url`` if it is an ``http(s)://host[:port][/path]`` base; ValueError (one line) otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ValueError(f"{url!r} is not a base URL like http://127.0.0.1:8080 or https://testnet.example.com/api")
    return url.rstrip("/")


def rebase_urls(api: Any, base: str) -> Any:
    """``api`` (a ccxt ``urls['api']`` entry: a URL, or a dict/list of them) with every URL's scheme and
    host replaced by ``base``'s and ``base``'s path put before its own; websocket URLs stay websocket
    (``wss`` over ``https``, ``ws`` over ``http``)."""
    if isinstance(api, dict):
        return {key: rebase_urls(value, base) for key, value in api.items()}
    if isinstance(api, list):
        return [rebase_urls(value, base) for value in api]
    if not isinstance(api, str) or "://" not in api:
        return api
    target, parts = urlsplit(base), urlsplit(api)
    secure = target.scheme == "https"
    scheme = ("wss" if secure else "ws") if parts.scheme in ("ws", "wss") else target.scheme
    return urlunsplit((scheme, target.netloc, target.path.rstrip("/") + parts.path, parts.query, parts.fragment))


def open_venue(venue: str, url: str | None = None, timeout_s: float = 10.0) -> ccxt.Exchange:
    """ccxt's exchange ``venue`` (an id like ``binance``) for public data, rate limiter on, requests timing
    out after ``timeout_s``; with ``url`` every endpoint rebased onto it. DataError for an unknown id."""
    if venue not in ccxt.exchanges:
        near = [name for name in ccxt.exchanges if name.startswith(venue[:3].lower())][:5]
        hint = (f"; did you mean {', '.join(near)}?" if near
                else f"; ccxt knows {len(ccxt.exchanges)} (e.g. binance, kraken)")
        raise DataError(f"unknown venue {venue!r}{hint}")
    exchange = getattr(ccxt, venue)({"enableRateLimit": True, "timeout": int(timeout_s * 1000)})
    if url is not None:
        exchange.urls["api"] = rebase_urls(exchange.urls["api"], check_venue_url(url))
    return exchange


def _one_line(exc: BaseException) -> str:
    text = re.sub(r"\s+", " ", str(exc)).strip() or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _retry_after(exchange: ccxt.Exchange) -> float | None:
    """The seconds the venue asked to wait in its last reply's ``Retry-After``, if it gave a number."""
    headers = getattr(exchange, "last_response_headers", None) or {}
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    try:
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None


@dataclass(slots=True)
class Retry:
    """How a call to a venue is repeated: up to ``retries`` more tries after the first, waiting
    ``backoff_s * 2**n`` (capped at ``cap_s``) between them, half of it random (jitter), and at least
    as long as the venue's ``Retry-After``. ``retried`` counts the repeats made so far."""

    retries: int = 5
    backoff_s: float = 1.0
    cap_s: float = 60.0
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)
    retried: int = 0

    def delay(self, attempt: int, asked_s: float | None = None) -> float:
        """The wait before repeat number ``attempt`` (0 for the first)."""
        full = min(self.cap_s, self.backoff_s * 2 ** attempt)
        wait = full / 2 + self.rng.uniform(0, full / 2)
        return max(wait, min(asked_s, self.cap_s)) if asked_s is not None else wait

    def call(self, exchange: ccxt.Exchange, what: str, fn: Callable[[], T]) -> T:
        """``fn()``, repeated on rate limits, unavailability and network errors; VenueError naming
        ``what`` after the last try, or at once for an error that a repeat would not cure."""
        attempt = 0
        while True:
            try:
                return fn()
            except ccxt.OperationFailed as exc:  # ccxt's errors a repeat may cure: 429/418, 5xx, timeouts, network
                if attempt >= self.retries:
                    raise VenueError(f"{exchange.id}: {what} failed after {attempt + 1} tries: "
                                     f"{type(exc).__name__}: {_one_line(exc)}") from exc
                wait = self.delay(attempt, _retry_after(exchange))
                logger.warning("{}: {} failed ({}: {}); try {} of {} in {:.2f}s", exchange.id, what,
                               type(exc).__name__, _one_line(exc)[:120], attempt + 2, self.retries + 1, wait)
                self.sleep(wait)
                attempt += 1
                self.retried += 1
            except ccxt.BaseError as exc:
                raise VenueError(f"{exchange.id}: {what} refused: {type(exc).__name__}: {_one_line(exc)}") from exc
