"""Prometheus metrics of the ingestor, in a registry of their own per app."""

from __future__ import annotations

import os
from typing import TypeVar

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

M = TypeVar("M", Counter, Histogram)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.webhooks = Counter(
            "ingestor_webhooks",
            "Webhook requests by route (_account, a route name, or _unverified) and outcome.",
            ["route", "outcome"],
            registry=registry,
        )
        self.duration = Histogram(
            "ingestor_webhook_duration_seconds",
            "Time from request to answer, by outcome.",
            ["outcome"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.kafka_delivery = Histogram(
            "ingestor_kafka_delivery_seconds",
            "Time from produce to broker acknowledgement, by topic kind (job, raw, dlq).",
            ["kind"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.kafka_errors = Counter(
            "ingestor_kafka_errors", "Deliveries answered 503 because Kafka did not confirm in time or refused.", registry=registry
        )
        self.signature_failures = Counter(
            "ingestor_signature_failures", "Rejected signatures by reason (missing, malformed, mismatch).", ["reason"], registry=registry
        )
        self.secret_matched = Counter(
            "ingestor_secret_matched",
            "Verified deliveries by the secret that matched (current, previous-N).",
            ["secret"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "ingestor_dead_letters", "Authentic deliveries sent to the dead-letter topic, by reason.", ["reason"], registry=registry
        )
        self.duplicates = Counter(
            "ingestor_duplicates_seen",
            "Accepted deliveries identical to the last one seen for their job id in this process.",
            registry=registry,
        )

        self._children: dict[tuple[int, tuple[str, ...]], Counter | Histogram] = {}

    def of(self, metric: M, *labels: str) -> M:
        """``metric.labels(*labels)``, remembered: the hot path skips the library's validation and lock."""
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child  # type: ignore[return-value]

    def exposition(self) -> bytes:
        """The text format; with PROMETHEUS_MULTIPROC_DIR set (several workers), every worker's values."""
        if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
            combined = CollectorRegistry()
            MultiProcessCollector(combined)  # type: ignore[no-untyped-call]
            return generate_latest(combined)
        return generate_latest(self.registry)
