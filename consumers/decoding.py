"""Turn a message back into its record (a JobEvent, a RawDelivery, …), whichever schema version wrote it."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any, cast

import fastavro
from confluent_kafka import Message
from confluent_kafka.schema_registry import SchemaRegistryClient

from consumers.service import JobEvent
from schemas import avro

CONFLUENT_MAGIC = 0
READ_HEADERS = frozenset(("content-type", "avro.schema.fingerprint"))


class Undecodable(Exception):
    """The message is not a record this reader can read."""


class Decoder:
    """Plain Avro datums are read with the writer schema their fingerprint header names, when known.

    An unknown fingerprint is a newer writer: its added fields come last (the evolution rule),
    so the reader's own schema reads the fields it knows and ignores the rest.
    """

    def __init__(self, reader: avro.Schema, known: Iterable[avro.Schema] = (), registry: SchemaRegistryClient | None = None) -> None:
        self._reader = reader
        self._writers = {schema.fingerprint: schema.parsed for schema in (reader, *known)}
        self._registry = registry

    def decode(self, message: Message) -> JobEvent:
        headers = {name: value for name, value in message.headers() or () if name in READ_HEADERS and value is not None}
        return cast(JobEvent, self.decode_value(message.value(), headers))

    def decode_value(self, value: bytes | None, headers: Mapping[str, bytes]) -> dict[str, Any]:
        if not value:
            raise Undecodable("the message has no value")
        try:
            if headers.get("content-type") == avro.CONFLUENT_CONTENT_TYPE.encode():
                return self._datum(value[5:], self._registered(value))
            writer = self._writers.get(headers.get("avro.schema.fingerprint", b"").decode(), self._reader.parsed)
            return self._datum(value, writer)
        except Undecodable:
            raise
        except Exception as exc:  # fastavro raises EOFError, ValueError, IndexError, … on foreign bytes
            raise Undecodable(f"not a {self._reader.name.rsplit('.', 1)[-1]} datum: {type(exc).__name__}: {exc}") from exc

    def _datum(self, datum: bytes, writer: Any) -> dict[str, Any]:
        return cast(dict[str, Any], fastavro.schemaless_reader(io.BytesIO(datum), writer, self._reader.parsed))

    def _registered(self, value: bytes) -> Any:
        if self._registry is None:
            raise Undecodable("the message uses the Schema Registry format and SCHEMA_REGISTRY_URL is not set")
        if value[0] != CONFLUENT_MAGIC or len(value) < 5:
            raise Undecodable("the message says registry=confluent but has no magic byte and schema id")
        return _parsed(self._registry.get_schema(int.from_bytes(value[1:5], "big")).schema_str)


def header_pairs(message: Message) -> list[tuple[str, bytes]]:
    return pairs_of(message.headers())


def pairs_of(headers: Any) -> list[tuple[str, bytes]]:
    """Kafka headers as the clients give them (a list of pairs, a dict, or None), values as bytes."""
    pairs = headers.items() if isinstance(headers, Mapping) else headers or []
    return [(name, value.encode() if isinstance(value, str) else value) for name, value in pairs if value is not None]


@cache
def _parsed(text: str) -> Any:
    return fastavro.parse_schema(json.loads(text))
