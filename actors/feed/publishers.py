"""How many publishers may connect to an ingress socket: a ZAP handler that refuses a new handshake
while ``ingress.max_publishers`` connections are open, counted from the socket's monitor events.

ZeroMQ asks the context's ZAP handler about every handshake on a socket with a ``zap_domain``, for
the NULL mechanism as well as CURVE; with CURVE the handler also checks the client's public key
against the authorised ones. A connection counts from its TCP accept until it closes (one that never
completes its handshake is dropped by ZeroMQ after its handshake interval, 30 s).
"""

from __future__ import annotations

import threading
from pathlib import Path

import zmq
import zmq.auth
from loguru import logger
from zmq.utils import z85
from zmq.utils.monitor import parse_monitor_message

__all__ = ["PublisherGate"]

ZAP_ENDPOINT = "inproc://zeromq.zap.01"
ZAP_DOMAIN = b"ingress"
_WAIT_MS = 100  # how often the gate's thread looks whether it is to stop
_EVENTS = zmq.EVENT_ACCEPTED | zmq.EVENT_DISCONNECTED


class PublisherGate:
    """Answers the ZAP requests for one ingress socket in its own thread, which alone reads the
    socket's monitor; ``take_refused`` and ``connected`` may be called from any thread."""

    def __init__(self, context: zmq.Context, sock: zmq.Socket, max_publishers: int, endpoint: str,
                 curve_clients: str | None = None) -> None:
        """Make ``sock`` (not bound yet) consult the gate, and start the gate's thread."""
        self.max_publishers = max_publishers
        self.endpoint = endpoint
        self._clients = (frozenset(zmq.auth.load_certificates(Path(curve_clients)))
                         if curve_clients is not None else None)
        self._lock = threading.Lock()
        self._open: set[int] = set()  # file descriptors of the connections accepted and not yet closed
        self._refused = 0
        self._full = False  # a refusal was logged since the last accepted handshake
        self._stop = threading.Event()
        ready = threading.Event()
        monitor = f"inproc://ingress-monitor-{id(self):x}"
        sock.zap_domain = ZAP_DOMAIN
        sock.monitor(monitor, _EVENTS)
        self._thread = threading.Thread(target=self._run, args=(context, monitor, ready),
                                        name="ingress-publishers", daemon=True)
        self._thread.start()
        ready.wait()

    def connected(self) -> int:
        """The connections open now (publishers, and peers still in their handshake)."""
        with self._lock:
            return len(self._open)

    def take_refused(self) -> int:
        """The handshakes refused for being over the bound since the last call."""
        with self._lock:
            refused, self._refused = self._refused, 0
        return refused

    def stop(self) -> None:
        """Stop the thread; it closes its sockets (linger 0)."""
        self._stop.set()
        self._thread.join()

    def _run(self, context: zmq.Context, monitor: str, ready: threading.Event) -> None:
        zap = context.socket(zmq.ROUTER)
        zap.linger = 0
        events = context.socket(zmq.PAIR)
        events.linger = 0
        try:
            zap.bind(ZAP_ENDPOINT)
            events.connect(monitor)
        finally:
            ready.set()
        poller = zmq.Poller()
        poller.register(zap, zmq.POLLIN)
        poller.register(events, zmq.POLLIN)
        try:
            while not self._stop.is_set():
                ready_socks = dict(poller.poll(_WAIT_MS))
                if events in ready_socks:
                    self._read_events(events)
                if zap in ready_socks:
                    self._read_events(events)  # a peer's accept comes before its handshake
                    self._answer(zap, zap.recv_multipart())
        finally:
            zap.close(0)
            events.close(0)

    def _read_events(self, events: zmq.Socket) -> None:
        """Take every waiting monitor event into the set of open connections."""
        while True:
            try:
                event = parse_monitor_message(events.recv_multipart(zmq.NOBLOCK))
            except zmq.Again:
                return
            with self._lock:
                if event["event"] == zmq.EVENT_ACCEPTED:
                    self._open.add(event["value"])
                elif event["event"] == zmq.EVENT_DISCONNECTED:
                    self._open.discard(event["value"])

    def _answer(self, zap: zmq.Socket, request: list[bytes]) -> None:
        """Reply to one ZAP request: 200 to let the peer in, 400 to refuse it."""
        if len(request) < 8:  # routing id, empty, version, request id, domain, address, identity, mechanism
            logger.error("malformed ZAP request on the ingress {}: {} frames", self.endpoint, len(request))
            return
        peer, _, version, request_id, _, address, _, mechanism = request[:8]
        credentials = request[8:]
        status, reason = b"200", b"OK"
        if self._clients is not None and (mechanism != b"CURVE" or not credentials
                                          or z85.encode(credentials[0]) not in self._clients):
            status, reason = b"400", b"unauthorised"
            logger.warning("ingress {}: refused a publisher from {}: its key is not authorised", self.endpoint,
                           address.decode(errors="replace"))
        else:
            with self._lock:
                others = len(self._open) - 1  # the asking peer's own connection is open too
                if others >= self.max_publishers:
                    status, reason = b"400", b"too many publishers"
                    self._refused += 1
                    first, self._full = not self._full, True
                else:
                    first, self._full = False, False
            if status != b"200" and first:
                logger.warning("ingress {}: {} publishers connected (ingress.max_publishers); refusing more "
                               "(counted in publishers_refused)", self.endpoint, self.max_publishers)
        zap.send_multipart([peer, b"", version, request_id, status, reason, b"", b""])
