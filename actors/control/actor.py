"""Control actor: the control socket (ROUTER, answering REQ and DEALER clients) and the events
socket (PUB)."""

from __future__ import annotations

from typing import Any

import zmq

from actors.control.commands import handle_request
from actors.control.security import CurveServer
from messages.codec import MAX_CONTROL_READ, decode_control, encode_control, encode_event
from messages.system import Internal, Publish
from supervisors.actor import SupervisedActor

__all__ = ["ControlActor", "split_envelope"]


class _Poll(Internal):
    __slots__ = ()


_POLL = _Poll()
_NOBLOCK = int(zmq.NOBLOCK)
TAKE_MAX = 256  # most requests taken off the socket in one round before they are answered


def split_envelope(frames: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    """Split a request off a ROUTER socket into its envelope (the peer's routing id and every frame
    up to the empty delimiter a REQ client adds) and its body (the frames after it)."""
    for i in range(1, len(frames)):
        if not frames[i]:
            return frames[:i + 1], frames[i + 1:]
    return frames[:1], frames[1:]  # a DEALER that sent no delimiter


class ControlActor(SupervisedActor):
    """Answers control requests and publishes events; both sockets live in this actor's thread.

    The control socket is a ROUTER (wire-compatible with the REP that REQ and DEALER clients
    expect). Each round takes every request already waiting off the socket before answering any:
    a request left unread in libzmq's queue while this thread works (a ``metrics`` takes a few ms)
    kept its connection's state alive after the client closed it, so clients that open a new
    connection per request grew the process without bound (about 11 KiB per connection).
    """

    def setup(self) -> None:
        """Bind both sockets (actor thread)."""
        settings = self.ctx.settings.control
        context = zmq.Context.instance()
        self.view = self.ctx.deps.need("view")
        keys = self.ctx.deps.curve
        self.curve = CurveServer(context, keys) if keys is not None else None
        self.rep = context.socket(zmq.ROUTER)
        self.pub = context.socket(zmq.PUB)
        for sock in (self.rep, self.pub):
            sock.setsockopt(zmq.LINGER, 0)
            if self.curve is not None:
                self.curve.secure(sock)
        # a request over 64 KiB gets an error reply; one over this is cut off by ZeroMQ before it is read
        self.rep.setsockopt(zmq.MAXMSGSIZE, MAX_CONTROL_READ)
        try:
            self.rep.bind(settings.endpoint)
            self.pub.bind(settings.events)
        except zmq.ZMQError as exc:
            self.teardown()
            raise OSError(f"cannot bind control {settings.endpoint} / events {settings.events}: {exc}") from exc
        self.published = 0
        self.actor_ref.tell(_POLL)

    def teardown(self) -> None:
        """Close both sockets (actor thread)."""
        for name in ("rep", "pub"):
            sock = getattr(self, name, None)
            if sock is not None:
                sock.close(0)
                setattr(self, name, None)
        if getattr(self, "curve", None) is not None:
            self.curve.stop()
            self.curve = None

    def handle(self, message: Any) -> Any:
        """Serve a request or publish an event (actor thread)."""
        if message is _POLL:
            self._serve()
            self.actor_ref.tell(_POLL)
        elif isinstance(message, Publish):
            self.pub.send_multipart([message.topic.encode("utf-8"), encode_event(message.event)])
            self.published += 1
        else:
            raise TypeError(f"control cannot handle {type(message).__name__}")

    def _serve(self) -> None:
        timeout = 5 if self.actor_inbox.empty() else 0  # type: ignore[attr-defined]  # ms; bounds a message's wait
        if not self.rep.poll(timeout, zmq.POLLIN):
            return
        requests = []
        for _ in range(TAKE_MAX):
            try:
                requests.append(self.rep.recv_multipart(_NOBLOCK))
            except zmq.Again:
                break
        for frames in requests:
            envelope, body = split_envelope(frames)
            try:
                if len(body) != 1:
                    raise ValueError("request must be exactly one frame")
                request = decode_control(body[0])
                reply = handle_request(request, self.view)
            except ValueError as exc:
                reply = {"ok": False, "error": str(exc)}
            self.rep.send_multipart([*envelope, encode_control(reply)])  # to a peer that left: dropped
