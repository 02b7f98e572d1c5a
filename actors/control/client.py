"""A control-socket client: one request, one reply, with a timeout."""

from __future__ import annotations

from typing import Any

import zmq

from actors.control.security import secure_client
from messages.codec import encode_control, unpackb

__all__ = ["request"]


def request(endpoint: str, message: dict[str, Any], timeout: float = 5.0,
            server_key: str | None = None, client_key: str | None = None) -> dict[str, Any]:
    """Send ``message`` to the control socket at ``endpoint`` and return the reply map.

    With ``server_key`` (the server's public key file) and ``client_key`` (this client's
    secret key file) the connection uses CURVE. Raises TimeoutError when nothing answers
    within ``timeout`` seconds (also what an unauthorised key sees).
    """
    sock = zmq.Context.instance().socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        if server_key or client_key:
            if not (server_key and client_key):
                raise ValueError("CURVE needs both the server public key and the client secret key")
            secure_client(sock, server_key, client_key)
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
