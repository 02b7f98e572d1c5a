"""Prometheus metrics: a collector that reads the running system's counters, health and account at
scrape time (nothing is counted twice), rendered in the Prometheus text format.

Stage latency is a gauge histogram: its buckets are counted at scrape time over the window each
stage keeps (its last 10,000 ingress batches, the one ``ctl metrics`` summarises), so they fall as
old batches leave the window. ``histogram_quantile`` reads the buckets as they are, without ``rate()``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import numpy as np
from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.exposition import choose_encoder
from prometheus_client.core import CounterMetricFamily, GaugeHistogramMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from actors.control.commands import ControlView, handle_request

__all__ = ["LATENCY_BOUNDS_S", "PREFIX", "MetricsView", "SystemCollector", "metrics_registry", "render"]

PREFIX = "actortrade"
LATENCY_BOUNDS_S = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                    2.5, 5.0, 10.0)
_BOUNDS_NS = np.array([round(b * 1e9) for b in LATENCY_BOUNDS_S], dtype=np.int64)
_LABELLED = ("ticks_rejected",)  # counters shown by label instead (``rejected_by_reason``)


class MetricsView(ControlView, Protocol):
    """The control view, and each stage's latency window as buckets."""

    def latency_histograms(self, bounds_ns: Any) -> dict[str, tuple[int, list[int], int]]: ...


class SystemCollector(Collector):
    """Yields the system's metrics at each scrape. A view that cannot answer (the executor restarting)
    leaves its metrics out of that scrape rather than showing stale figures."""

    def __init__(self, view: MetricsView) -> None:
        self.view = view

    def collect(self) -> Iterator[Metric]:
        """Read the views once and yield every family (the HTTP server's reading thread)."""
        metrics = handle_request({"cmd": "metrics"}, self.view)
        health = handle_request({"cmd": "health"}, self.view)
        positions = handle_request({"cmd": "positions"}, self.view)
        if metrics["ok"]:
            yield from _counters(metrics["counters"])
        if health["ok"]:
            yield from _actors(health)
        yield _latency(self.view.latency_histograms(_BOUNDS_NS))
        if positions["ok"]:
            yield from _account(positions)


def _counters(counters: dict[str, Any]) -> Iterator[Metric]:
    for name, value in counters.items():
        if isinstance(value, int) and name not in _LABELLED:
            yield CounterMetricFamily(f"{PREFIX}_{name}", f"{name.replace('_', ' ').capitalize()} "
                                      "(the counter of the same name in ctl metrics).", value=value)
    rejected = CounterMetricFamily(f"{PREFIX}_ticks_rejected", "Ingress messages rejected, by reason "
                                   "(ticks, and bars where publishers send bars; ctl metrics: rejected_by_reason).",
                                   labels=["reason"])
    for reason, count in sorted(counters["rejected_by_reason"].items()):
        rejected.add_metric([reason], count)
    yield rejected


def _actors(health: dict[str, Any]) -> Iterator[Metric]:
    actors = health["actors"]
    families = {
        "restarts": CounterMetricFamily(f"{PREFIX}_actor_restarts", "Restarts of each actor.", labels=["actor"]),
        "processed": CounterMetricFamily(f"{PREFIX}_actor_processed", "Messages each actor handled.", labels=["actor"]),
        "errors": CounterMetricFamily(f"{PREFIX}_actor_errors", "Messages each actor failed on.", labels=["actor"]),
        "mailbox": GaugeMetricFamily(f"{PREFIX}_actor_mailbox", "Messages waiting for each actor.", labels=["actor"]),
    }
    running = GaugeMetricFamily(f"{PREFIX}_actor_running", "1 while the actor runs, else 0 (restarting, stopped, "
                                "failed).", labels=["actor"])
    for name, actor in actors.items():
        for key, family in families.items():
            family.add_metric([name], actor[key])
        running.add_metric([name], 1.0 if actor["state"] == "running" else 0.0)
    yield from families.values()
    yield running
    yield GaugeMetricFamily(f"{PREFIX}_healthy", "1 while health says healthy, else 0 (degraded or failed).",
                            value=1.0 if health["status"] == "healthy" else 0.0)
    yield GaugeMetricFamily(f"{PREFIX}_overloaded", "1 while the pipeline is overloaded (flow control), else 0.",
                            value=1.0 if health["overload"]["overloaded"] else 0.0)


def _latency(histograms: dict[str, tuple[int, list[int], int]]) -> Metric:
    family = GaugeHistogramMetricFamily(
        f"{PREFIX}_stage_latency_seconds", "Latency from ingress receive to each stage done with a batch (the "
        "executor: to its decision), over each stage's last 10,000 ingress batches.", labels=["stage"])
    for stage, (samples, under, sum_ns) in histograms.items():
        buckets = [(floatToGoString(bound), float(count)) for bound, count in zip(LATENCY_BOUNDS_S, under, strict=True)]
        family.add_metric([stage], [*buckets, ("+Inf", float(samples))], sum_ns / 1e9)
    return family


def _account(positions: dict[str, Any]) -> Iterator[Metric]:
    yield GaugeMetricFamily(f"{PREFIX}_equity", "Equity of the paper account: cash plus positions at their marks.",
                            value=positions["equity"])
    yield GaugeMetricFamily(f"{PREFIX}_cash", "Cash of the paper account.", value=positions["cash"])
    position = GaugeMetricFamily(f"{PREFIX}_position", "Quantity held per symbol (negative: short).",
                                 labels=["symbol"])
    for symbol, held in sorted(positions["positions"].items()):
        position.add_metric([symbol], held["qty"])
    yield position


def metrics_registry(view: MetricsView) -> CollectorRegistry:
    """A registry of the system's metrics and this process's (CPU, memory, open files)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SystemCollector(view))
    ProcessCollector(registry=registry)
    return registry


def render(registry: CollectorRegistry, accept: str) -> tuple[bytes, str]:
    """The registry's metrics in the format the scraper's ``Accept`` header asks for (OpenMetrics, or
    the Prometheus text format, 0.0.4 by default), and that format's content type."""
    encode, content_type = choose_encoder(accept)
    return encode(registry), content_type
