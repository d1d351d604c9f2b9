"""Prometheus metrics of a consumer service."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.processed = Counter("consumer_processed", "Events applied by the service.", ["service"], registry=self.registry)
        self.failed = Counter(
            "consumer_failed",
            "Failed attempts by kind (retriable, permanent, undecodable, unexpected).",
            ["service", "kind"],
            registry=self.registry,
        )
        self.dead_lettered = Counter(
            "consumer_dead_lettered", "Messages written to the service's dead-letter topic.", ["service"], registry=self.registry
        )
        self.lag = Gauge(
            "consumer_lag",
            "Messages behind the partition's end, from librdkafka statistics.",
            ["service", "topic", "partition"],
            registry=self.registry,
        )
