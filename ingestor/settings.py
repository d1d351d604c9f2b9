"""Configuration from environment variables, read once at the entry point."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ingestor.signatures import Secret


class SettingsError(Exception):
    """A variable is missing or has a value that cannot be used."""


# Variables that configure the Kafka client directly: RDKAFKA_SASL_USERNAME -> sasl.username.
RDKAFKA_PREFIX = "RDKAFKA_"
DAY_MS = 24 * 60 * 60 * 1000


@dataclass(frozen=True)
class Settings:
    bootstrap_servers: str = "127.0.0.1:9092"
    topic_prefix: str = "sharpapi"
    secrets: tuple[Secret, ...] = field(default=(), repr=False)
    max_body_bytes: int = 1024 * 1024
    ack_timeout_ms: int = 5000
    retry_after_s: int = 5
    auto_create_job_topics: bool = True
    partitions: int = 3
    replication_factor: int = -1
    min_insync_replicas: int | None = None
    raw_retention_ms: int = 7 * DAY_MS
    dlq_retention_ms: int = 30 * DAY_MS
    schema_registry_url: str | None = None
    schema_registry_user_info: str | None = field(default=None, repr=False)
    log_level: str = "INFO"
    log_format: str = "json"
    kafka_overrides: Mapping[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str], *, require_secret: bool = True) -> Settings:
        env = _Reader(environ)
        secrets = _secrets(env.text("SHARPAPI_WEBHOOK_SECRET"), env.text("SHARPAPI_WEBHOOK_PREVIOUS_SECRETS"))
        if require_secret and not secrets:
            raise SettingsError("SHARPAPI_WEBHOOK_SECRET is required: the signing secret from SharpAPI's dashboard")
        log_format = env.text("LOG_FORMAT") or cls.log_format
        if log_format not in ("json", "text"):
            raise SettingsError(f"LOG_FORMAT must be json or text, not {log_format!r}")
        prefix = env.text("TOPIC_PREFIX") or cls.topic_prefix
        if not prefix.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise SettingsError(f"TOPIC_PREFIX may hold only letters, digits, '.', '_' and '-', not {prefix!r}")
        return cls(
            bootstrap_servers=env.text("KAFKA_BOOTSTRAP_SERVERS") or cls.bootstrap_servers,
            topic_prefix=prefix,
            secrets=secrets,
            max_body_bytes=env.integer("MAX_BODY_BYTES", cls.max_body_bytes, minimum=1),
            ack_timeout_ms=env.integer("ACK_TIMEOUT_MS", cls.ack_timeout_ms, minimum=100),
            retry_after_s=env.integer("RETRY_AFTER_SECONDS", cls.retry_after_s, minimum=0),
            auto_create_job_topics=env.boolean("AUTO_CREATE_JOB_TOPICS", cls.auto_create_job_topics),
            partitions=env.integer("TOPIC_PARTITIONS", cls.partitions, minimum=1),
            replication_factor=env.integer("TOPIC_REPLICATION_FACTOR", cls.replication_factor, minimum=-1),
            min_insync_replicas=env.optional_integer("TOPIC_MIN_INSYNC_REPLICAS", minimum=1),
            raw_retention_ms=env.integer("RAW_RETENTION_MS", cls.raw_retention_ms, minimum=-1),
            dlq_retention_ms=env.integer("DLQ_RETENTION_MS", cls.dlq_retention_ms, minimum=-1),
            schema_registry_url=env.text("SCHEMA_REGISTRY_URL") or None,
            schema_registry_user_info=env.text("SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO") or None,
            log_level=(env.text("LOG_LEVEL") or cls.log_level).upper(),
            log_format=log_format,
            kafka_overrides={
                name[len(RDKAFKA_PREFIX) :].lower().replace("_", "."): value
                for name, value in environ.items()
                if name.startswith(RDKAFKA_PREFIX) and len(name) > len(RDKAFKA_PREFIX)
            },
        )

    def kafka_config(self) -> dict[str, Any]:
        """librdkafka settings shared by every client: the servers plus RDKAFKA_* overrides."""
        return {"bootstrap.servers": self.bootstrap_servers, **self.kafka_overrides}

    def topic(self, suffix: str) -> str:
        return f"{self.topic_prefix}.{suffix}"

    @property
    def raw_topic(self) -> str:
        return self.topic("webhooks.raw")

    @property
    def dlq_topic(self) -> str:
        return self.topic("webhooks.dlq")

    def job_topic(self, job_type: str) -> str:
        return self.topic(f"jobs.{job_type}")

    @property
    def stats_topic(self) -> str:
        """Written by the analytics application (``consumers analytics``); created with the others."""
        return self.topic("analytics.job_stats")


def _secrets(current: str, previous: str) -> tuple[Secret, ...]:
    found = [Secret("current", current.encode())] if current else []
    olds = [value.strip() for value in previous.split(",") if value.strip()]
    return (*found, *(Secret(f"previous-{n}", value.encode()) for n, value in enumerate(olds, start=1)))


@dataclass(frozen=True)
class _Reader:
    environ: Mapping[str, str]

    def text(self, name: str) -> str:
        return self.environ.get(name, "").strip()

    def integer(self, name: str, default: int, *, minimum: int) -> int:
        value = self.optional_integer(name, minimum=minimum)
        return default if value is None else value

    def optional_integer(self, name: str, *, minimum: int) -> int | None:
        raw = self.text(name)
        if not raw:
            return None
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(f"{name} must be an integer, not {raw!r}") from None
        if value < minimum:
            raise SettingsError(f"{name} must be at least {minimum}, not {value}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        raw = self.text(name).lower()
        if not raw:
            return default
        if raw in ("1", "true", "yes", "on"):
            return True
        if raw in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{name} must be true or false, not {raw!r}")
