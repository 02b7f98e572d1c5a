"""Web actor: owns the HTTP server (dashboard, server push, ``/metrics``), which runs in a thread of
its own; the actor watches it and fails, to be restarted, if it stops."""

from __future__ import annotations

from functools import partial
from typing import Any

from actors.web.metrics import metrics_registry, render
from actors.web.security import http_access
from actors.web.server import WebServer
from actors.web.state import dashboard_state
from messages.system import Internal
from supervisors.actor import SupervisedActor

__all__ = ["WebActor"]


class _Watch(Internal):
    __slots__ = ()


_WATCH = _Watch()


class WebActor(SupervisedActor):
    """Serves what the control socket shows, read-only, to browsers and Prometheus; never on the
    pipeline's path (it reads views, and the database read-only)."""

    WATCH_S = 0.2  # how long one look at the server waits; bounds how long a message to this actor waits

    def setup(self) -> None:
        """Start the server on ``http.listen`` (actor thread); refuse an exposed address without a token."""
        http = self.ctx.settings.http
        view = self.ctx.deps.need("view")
        address = http_access(http.listen, http.token)
        if address is None:
            raise ValueError("http.listen is off; the web actor has nothing to serve")
        host, port = address
        registry = metrics_registry(view)
        self.server = WebServer(host, port, http.token, http.push_s,
                                state=partial(dashboard_state, view, self.ctx.deps.db_path, self.ctx.deps.run),
                                metrics=partial(render, registry))
        self.server.start()
        shown = f"[{host}]" if ":" in host else host
        self.log.info("dashboard on http://{}:{}/ and Prometheus metrics on /metrics{}", shown, port,
                      " (token required)" if http.token else "")
        self.actor_ref.tell(_WATCH)

    def teardown(self) -> None:
        """Stop the server (actor thread)."""
        server = getattr(self, "server", None)
        if server is not None:
            server.stop()
            self.server = None

    def handle(self, message: Any) -> Any:
        """Look at the server; fail if it ended (actor thread)."""
        if message is not _WATCH:
            raise TypeError(f"web cannot handle {type(message).__name__}")
        failure = self.server.failure(self.WATCH_S)
        if failure is not None:
            raise RuntimeError(f"the HTTP server stopped: {failure}")
        self.actor_ref.tell(_WATCH)
