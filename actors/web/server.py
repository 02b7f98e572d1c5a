"""The HTTP server: the dashboard page, its server push (Server-Sent Events), the state as JSON and
``/metrics``, on aiohttp with an event loop in a thread of its own.

Reads that may block (the views, the database, a scrape) run on a small pool of reading threads, so
the loop keeps serving. The state is built once per push for every connected page, and only while a
page is connected.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from typing import Any

from aiohttp import web
from loguru import logger

from actors.web.security import authorized

__all__ = ["WebServer"]

_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


def _page() -> bytes:
    return resources.files("actors.web").joinpath("static", "dashboard.html").read_bytes()


class WebServer:
    """Serves ``state()`` (the dashboard's JSON) and ``metrics(accept)`` (the metrics in the format an
    ``Accept`` header asks for, and its content type) on ``host:port``.

    ``start`` returns once the socket is bound (OSError if it cannot be); ``stop`` ends the streams,
    closes the socket and joins the thread. ``failure`` says why the server ended on its own.
    """

    def __init__(self, host: str, port: int, token: str, push_s: float, state: Callable[[], dict[str, Any]],
                 metrics: Callable[[str], tuple[bytes, str]]) -> None:
        self.host, self.port, self.token, self.push_s = host, port, token, push_s
        self._state, self._metrics = state, metrics
        self._page = _page()
        self._clients: set[asyncio.Queue[bytes | None]] = set()
        self._ready = threading.Event()
        self._done = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._wake: asyncio.Event | None = None
        self._reads = ThreadPoolExecutor(max_workers=2, thread_name_prefix="web-read")
        self._thread = threading.Thread(target=self._run, name=f"web-{port}", daemon=True)
        self.error: BaseException | None = None
        self.pushes = 0  # states pushed to the connected pages

    # -- from the owner's thread ---------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> None:
        """Start serving; raise OSError if the address cannot be bound, TimeoutError if it takes too long."""
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"the HTTP server did not start within {timeout:g}s")
        if self.error is not None:
            self._thread.join(timeout)
            raise OSError(f"cannot serve HTTP on {self.host}:{self.port}: {self.error}") from self.error

    def failure(self, timeout: float) -> str | None:
        """Wait up to ``timeout`` seconds; return why the server ended if it did, else None."""
        if not self._done.wait(timeout):
            return None
        return repr(self.error) if self.error is not None else "it ended"

    def stop(self, timeout: float = 5.0) -> None:
        """End every stream, close the socket and join the thread."""
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and not self._done.is_set():
            try:
                loop.call_soon_threadsafe(stopping.set)
            except RuntimeError:  # the loop closed meanwhile
                pass
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._reads.shutdown(wait=False, cancel_futures=True)

    # -- the server's thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # noqa: BLE001 -- reported to the owner, who fails and is restarted
            self.error = exc
            if self._ready.is_set():
                logger.opt(exception=exc).error("the HTTP server on {}:{} failed", self.host, self.port)
        finally:
            loop.close()
            self._ready.set()
            self._done.set()

    async def _serve(self) -> None:
        self._stopping, self._wake = asyncio.Event(), asyncio.Event()
        app = web.Application(middlewares=[self._authorize])
        app.router.add_get("/", self._dashboard)
        app.router.add_get("/events", self._events)
        app.router.add_get("/api/state", self._state_json)
        app.router.add_get("/metrics", self._metrics_text)
        app.on_shutdown.append(self._end_streams)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        tasks: list[asyncio.Future[Any]] = []
        try:
            await web.TCPSite(runner, self.host, self.port).start()
            self._ready.set()
            pusher = asyncio.ensure_future(self._push())
            tasks = [pusher, asyncio.ensure_future(self._stopping.wait())]
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            if pusher.done():
                pusher.result()  # raises what ended it
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await runner.cleanup()

    async def _read(self, read: Callable[[], Any]) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._reads, read)

    @web.middleware
    async def _authorize(self, request: web.Request,
                         handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        if not authorized(self.token, request.headers.get("Authorization"), request.query.get("token")):
            return web.json_response({"error": "a token is required: send 'Authorization: Bearer TOKEN' or ?token=TOKEN"},
                                     status=401, headers={"WWW-Authenticate": 'Bearer realm="actortrade"', **_HEADERS})
        return await handler(request)

    async def _dashboard(self, request: web.Request) -> web.Response:
        return web.Response(body=self._page, content_type="text/html", charset="utf-8", headers=_HEADERS)

    async def _state_json(self, request: web.Request) -> web.Response:
        return web.json_response(await self._read(self._state), headers=_HEADERS)

    async def _metrics_text(self, request: web.Request) -> web.Response:
        accept = request.headers.get("Accept", "")
        body, content_type = await self._read(lambda: self._metrics(accept))
        return web.Response(body=body, headers={"Content-Type": content_type, **_HEADERS})

    async def _events(self, request: web.Request) -> web.StreamResponse:
        """One page's stream: an ``event: state`` with the whole state at every push, until it leaves."""
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "X-Accel-Buffering": "no",
                                               **_HEADERS})
        await response.prepare(request)
        queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=1)
        self._clients.add(queue)
        self._wake.set()  # type: ignore[union-attr]  # a new page gets a state at once
        try:
            await response.write(f"retry: {max(1000, int(self.push_s * 1000))}\n\n".encode())
            while (data := await queue.get()) is not None:
                await response.write(data)
        except ConnectionError:
            pass  # the page left
        finally:
            self._clients.discard(queue)
        return response

    async def _push(self) -> None:
        """Build the state and hand it to every connected page, every ``push_s`` or at once for a new page."""
        wake = self._wake
        assert wake is not None
        while True:
            wake.clear()
            if self._clients:
                state = await self._read(self._state)
                data = f"event: state\ndata: {json.dumps(state, separators=(',', ':'))}\n\n".encode()
                for queue in list(self._clients):
                    if queue.full():  # a slow page skips to the latest state
                        queue.get_nowait()
                    queue.put_nowait(data)
                self.pushes += 1
            try:
                await asyncio.wait_for(wake.wait(), self.push_s)
            except TimeoutError:
                pass

    async def _end_streams(self, app: web.Application) -> None:
        for queue in list(self._clients):
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(None)
