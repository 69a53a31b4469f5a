"""Prometheus metrics at ``/metrics``: HTTP requests and their latency by route, error responses
by code, work waiting (generation slots, the engines' queues, Image Creator jobs) and images made
per model. Counts that the database holds (images, jobs) are read from it at scrape time, so every
process of a deployment reports the same totals."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from starlette.datastructures import State

from limner.store.db import Job, Usage

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    def __init__(self, state: State):
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "limner_http_requests", "HTTP requests answered", ["route", "method", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "limner_http_request_seconds", "Time to answer", ["route"], buckets=BUCKETS, registry=self.registry
        )
        self.errors = Counter("limner_errors", "Error responses by code", ["code"], registry=self.registry)
        self.registry.register(_State(state))

    def observe(self, route: str, method: str, status: int, seconds: float, code: str | None) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route).observe(seconds)
        if status >= 400:
            self.errors.labels(code or str(status)).inc()


class _State(Collector):
    """What is waiting and what was made, read when Prometheus scrapes."""

    def __init__(self, state: State):
        self.state = state

    def collect(self) -> Iterator[Metric]:
        slots = GaugeMetricFamily("limner_api_requests_in_flight", "API requests generating or waiting for a slot")
        slots.add_metric([], getattr(getattr(self.state, "slots", None), "taken", 0))
        yield slots
        queued = GaugeMetricFamily("limner_engine_queued_images", "Images waiting in a model's queue", labels=["model"])
        engine = getattr(self.state, "engine", None)
        for name, batcher in list(getattr(engine, "_batchers", {}).items()):
            queued.add_metric([name], batcher.pending_images())
        yield queued
        db = getattr(self.state, "db", None)
        if db is None:
            return
        with db.session() as s:
            jobs = dict(s.execute(select(Job.status, func.count(Job.id)).group_by(Job.status)).all())
            made = s.execute(select(Usage.model, func.sum(Usage.images)).group_by(Usage.model)).all()
        waiting = GaugeMetricFamily("limner_creator_jobs", "Image Creator jobs by status", labels=["status"])
        for status in ("queued", "running"):
            waiting.add_metric([status], jobs.get(status, 0))
        yield waiting
        images = CounterMetricFamily("limner_images", "Images generated, all processes", labels=["model"])
        for model, count in made:
            images.add_metric([model or "unknown"], float(count or 0))
        yield images
