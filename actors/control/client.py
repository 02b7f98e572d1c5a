"""A control-socket client: one request, one reply, with a timeout."""

from __future__ import annotations

from typing import Any

import zmq

from messages.codec import encode_control, unpackb

__all__ = ["request"]


def request(endpoint: str, message: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
    """Send ``message`` to the control socket at ``endpoint`` and return the reply map.

    Raises TimeoutError when nothing answers within ``timeout`` seconds.
    """
    sock = zmq.Context.instance().socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
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
