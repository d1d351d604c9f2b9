"""resumes: parsed résumés (hr_parse_resume) as candidates."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Column, Connection, String, Table, Text

from consumers.service import JobEvent, Permanent, Service, result_of
from consumers.settings import Settings
from consumers.store import METADATA, upsert

CANDIDATES = Table(
    "candidates",
    METADATA,
    Column("job_id", String(256), primary_key=True),
    Column("name", Text),
    Column("email", Text),
    Column("phone", Text),
    Column("address", Text),
    Column("languages", Text, nullable=False, comment="JSON array of spoken languages"),
    Column("positions", Text, nullable=False, comment="JSON array of positions held"),
    Column("education", Text, nullable=False, comment="JSON array of qualifications"),
)


def handle(event: JobEvent, connection: Connection) -> None:
    if event["status"] != "success" or event["result"] is None:
        return
    result = result_of(event, dict)
    row: dict[str, Any] = {"job_id": event["id"]}
    for column, name in (
        ("name", "candidate_name"),
        ("email", "candidate_email"),
        ("phone", "candidate_phone"),
        ("address", "candidate_address"),
    ):
        value = result.get(name)
        if value is not None and not isinstance(value, str):
            raise Permanent(f"job {event['id']}: the result's {name!r} is not a string")
        row[column] = value
    for column, name in (
        ("languages", "candidate_spoken_languages"),
        ("positions", "positions"),
        ("education", "education_qualifications"),
    ):
        value = result.get(name, [])
        if not isinstance(value, list):
            raise Permanent(f"job {event['id']}: the result's {name!r} is not a list")
        row[column] = json.dumps(value, ensure_ascii=False)
    upsert(connection, CANDIDATES, row)


def topics(settings: Settings) -> list[str]:
    return [settings.job_topic("hr_parse_resume")]


SERVICE = Service("resumes", "hr_parse_resume -> table candidates", topics, handle, (CANDIDATES,))
