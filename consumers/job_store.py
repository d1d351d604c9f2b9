"""job-store: the latest state of every job, from every job topic, new types included."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import BigInteger, Column, Connection, String, Table, Text

from consumers.service import JobEvent, Service, epoch_ms
from consumers.settings import Settings
from consumers.store import METADATA, upsert_many

JOBS = Table(
    "jobs",
    METADATA,
    Column("id", String(256), primary_key=True),
    Column("type", String(64), nullable=False),
    Column("status", String(64), nullable=False),
    Column("result", Text),
    Column("route", String(64)),
    Column("received_at", BigInteger, nullable=False, comment="ms since the epoch, as received by the ingestor"),
    Column("updated_at", BigInteger, nullable=False, comment="ms since the epoch, when this row was written"),
)


def handle(event: JobEvent, connection: Connection) -> None:
    handle_many([event], connection)


def handle_many(events: Sequence[JobEvent], connection: Connection) -> None:
    now = epoch_ms(datetime.now(UTC))
    rows = [
        {
            "id": event["id"],
            "type": event["type"],
            "status": event["status"],
            "result": event["result"],
            "route": event["route"],
            "received_at": epoch_ms(event["received_at"]),
            "updated_at": now,
        }
        for event in events
    ]
    upsert_many(connection, JOBS, rows, only_if_newer="received_at")


def topics(settings: Settings) -> list[str]:
    return [settings.job_topics_pattern()]


SERVICE = Service("job-store", "every job topic -> table jobs (latest state per job id)", topics, handle, (JOBS,), handle_many)
