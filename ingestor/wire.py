"""How records become Kafka message values and headers: plain Avro, or the Schema Registry format."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from ingestor.publisher import PublishError
from schemas.avro import CONFLUENT_CONTENT_TYPE, CONTENT_TYPE, Schema

Headers = list[tuple[str, bytes]]


class PlainAvro:
    """The Avro binary datum alone; headers name the schema and its CRC-64-AVRO fingerprint."""

    def __init__(self, *schemas: Schema) -> None:
        self._headers = {schema.name: schema.headers(CONTENT_TYPE) for schema in schemas}

    async def serialize(self, topic: str, schema: Schema, record: Mapping[str, Any]) -> tuple[bytes, Headers]:
        return schema.encode(record), self._headers[schema.name]

    def close(self) -> None:
        """Nothing to release."""


class ConfluentAvro:
    """Confluent's wire format: magic byte, the registry's schema id, then the datum.

    Schemas are registered under ``<topic>-value`` on first use of each topic, in a thread,
    since the registry client blocks; later messages serialize from its cache.
    """

    def __init__(self, url: str, user_info: str | None, *schemas: Schema) -> None:
        config = {"url": url} if user_info is None else {"url": url, "basic.auth.user.info": user_info}
        self._client = client = SchemaRegistryClient(config)
        self._serializers = {schema.name: AvroSerializer(client, schema.text, conf={"auto.register.schemas": True}) for schema in schemas}
        self._headers = {schema.name: schema.headers(CONFLUENT_CONTENT_TYPE) for schema in schemas}
        self._registered: set[tuple[str, str]] = set()

    async def serialize(self, topic: str, schema: Schema, record: Mapping[str, Any]) -> tuple[bytes, Headers]:
        serializer = self._serializers[schema.name]
        context = SerializationContext(topic, MessageField.VALUE)
        try:
            if (topic, schema.name) in self._registered:
                value = serializer(dict(record), context)
            else:
                value = await asyncio.to_thread(serializer, dict(record), context)
                self._registered.add((topic, schema.name))
        except Exception as exc:  # the registry client lets its HTTP library's errors through unwrapped
            raise PublishError(f"Schema Registry: {exc}") from exc
        assert value is not None
        return value, self._headers[schema.name]

    def close(self) -> None:
        self._client.__exit__(None, None, None)  # confluent-kafka < 2.13 has no close(); this closes its HTTP session
