"""Prometheus metrics, one registry per app (no process-global state)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from .engines.base import EngineStats
from .trace import Trace


class Pending(Protocol):
    @property
    def pending(self) -> int: ...

    @property
    def backlog(self) -> int: ...


_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "modelgrid_requests",
            "HTTP requests by route and status",
            ["route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "modelgrid_request_duration_seconds",
            "Time from request to the end of its response",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "modelgrid_time_to_first_token_seconds",
            "Time from request to the first generated token",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "modelgrid_tokens",
            "Tokens in (prompt) and out (completion)",
            ["model", "direction"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "modelgrid_queue_depth", "Requests waiting for an engine slot", ["model"], registry=r
        )
        self.busy_slots = Gauge(
            "modelgrid_engine_busy_slots", "Engine slots generating now", ["model"], registry=r
        )
        # Set to the feed's own clock once it runs; -1 while nothing reads it (polling off).
        self.change_feed_age = Gauge(
            "modelgrid_change_feed_age_seconds",
            "Seconds since this process last read the database's change feed: while it grows, "
            "revocations and grants made elsewhere wait for cached entries to expire",
            registry=r,
        )
        self.change_feed_age.set(-1)
        self.journal_pending = Gauge(
            "modelgrid_journal_pending",
            "Items journaled by this process and not yet committed to the database: what a "
            "growing figure waits for is the database, or the writer process",
            ["journal"],
            registry=r,
        )
        self.journal_backlog = Gauge(
            "modelgrid_journal_backlog_bytes",
            "Bytes of journal lines this process holds uncommitted; at journal_backlog_bytes, "
            "new requests wait for the database",
            ["journal"],
            registry=r,
        )
        self.writer_starts = Gauge(
            "modelgrid_writer_starts",
            "Writer processes this process has started: past 1, a writer died and was "
            "replaced (its batches were committed by the server meanwhile)",
            registry=r,
        )
        self._engine_stats: dict[str, Callable[[], EngineStats]] = {}
        # Both keyed by bounded sets: routes and statuses the server has, models it serves.
        self._by_route: dict[tuple[str, int], tuple[Any, Any]] = {}
        self._by_model: dict[str, tuple[Any, Any, Any]] = {}
        self._deployments = _DeploymentCollector()
        r.register(self._deployments)

    def watch_deployments(self, model: str, snapshot: Callable[[], list[dict[str, Any]]]) -> None:
        self._deployments.sources[model] = snapshot

    def watch_change_feed(self, age: Callable[[], float]) -> None:
        self.change_feed_age.set_function(age)

    def watch_journal(self, name: str, journal: Pending) -> None:
        self.journal_pending.labels(name).set_function(lambda: journal.pending)
        self.journal_backlog.labels(name).set_function(lambda: journal.backlog)

    def watch_writer(self, starts: Callable[[], int]) -> None:
        self.writer_starts.set_function(starts)

    def watch_engine(self, model: str, stats: Callable[[], EngineStats]) -> None:
        self._engine_stats[model] = stats

    def observe_request(self, trace: Trace, seconds: float) -> None:
        key = (trace.route, trace.status)
        children = self._by_route.get(key)
        if children is None:
            # labels() takes a lock and builds its key on every call: resolve each series once
            children = (
                self.requests.labels(trace.route, str(trace.status)),
                self.latency.labels(trace.route),
            )
            self._by_route[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def observe_generation(self, model: str, trace: Trace) -> None:
        children = self._by_model.get(model)
        if children is None:
            children = (
                self.tokens.labels(model, "in"),
                self.tokens.labels(model, "out"),
                self.ttft.labels(model),
            )
            self._by_model[model] = children
        children[0].inc(trace.tokens_in)
        children[1].inc(trace.tokens_out)
        if trace.ttft is not None:
            children[2].observe(trace.ttft)

    def render(self) -> bytes:
        for model, stats in self._engine_stats.items():
            current = stats()
            self.queue_depth.labels(model).set(current.waiting)
            self.busy_slots.labels(model).set(current.busy)
        return bytes(generate_latest(self.registry))


_BREAKER = {"closed": 0, "half_open": 1, "open": 2}


class _DeploymentCollector(Collector):
    """Reads each router's live deployment state at scrape time."""

    def __init__(self) -> None:
        self.sources: dict[str, Callable[[], list[dict[str, Any]]]] = {}

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        labels = ["model", "deployment"]
        requests = CounterMetricFamily(
            "modelgrid_deployment_requests", "Attempts sent to a deployment", labels=labels
        )
        failures = CounterMetricFamily(
            "modelgrid_deployment_failures",
            "Attempts that failed (errors, timeouts, 5xx)",
            labels=labels,
        )
        inflight = GaugeMetricFamily(
            "modelgrid_deployment_inflight", "Attempts in flight on a deployment", labels=labels
        )
        breaker = GaugeMetricFamily(
            "modelgrid_deployment_breaker_state",
            "Circuit breaker: 0 closed, 1 half-open, 2 open",
            labels=labels,
        )
        for model, snapshot in self.sources.items():
            for d in snapshot():
                key = [model, d["name"]]
                requests.add_metric(key, d["requests"])
                failures.add_metric(key, d["failures"])
                inflight.add_metric(key, d["inflight"])
                breaker.add_metric(key, _BREAKER[d["breaker"]])
        yield from (requests, failures, inflight, breaker)
