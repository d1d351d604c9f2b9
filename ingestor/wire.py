"""How records become Kafka message values and headers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from schemas.avro import CONTENT_TYPE, Schema

Headers = list[tuple[str, bytes]]


class PlainAvro:
    """The Avro binary datum alone; headers name the schema and its CRC-64-AVRO fingerprint."""

    def __init__(self, *schemas: Schema) -> None:
        self._headers = {
            schema.name: [
                ("content-type", CONTENT_TYPE.encode()),
                ("avro.schema.name", schema.name.encode()),
                ("avro.schema.fingerprint", schema.fingerprint.encode()),
            ]
            for schema in schemas
        }

    async def prepare(self, topic: str, schema: Schema) -> None:
        """Nothing to register: readers hold the .avsc files."""

    def serialize(self, topic: str, schema: Schema, record: Mapping[str, Any]) -> tuple[bytes, Headers]:
        return schema.encode(record), self._headers[schema.name]
