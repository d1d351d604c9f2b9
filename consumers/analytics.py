"""analytics: what each job type did per minute, by stream processing (quixstreams) over the raw topic.

The raw topic is the source because it holds every authentic delivery, retries included, of
every job type, new ones too, and is never compacted; the job topics keep only the latest event
per job. Event time is the ingestor's ``received_at``. Windows are tumbling, one minute, per job
type; a window takes late deliveries until the type's newest receipt time is ``grace`` past its
end, after which they are dropped and logged. Each update of a window is emitted at once
(``current()``), so the topic and the table always hold the window's figures so far.
Processing is exactly-once: window state, output and offsets commit in one Kafka transaction,
and the table is written by idempotent upserts.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict

from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField
from confluent_kafka.serialization import SerializationContext as ConfluentContext
from quixstreams import Application
from quixstreams.dataframe.windows.base import WindowResult
from quixstreams.kafka.configuration import ConnectionConfig
from quixstreams.models import TopicConfig
from quixstreams.models.serializers import Deserializer, SerializationContext, Serializer
from quixstreams.sinks import BatchingSink, SinkBackpressureError, SinkBatch
from sqlalchemy import BigInteger, Column, Engine, Float, String, Table, Text
from sqlalchemy.exc import OperationalError

from consumers.decoding import Decoder, Undecodable, pairs_of
from consumers.service import epoch_ms
from consumers.settings import Settings
from consumers.store import METADATA, upsert_many
from schemas import avro

WINDOW = timedelta(minutes=1)
log = logging.getLogger("consumers.analytics")

JOB_STATS = Table(
    "job_stats",
    METADATA,
    Column("job_type", String(64), primary_key=True),
    Column("window_start", BigInteger, primary_key=True, comment="ms since the epoch, inclusive"),
    Column("window_end", BigInteger, nullable=False, comment="ms since the epoch, exclusive"),
    Column("deliveries", BigInteger, nullable=False),
    Column("jobs", BigInteger, nullable=False),
    Column("succeeded", BigInteger, nullable=False),
    Column("failed", BigInteger, nullable=False),
    Column("failure_rate", Float, nullable=False),
    Column("retried_jobs", BigInteger, nullable=False),
    Column("max_deliveries", BigInteger, nullable=False),
    Column("jobs_by_status", Text, nullable=False, comment="JSON object: status -> distinct jobs"),
)


class Delivery(TypedDict):
    """The part of a RawDelivery the windows need."""

    job_id: str
    job_type: str
    job_status: str
    received_at: int


class Tally(TypedDict):
    """A window's state (kept as JSON): deliveries so far, and per job id its deliveries and latest status."""

    job_type: str
    deliveries: int
    counts: dict[str, int]
    statuses: dict[str, str]


def tally(state: Tally, delivery: Delivery) -> Tally:
    job = delivery["job_id"]
    return {
        "job_type": state["job_type"],
        "deliveries": state["deliveries"] + 1,
        "counts": {**state["counts"], job: state["counts"].get(job, 0) + 1},
        "statuses": {**state["statuses"], job: delivery["job_status"]},
    }


def first_tally(delivery: Delivery) -> Tally:
    return tally({"job_type": delivery["job_type"], "deliveries": 0, "counts": {}, "statuses": {}}, delivery)


def job_stats(window: WindowResult) -> dict[str, Any]:
    """A JobStats record from a window's tally."""
    state: Tally = window["value"]
    counts = state["counts"].values()
    by_status = Counter(state["statuses"].values())
    return {
        "job_type": state["job_type"],
        "window_start": window["start"],
        "window_end": window["end"],
        "deliveries": state["deliveries"],
        "jobs": len(counts),
        "jobs_by_status": dict(sorted(by_status.items())),
        "succeeded": by_status["success"],
        "failed": by_status["failed"],
        "failure_rate": by_status["failed"] / len(counts),
        "retried_jobs": sum(1 for count in counts if count > 1),
        "max_deliveries": max(counts),
    }


def stats_key(stats: Mapping[str, Any]) -> str:
    """``<job_type>@<window start, ISO-8601 UTC>``: one key per window, so compaction keeps every window's last figure."""
    start = datetime.fromtimestamp(stats["window_start"] / 1000, UTC)
    return f"{stats['job_type']}@{start.strftime('%Y-%m-%dT%H:%M:%SZ')}"


class RawDeliveries(Deserializer):
    """RawDelivery datums (plain Avro or the registry format) to Deliveries; None for dead letters and foreign bytes."""

    def __init__(self, decoder: Decoder) -> None:
        self._decoder = decoder

    def __call__(self, value: bytes, ctx: SerializationContext) -> Delivery | None:
        try:
            record = self._decoder.decode_value(value, dict(pairs_of(ctx.headers)))
        except Undecodable as exc:
            log.warning("raw record skipped", extra={"topic": ctx.topic, "error": str(exc)})
            return None
        if record.get("job_type") is None:  # dead-lettered, or written before raw records named their job
            return None
        return {
            "job_id": record["job_id"],
            "job_type": record["job_type"],
            "job_status": record["job_status"],
            "received_at": epoch_ms(record["received_at"]),
        }


class PlainAvroValues(Serializer):
    """Plain Avro datums with the schema-naming headers, as the ingestor writes them."""

    def __init__(self, schema: avro.Schema) -> None:
        self._schema = schema
        self._headers: dict[str, str | bytes] = dict(schema.headers())

    @property
    def extra_headers(self) -> dict[str, str | bytes]:
        return self._headers

    def __call__(self, value: Mapping[str, Any], ctx: SerializationContext) -> bytes:
        return self._schema.encode(value)


class RegistryAvroValues(Serializer):
    """Confluent's wire format, as the ingestor writes with SCHEMA_REGISTRY_URL set: registered as ``<topic>-value``."""

    def __init__(self, schema: avro.Schema, registry: SchemaRegistryClient) -> None:
        self._serializer = AvroSerializer(registry, schema.text, conf={"auto.register.schemas": True})
        self._headers: dict[str, str | bytes] = dict(schema.headers(avro.CONFLUENT_CONTENT_TYPE))

    @property
    def extra_headers(self) -> dict[str, str | bytes]:
        return self._headers

    def __call__(self, value: Mapping[str, Any], ctx: SerializationContext) -> bytes:
        framed: bytes = self._serializer(dict(value), ConfluentContext(ctx.topic, MessageField.VALUE))
        return framed


class StatsTable(BatchingSink):
    """Upserts each window's latest figures into ``job_stats`` at every checkpoint."""

    def __init__(self, engine: Engine) -> None:
        super().__init__()
        self._engine = engine

    def write(self, batch: SinkBatch) -> None:
        latest = {(item.value["job_type"], item.value["window_start"]): item.value for item in batch}
        try:
            with self._engine.begin() as connection:
                rows = [{**stats, "jobs_by_status": json.dumps(stats["jobs_by_status"], sort_keys=True)} for stats in latest.values()]
                upsert_many(connection, JOB_STATS, rows)
        except OperationalError as exc:  # the database is away: Kafka replays the batch from the last checkpoint
            log.warning("job_stats not written, retrying", extra={"error": str(exc)})
            raise SinkBackpressureError(retry_after=5.0) from exc


def build(
    settings: Settings, engine: Engine, decoder: Decoder, registry: SchemaRegistryClient | None = None, *, commit_interval: float = 1.0
) -> Application:
    """The analytics application: raw topic -> one-minute windows per job type -> stats topic and table.

    With a ``registry``, stats are written in its wire format, like every other topic then.
    """
    kafka = settings.kafka_config()
    app = Application(
        broker_address=ConnectionConfig.from_librdkafka_dict(kafka, ignore_extras=True),
        consumer_group=settings.group("analytics"),
        auto_offset_reset="earliest",
        commit_interval=commit_interval,
        consumer_extra_config=dict(settings.kafka_overrides),
        producer_extra_config=dict(settings.kafka_overrides),
        state_dir=settings.analytics_state_dir,
        processing_guarantee="exactly-once",
        loglevel=None,  # the entry point configured logging
    )
    raw = app.topic(
        settings.raw_topic,
        value_deserializer=RawDeliveries(decoder),
        key_deserializer="bytes",
        timestamp_extractor=lambda value, _headers, timestamp, _kind: value["received_at"] if value else timestamp,
    )
    schema = avro.load(avro.JOB_STATS)
    stats = app.topic(
        settings.stats_topic,
        value_serializer=PlainAvroValues(schema) if registry is None else RegistryAvroValues(schema, registry),
        key_serializer="str",
        # Used only when ``ingestor topics`` has not created it: sized like the raw topic, compacted.
        config=TopicConfig(
            num_partitions=raw.broker_config.num_partitions,
            replication_factor=raw.broker_config.replication_factor,
            extra_config={"cleanup.policy": "compact"},
        ),
    )
    windows = (
        app.dataframe(raw)
        .filter(lambda delivery: delivery is not None)
        .group_by(lambda delivery: delivery["job_type"], name="job_type")
        .tumbling_window(WINDOW, grace_ms=settings.analytics_grace_ms, name="job_stats")
        .reduce(tally, first_tally)
        .current()
        .apply(job_stats)
    )
    windows.to_topic(stats, key=stats_key)
    windows.sink(StatsTable(engine))
    return app
