"""Analytics: exact per-minute stats from a known stream on the raw topic, late deliveries included."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from sqlalchemy import Engine

from consumers.analytics import JOB_STATS
from consumers.store import create_tables, engine_for
from ingestor.settings import Settings
from ingestor.topics import reconcile
from schemas import avro
from tests.conftest import read_topic, tuned, wait_for
from tests.test_consumers import rows

RAW = avro.load(avro.RAW_DELIVERY)
STATS = avro.load(avro.JOB_STATS)
T0 = int(datetime(2026, 12, 4, 12, 0, tzinfo=UTC).timestamp() * 1000)  # a minute boundary
GRACE_MS = 5_000


def delivery(job_id: str | None, job_type: str | None, status: str | None, at: int) -> dict[str, Any]:
    """A RawDelivery received ``at`` ms after T0; job fields None for a dead-lettered one."""
    return {
        "delivery_id": str(uuid.uuid4()),
        "received_at": T0 + at,
        "route": None,
        "remote_addr": "127.0.0.1",
        "headers": {"user-agent": "SharpAPIWebhook/1.0"},
        "body": b"{}",
        "secret": "current",
        "job_id": job_id,
        "job_type": job_type,
        "job_status": status,
    }


# In the order the raw topic holds them (one partition, so the analytics sees this order).
STREAM = [
    delivery("j1", "content_translate", "success", 1_000),
    delivery("j1", "content_translate", "success", 2_000),  # SharpAPI's retry
    delivery("h1", "hr_parse_resume", "success", 10_000),
    delivery("j2", "content_translate", "failed", 59_999),  # last millisecond of the first window
    delivery("j3", "content_translate", "success", 60_000),  # first millisecond of the second
    delivery("j6", "content_translate", "success", 50_000),  # late, within the grace: counted in the first window
    delivery(None, None, None, 61_000),  # dead-lettered: not a job
    delivery("j4", "content_translate", "success", 66_000),  # 66 s - 5 s grace > 60 s: the first window closes
    delivery("j5", "content_translate", "success", 30_000),  # too late: dropped
    delivery("h1", "hr_parse_resume", "failed", 30_000),  # hr_parse_resume's windows close on their own clock: counted
    delivery("j4", "content_translate", "success", 67_000),  # j4's retry
]

EXPECTED = [
    # job_type, window_start, window_end, deliveries, jobs, succeeded, failed, failure_rate, retried_jobs, max_deliveries, jobs_by_status
    ("content_translate", T0, T0 + 60_000, 4, 3, 2, 1, 1 / 3, 1, 2, {"failed": 1, "success": 2}),
    ("content_translate", T0 + 60_000, T0 + 120_000, 3, 2, 2, 0, 0.0, 1, 2, {"success": 2}),
    ("hr_parse_resume", T0, T0 + 60_000, 2, 1, 0, 1, 1.0, 1, 2, {"failed": 1}),
]


def publish(settings: Settings, *values: bytes | dict[str, Any]) -> None:
    """Write raw records as the ingestor does (and foreign bytes as given), keyed by job id."""
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers, "enable.idempotence": True})
    for value in values:
        if isinstance(value, bytes):
            producer.produce(settings.raw_topic, value, b"foreign")
        else:
            producer.produce(
                settings.raw_topic, RAW.encode(value), (value["job_id"] or value["delivery_id"]).encode(), headers=RAW.headers()
            )
    assert producer.flush(30) == 0


@contextmanager
def analytics(settings: Settings, database_url: str, state_dir: Path, **environ: str) -> Iterator[Engine]:
    """``consumers analytics`` as a process, with ``environ`` added to its environment; yields the database it writes."""
    engine = engine_for(database_url)
    create_tables(engine, [JOB_STATS])
    environment = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "TOPIC_PREFIX": settings.topic_prefix,
        "DATABASE_URL": database_url,
        "ANALYTICS_STATE_DIR": str(state_dir),
        "ANALYTICS_GRACE_MS": str(GRACE_MS),
        **environ,
    }
    with (state_dir.parent / "analytics.log").open("ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "consumers", "analytics"], env=environment, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield engine
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0, (state_dir.parent / "analytics.log").read_text()
        engine.dispose()


def table(engine: Engine) -> list[tuple[Any, ...]]:
    found = rows(
        engine,
        "SELECT job_type, window_start, window_end, deliveries, jobs, succeeded, failed, failure_rate, retried_jobs, max_deliveries,"
        " jobs_by_status FROM job_stats ORDER BY job_type, window_start",
    )
    return [(*row[:-1], json.loads(row[-1])) for row in found]


@pytest.fixture
def one_partition(settings: Settings) -> Settings:
    """Topics with one partition each, so the raw topic's order is the order the windows see."""
    settings = tuned(settings, partitions=1)
    reconcile(AdminClient(settings.kafka_config()), settings, create=True)
    return settings


def test_windows_count_per_type_and_status_with_boundaries_retries_and_late_deliveries(
    one_partition: Settings, database_url: str, tmp_path: Path
) -> None:
    publish(one_partition, *STREAM[:6], b"\xff\xfe not avro", *STREAM[6:])

    with analytics(one_partition, database_url, tmp_path / "state") as engine:
        # j4's retry comes after every other record, so once it is counted the rest was seen too.
        wait_for(lambda: [row[3] for row in table(engine)] == [4, 3, 2], "the stats of the whole stream")
        assert table(engine) == EXPECTED

    latest = {
        message.key(): STATS.decode(message.value() or b"")
        for message in read_topic(one_partition.bootstrap_servers, one_partition.stats_topic)
    }
    assert sorted(latest) == [
        b"content_translate@2026-12-04T12:00:00Z",
        b"content_translate@2026-12-04T12:01:00Z",
        b"hr_parse_resume@2026-12-04T12:00:00Z",
    ]
    assert [
        (
            stats["job_type"],
            int(stats["window_start"].timestamp() * 1000),
            int(stats["window_end"].timestamp() * 1000),
            stats["deliveries"],
            stats["jobs"],
            stats["succeeded"],
            stats["failed"],
            stats["failure_rate"],
            stats["retried_jobs"],
            stats["max_deliveries"],
            stats["jobs_by_status"],
        )
        for _, stats in sorted(latest.items())
    ] == EXPECTED


def test_a_restart_resumes_the_windows_without_counting_anything_twice(one_partition: Settings, tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'stats.db'}"
    publish(one_partition, *STREAM[:4])
    with analytics(one_partition, database_url, tmp_path / "state") as engine:
        wait_for(lambda: [row[3] for row in table(engine)] == [3, 1], "the first part of the stream")

    publish(one_partition, *STREAM[4:])
    with analytics(one_partition, database_url, tmp_path / "other-state") as engine:  # fresh local state: restored from Kafka
        wait_for(lambda: [row[3] for row in table(engine)] == [4, 3, 2], "the stats of the whole stream")
        assert table(engine) == EXPECTED
