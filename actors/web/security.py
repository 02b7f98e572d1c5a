"""Who may use the HTTP server: anyone on loopback by default, only holders of the token elsewhere."""

from __future__ import annotations

import hmac

from settings import check_listen, is_loopback_host

__all__ = ["authorized", "http_access"]


def http_access(listen: str, token: str) -> tuple[str, int] | None:
    """The ``(host, port)`` to serve on, or None when HTTP is off.

    Raises ValueError for an address that is not HOST:PORT, and for one off loopback with no token:
    the server must not start exposed.
    """
    address = check_listen(listen)
    if address is not None and not token and not is_loopback_host(address[0]):
        raise ValueError(f"refusing to serve HTTP on {listen}: a non-loopback address requires a token "
                         "(set http.token or TRADING_HTTP_TOKEN, at least 16 characters)")
    return address


def authorized(token: str, header: str | None, query: str | None) -> bool:
    """Whether a request may pass: no token is configured, or it carries the token as
    ``Authorization: Bearer TOKEN`` or as ``?token=TOKEN`` (what a browser's EventSource can send).
    Compared in constant time."""
    if not token:
        return True
    offered = ""
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer":
            offered = value.strip()
    if not offered and query:
        offered = query
    return bool(offered) and hmac.compare_digest(offered.encode("utf-8"), token.encode("utf-8"))
