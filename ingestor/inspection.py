"""``ingestor show``: print a topic's messages decoded, one JSON object per line."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

import orjson
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from schemas import avro


def decoded(message: Message) -> dict[str, Any]:
    """The message as the schema named in its headers reads it; undecodable values as base64."""
    raw = message.headers() or []
    headers = {name: value for name, value in (raw.items() if isinstance(raw, dict) else raw) if isinstance(value, bytes)}
    shown: dict[str, Any] = {
        "topic": message.topic(),
        "partition": message.partition(),
        "offset": message.offset(),
        "key": (message.key() or b"").decode(errors="replace"),
    }
    value = message.value() or b""
    name = headers.get("avro.schema.name", b"").decode()
    try:
        shown["value"] = (
            avro.load(name).decode(value) if name and headers.get("content-type") != avro.CONFLUENT_CONTENT_TYPE.encode() else None
        )
    except (OSError, ValueError, EOFError, IndexError, KeyError):
        shown["value"] = None
    if shown["value"] is None:
        shown["value_base64"] = base64.b64encode(value).decode()
    return shown


def messages(config: Mapping[str, Any], topic: str, limit: int, timeout: float = 10.0) -> Iterator[Message]:
    """Up to ``limit`` messages from the start of every partition, stopping at the current end."""
    consumer = Consumer({**config, "group.id": f"ingestor-show-{uuid.uuid4()}", "enable.auto.commit": False})
    try:
        described = consumer.list_topics(topic, timeout=timeout).topics[topic]
        if described.error is not None or not described.partitions:
            raise KafkaException(described.error or KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART))
        partitions = described.partitions
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)[1] for p in partitions}
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        shown, deadline = 0, time.monotonic() + timeout
        while shown < limit and time.monotonic() < deadline:
            positions = consumer.position([TopicPartition(topic, p) for p in partitions])
            if all(tp.offset >= ends[tp.partition] for tp in positions if ends[tp.partition] > 0):
                return
            message = consumer.poll(0.2)
            if message is not None and message.error() is None:
                shown += 1
                yield message
    finally:
        consumer.close()


def to_json(shown: dict[str, Any]) -> str:
    return orjson.dumps(shown, default=_plain).decode()


def _plain(value: object) -> object:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)
