"""The web actor in a live system: /metrics, the dashboard's state and stream, the token, restarts.

Real HTTP over loopback (urllib), a real ingress socket fed by an outside publisher, a real sqlite
file. The ticks are real prices: Alphabet's daily closes (GOOG, 2004-2013) shipped in backtesting.py.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
from backtesting.test import GOOG
from prometheus_client.parser import text_string_to_metric_families

from actors.feed.actor import IngressSocket
from actors.feed.publisher import Publisher
from actors.store.reader import StoreReader
from messages.market import Tick
from settings import Settings
from supervisors.deps import Deps
from supervisors.system import System
from supervisors.tree import tree_for
from tests.conftest import free_endpoint
from tests.helpers import ROOT, ctl, wait_until

pytestmark = pytest.mark.timeout(60)

TOKEN = "dashboard-token-0123456789"
ACTORS = {"feed", "buffer", "feature", "model", "strategy", "executor", "store", "control", "web"}


def goog_ticks() -> list[Tick]:
    """One tick per trading day at GOOG's close, stamped at the day's end (UTC)."""
    stamps = (pd.DatetimeIndex(GOOG.index).tz_localize("UTC") + pd.Timedelta(hours=23)).as_unit("ns").asi8
    return [Tick("GOOG", int(ts), float("nan"), float("nan"), float(close), float(volume), "goog", i + 1)
            for i, (ts, close, volume) in enumerate(zip(stamps, GOOG["Close"], GOOG["Volume"], strict=True))]


def web_settings(live_settings: Settings, **values: Any) -> Settings:
    port = free_endpoint().rsplit(":", 1)[1]
    return live_settings.with_values({
        "http.listen": f"127.0.0.1:{port}", "http.push_s": 0.1, "feed.symbols": ("GOOG",),
        "ingress.max_age_s": 0.0, "buffer.timeframe": "1d", "buffer.timeframes": ("1d",), **values,
    })


@pytest.fixture
def web(live_settings: Settings, request: pytest.FixtureRequest) -> Iterator[tuple[System, str]]:
    """A live system with the web actor; its base URL."""
    settings = web_settings(live_settings, **getattr(request, "param", {}))
    system = System(settings, "live", Deps.of(settings, "live", ingress=IngressSocket(settings.ingress.endpoint, 100_000)),
                    tree=tree_for("live", web=True))
    system.start()
    try:
        yield system, f"http://{settings.http.listen}"
    finally:
        system.stop()


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """GET ``url``: status, headers and body (an error status is returned, not raised)."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=5) as reply:
            return reply.status, dict(reply.headers), reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def scrape(base: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """``/metrics`` parsed as Prometheus text: each family by name."""
    status, reply_headers, body = get(f"{base}/metrics", headers)
    assert status == 200, body
    assert reply_headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return {family.name: family for family in text_string_to_metric_families(body.decode())}


def value(families: dict[str, Any], name: str, **labels: str) -> float:
    family = families[name]
    samples = [s for s in family.samples if s.labels == labels and s.name in (name, f"{name}_total")]
    assert len(samples) == 1, (name, labels, family.samples)
    return samples[0].value


def publish(endpoint: str, ticks: list[Tick]) -> None:
    publisher = Publisher(endpoint)
    try:
        publisher.wait_for_subscriber()
        for tick in ticks:
            publisher.send_tick(tick)
    finally:
        publisher.close()


def first_events(url: str, count: int) -> list[dict[str, Any]]:
    """The first ``count`` states pushed on the stream at ``url``."""
    states = []
    with urllib.request.urlopen(url, timeout=10) as stream:
        assert stream.headers["Content-Type"] == "text/event-stream"
        event = ""
        for raw in stream:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                event = line[len("event: "):]
            elif line.startswith("data: ") and event == "state":
                states.append(json.loads(line[len("data: "):]))
                if len(states) == count:
                    return states
    raise AssertionError("the stream ended early")


def test_metrics_parse_as_prometheus_text_and_count_ticks_as_they_flow(web: tuple[System, str]) -> None:
    system, base = web
    ticks = goog_ticks()
    families = scrape(base)
    assert value(families, "actortrade_ticks_received") == 0
    for name in sorted(ACTORS):
        assert value(families, "actortrade_actor_restarts", actor=name) == 0
        assert value(families, "actortrade_actor_running", actor=name) == 1
    half = len(ticks) // 2
    publish(system.settings.ingress.endpoint, ticks[:half])
    wait_until(lambda: value(scrape(base), "actortrade_ticks_received") == half, 20, "the first half to be counted")
    publish(system.settings.ingress.endpoint, ticks[half:] + [Tick("GOOG", 5, 2.0, 1.0, 1.5, 1.0, "bad", 1)])
    families = wait_until(lambda: (f := scrape(base)) and value(f, "actortrade_ticks_received") == len(ticks) + 1 and f,
                          20, "every tick to be counted")
    assert value(families, "actortrade_ticks_accepted") == len(ticks)
    assert value(families, "actortrade_ticks_rejected", reason="crossed_quote") == 1
    assert system.drain(timeout=20)

    families = scrape(base)
    counters = ctl(system.settings.control.endpoint, "metrics")["counters"]
    assert value(families, "actortrade_ticks_processed") == counters["ticks_processed"] == len(ticks)
    assert value(families, "actortrade_signals") == counters["signals"] > 0
    positions = ctl(system.settings.control.endpoint, "positions")
    assert value(families, "actortrade_equity") == pytest.approx(positions["equity"], rel=1e-12)
    assert value(families, "actortrade_position", symbol="GOOG") == positions["positions"]["GOOG"]["qty"]
    latency = families["actortrade_stage_latency_seconds"]
    assert latency.type == "histogram"
    stages = {s.labels["stage"] for s in latency.samples}
    assert {"feed", "buffer", "executor"} <= stages
    for stage in stages:
        buckets = [s.value for s in latency.samples if s.labels["stage"] == stage]
        assert buckets == sorted(buckets), stage  # cumulative
        assert buckets[-1] == value(families, "actortrade_stage_latency_seconds_gcount", stage=stage) > 0
        assert value(families, "actortrade_stage_latency_seconds_gsum", stage=stage) > 0
    exposed = {sample.name for family in families.values() for sample in family.samples}
    grafana = set(re.findall(r"actortrade_\w+", (ROOT / "docs" / "grafana-dashboard.json").read_text()))
    assert grafana and grafana <= exposed, grafana - exposed  # the example dashboard queries what is served


def test_the_state_shows_the_tree_positions_signals_and_equity_of_a_real_run(web: tuple[System, str]) -> None:
    system, base = web
    ticks = goog_ticks()
    publish(system.settings.ingress.endpoint, ticks)
    wait_until(lambda: system.counters.get("ticks_received") == len(ticks), 20, "every tick")
    assert system.drain(timeout=20)
    status, headers, body = get(f"{base}/api/state")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    state = json.loads(body)
    health = state["health"]
    assert health["status"] in ("healthy", "degraded") and set(health["actors"]) == ACTORS
    assert {a["state"] for a in health["actors"].values()} == {"running"}
    assert set(health["tree"]["root"]["children"]) == {"execution", "control", "web", "signals", "market"}
    assert state["metrics"]["counters"]["ticks_processed"] == len(ticks)
    assert state["positions"]["equity"] == ctl(system.settings.control.endpoint, "positions")["equity"]
    with StoreReader(system.settings.store.db) as store:
        stored = store.conn.execute("SELECT COUNT(*), MAX(ts) FROM signals WHERE run = 'live'").fetchone()
        marks = store.conn.execute("SELECT COUNT(*), MAX(ts) FROM equity WHERE run = 'live'").fetchone()
    signals = state["signals"]
    assert stored[0] > 0 and len(signals) == min(20, stored[0])
    assert signals[0]["ts"] == stored[1] and signals[0]["symbol"] == "GOOG"
    assert all(s["reason"] and s["inputs"] for s in signals)
    curve = state["equity"]
    assert len(curve["ts"]) == min(600, marks[0]) and curve["ts"][-1] == marks[1]
    assert curve["ts"] == sorted(curve["ts"])


def test_the_page_is_served_and_its_stream_pushes_state_over_and_over(web: tuple[System, str]) -> None:
    system, base = web
    status, headers, page = get(f"{base}/")
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert b'new EventSource("events"' in page and b"<script src" not in page  # nothing fetched from elsewhere
    first, second = first_events(f"{base}/events", 2)
    assert second["ts_ms"] >= first["ts_ms"]
    assert set(first["health"]["actors"]) == ACTORS


@pytest.mark.parametrize("web", [{"http.token": TOKEN}], indirect=True)
def test_with_a_token_every_request_without_it_gets_401(web: tuple[System, str]) -> None:
    _, base = web
    for path in ("/", "/events", "/api/state", "/metrics", "/nowhere"):
        status, headers, body = get(base + path)
        assert status == 401, path
        assert headers["WWW-Authenticate"].startswith("Bearer")
        assert b"token" in body
        assert get(base + path + "?token=wrong-token-0123456789")[0] == 401
        assert get(base + path, {"Authorization": "Bearer wrong-token-0123456789"})[0] == 401
    assert get(f"{base}/", {"Authorization": f"Bearer {TOKEN}"})[0] == 200
    assert get(f"{base}/api/state?token={TOKEN}")[0] == 200
    assert value(scrape(base, {"Authorization": f"Bearer {TOKEN}"}), "actortrade_ticks_received") == 0
    assert first_events(f"{base}/events?token={TOKEN}", 1)[0]["health"]["ok"]


@pytest.mark.parametrize("web", [{"control.allow_fault_injection": True}], indirect=True)
def test_a_crashed_web_actor_is_restarted_and_serves_again(web: tuple[System, str]) -> None:
    system, base = web
    assert ctl(system.settings.control.endpoint, "crash", actor="web")["ok"]
    wait_until(lambda: system.stats["web"].restarts == 1 and system.stats["web"].state == "running", 20,
               "the web actor to restart")
    families = wait_until(lambda: (reply := get(f"{base}/metrics"))[0] == 200 and scrape(base), 10, "the server again")
    assert value(families, "actortrade_actor_restarts", actor="web") == 1
    assert ctl(system.settings.control.endpoint, "health")["status"] == "healthy"
