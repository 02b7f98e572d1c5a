"""Control-socket and events-socket clients: one request, one reply, with a timeout; or a tail of events."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import zmq

from actors.control.security import secure_client
from messages.codec import encode_control, unpackb

__all__ = ["events", "request"]


def _socket(kind: int, server_key: str | None, client_key: str | None) -> zmq.Socket:
    """A socket of ``kind`` with linger 0, a CURVE client when both key files are given."""
    sock = zmq.Context.instance().socket(kind)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        if server_key or client_key:
            if not (server_key and client_key):
                raise ValueError("CURVE needs both the server public key and the client secret key")
            secure_client(sock, server_key, client_key)
    except ValueError:
        sock.close(0)
        raise
    return sock


def request(endpoint: str, message: dict[str, Any], timeout: float = 5.0,
            server_key: str | None = None, client_key: str | None = None) -> dict[str, Any]:
    """Send ``message`` to the control socket at ``endpoint`` and return the reply map.

    With ``server_key`` (the server's public key file) and ``client_key`` (this client's
    secret key file) the connection uses CURVE. Raises TimeoutError when nothing answers
    within ``timeout`` seconds (also what an unauthorised key sees).
    """
    sock = _socket(zmq.REQ, server_key, client_key)
    try:
        sock.connect(endpoint)
        sock.send(encode_control(message))
        if not sock.poll(int(timeout * 1000), zmq.POLLIN):
            raise TimeoutError(f"no reply from {endpoint} within {timeout:g}s (is the system running?)")
        reply = unpackb(sock.recv())
    finally:
        sock.close(0)
    if not isinstance(reply, dict):
        raise ValueError(f"bad reply from {endpoint}: not a map")
    return reply


def events(endpoint: str, topic: str = "", count: int | None = None,
           server_key: str | None = None, client_key: str | None = None) -> Iterator[tuple[str, Any]]:
    """Yield ``(topic, event)`` from the events socket at ``endpoint`` for topics starting with ``topic``
    (every topic when empty), until ``count`` events (or forever: Ctrl-C ends the wait). CURVE as in
    :func:`request`. Events published before the subscription reached the socket are not seen (PUB/SUB)."""
    sock = _socket(zmq.SUB, server_key, client_key)
    try:
        sock.setsockopt(zmq.SUBSCRIBE, topic.encode("utf-8"))
        sock.connect(endpoint)
        seen = 0
        while count is None or seen < count:
            if not sock.poll(200, zmq.POLLIN):  # a bounded wait: Ctrl-C is seen between polls
                continue
            frames = sock.recv_multipart()
            if len(frames) != 2:
                continue  # not an event of this protocol
            seen += 1
            yield frames[0].decode("utf-8", "replace"), unpackb(frames[1])
    finally:
        sock.close(0)
