"""Configuration of the consumer services from environment variables."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

RDKAFKA_PREFIX = "RDKAFKA_"


class SettingsError(Exception):
    """A variable has a value that cannot be used."""


@dataclass(frozen=True)
class Settings:
    bootstrap_servers: str = "127.0.0.1:9092"
    topic_prefix: str = "sharpapi"
    database_url: str = field(default="sqlite:///jobs.db", repr=False)
    schema_registry_url: str | None = None
    schema_registry_user_info: str | None = field(default=None, repr=False)
    max_backoff_s: float = 30.0
    batch_size: int = 2000
    analytics_state_dir: str = "analytics-state"
    analytics_grace_ms: int = 10_000
    log_level: str = "INFO"
    log_format: str = "json"
    kafka_overrides: Mapping[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        def text(name: str) -> str:
            return environ.get(name, "").strip()

        log_format = text("LOG_FORMAT") or cls.log_format
        if log_format not in ("json", "text"):
            raise SettingsError(f"LOG_FORMAT must be json or text, not {log_format!r}")

        def whole(name: str, minimum: int) -> int | None:
            value = text(name)
            if not value:
                return None
            if not value.isdigit() or int(value) < minimum:
                raise SettingsError(f"{name} must be a whole number, at least {minimum}, not {value!r}")
            return int(value)

        backoff, batch, grace = whole("MAX_RETRY_BACKOFF_MS", 1), whole("CONSUMER_BATCH_SIZE", 1), whole("ANALYTICS_GRACE_MS", 0)
        return cls(
            bootstrap_servers=text("KAFKA_BOOTSTRAP_SERVERS") or cls.bootstrap_servers,
            topic_prefix=text("TOPIC_PREFIX") or cls.topic_prefix,
            database_url=text("DATABASE_URL") or cls.database_url,
            schema_registry_url=text("SCHEMA_REGISTRY_URL") or None,
            schema_registry_user_info=text("SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO") or None,
            max_backoff_s=cls.max_backoff_s if backoff is None else backoff / 1000,
            batch_size=cls.batch_size if batch is None else batch,
            analytics_state_dir=text("ANALYTICS_STATE_DIR") or cls.analytics_state_dir,
            analytics_grace_ms=cls.analytics_grace_ms if grace is None else grace,
            log_level=(text("LOG_LEVEL") or cls.log_level).upper(),
            log_format=log_format,
            kafka_overrides={
                name[len(RDKAFKA_PREFIX) :].lower().replace("_", "."): value
                for name, value in environ.items()
                if name.startswith(RDKAFKA_PREFIX) and len(name) > len(RDKAFKA_PREFIX)
            },
        )

    def kafka_config(self) -> dict[str, Any]:
        return {"bootstrap.servers": self.bootstrap_servers, **self.kafka_overrides}

    def job_topic(self, job_type: str) -> str:
        return f"{self.topic_prefix}.jobs.{job_type}"

    def job_topics_pattern(self) -> str:
        """A subscription pattern (librdkafka's leading ^) for every job topic, new ones included."""
        return f"^{re.escape(self.topic_prefix)}\\.jobs\\.[a-z0-9_]+$"

    def group(self, service: str) -> str:
        return f"{self.topic_prefix}.{service}"

    @property
    def raw_topic(self) -> str:
        return f"{self.topic_prefix}.webhooks.raw"

    @property
    def stats_topic(self) -> str:
        return f"{self.topic_prefix}.analytics.job_stats"

    def dlq_topic(self, service: str) -> str:
        return f"{self.topic_prefix}.dlq.{service}"
