"""failures: every failed job, from every job topic, as a row and a warning."""

from __future__ import annotations

import logging

from sqlalchemy import BigInteger, Column, Connection, String, Table

from consumers.service import JobEvent, Service, epoch_ms
from consumers.settings import Settings
from consumers.store import METADATA, upsert

log = logging.getLogger("consumers.failures")

FAILURES = Table(
    "failures",
    METADATA,
    Column("job_id", String(256), primary_key=True),
    Column("type", String(64), nullable=False),
    Column("route", String(64)),
    Column("received_at", BigInteger, nullable=False, comment="ms since the epoch, as received by the ingestor"),
)


def handle(event: JobEvent, connection: Connection) -> None:
    if event["status"] != "failed":
        return
    row = {"job_id": event["id"], "type": event["type"], "route": event["route"], "received_at": epoch_ms(event["received_at"])}
    upsert(connection, FAILURES, row, only_if_newer="received_at")
    log.warning("job failed", extra={"job_id": event["id"], "type": event["type"], "route": event["route"]})


def topics(settings: Settings) -> list[str]:
    return [settings.job_topics_pattern()]


SERVICE = Service("failures", "every job topic, status failed -> table failures and a warning", topics, handle, (FAILURES,))
