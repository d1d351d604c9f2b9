"""translations: content_translate results as rows."""

from __future__ import annotations

from sqlalchemy import Column, Connection, String, Table, Text

from consumers.service import JobEvent, Permanent, Service, result_of
from consumers.settings import Settings
from consumers.store import METADATA, upsert

TRANSLATIONS = Table(
    "translations",
    METADATA,
    Column("job_id", String(256), primary_key=True),
    Column("from_language", String(128), nullable=False),
    Column("to_language", String(128), nullable=False),
    Column("content", Text, nullable=False),
)


def handle(event: JobEvent, connection: Connection) -> None:
    if event["status"] != "success" or event["result"] is None:
        return
    result = result_of(event, dict)
    row = {"job_id": event["id"]}
    for name in ("from_language", "to_language", "content"):
        if not isinstance(result.get(name), str):
            raise Permanent(f"job {event['id']}: the result's {name!r} is not a string")
        row[name] = result[name]
    upsert(connection, TRANSLATIONS, row)


def topics(settings: Settings) -> list[str]:
    return [settings.job_topic("content_translate")]


SERVICE = Service("translations", "content_translate -> table translations", topics, handle, (TRANSLATIONS,))
