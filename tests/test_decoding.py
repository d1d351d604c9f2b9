"""JobEvents decode across schema versions: the evolution rules the topics promise."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fastavro
import pytest

from consumers.decoding import Decoder, Undecodable
from schemas import avro

CURRENT = avro.load(avro.JOB_EVENT)
EVENT = {
    "id": "j-1",
    "type": "content_translate",
    "status": "success",
    "result": '{"content":"ciao"}',
    "route": "team-a",
    "received_at": datetime(2026, 12, 4, 12, 0, tzinfo=UTC),
    "delivery_id": "d-1",
}


def newer_schema(tmp_path: Path) -> avro.Schema:
    """The JobEvent with one field added at the end, with a default: what the evolution rules allow."""
    document = json.loads(CURRENT.text)
    document["fields"].append({"name": "model", "type": ["null", "string"], "default": None, "doc": "The model that ran the job."})
    (tmp_path / f"{avro.JOB_EVENT}.avsc").write_text(json.dumps(document))
    return avro.load(avro.JOB_EVENT, tmp_path)


def message(schema: avro.Schema, record: dict[str, Any]) -> tuple[bytes, dict[str, bytes]]:
    """A message's value and headers as the ingestor writes them."""
    datum = io.BytesIO()
    fastavro.schemaless_writer(datum, schema.parsed, record)
    headers = {
        "content-type": b"avro/binary",
        "avro.schema.name": schema.name.encode(),
        "avro.schema.fingerprint": schema.fingerprint.encode(),
    }
    return datum.getvalue(), headers


def test_a_reader_with_the_current_schema_reads_current_events() -> None:
    assert Decoder(CURRENT).decode_value(*message(CURRENT, EVENT)) == EVENT


def test_a_reader_with_the_previous_schema_reads_events_of_a_newer_writer(tmp_path: Path) -> None:
    newer = newer_schema(tmp_path)
    assert newer.fingerprint != CURRENT.fingerprint

    assert Decoder(CURRENT).decode_value(*message(newer, {**EVENT, "model": "gpt-4o"})) == EVENT


def test_a_reader_with_a_newer_schema_reads_events_of_the_previous_writer_with_the_default(tmp_path: Path) -> None:
    newer = newer_schema(tmp_path)

    assert Decoder(newer, known=[CURRENT]).decode_value(*message(CURRENT, EVENT)) == {**EVENT, "model": None}


def test_foreign_bytes_are_undecodable_with_a_reason() -> None:
    with pytest.raises(Undecodable, match=r"^not a JobEvent datum: "):
        Decoder(CURRENT).decode_value(b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", {})
    with pytest.raises(Undecodable, match=r"^the message has no value$"):
        Decoder(CURRENT).decode_value(None, {})


def test_the_registry_format_without_a_registry_is_undecodable() -> None:
    framed = b"\x00\x00\x00\x00\x01" + CURRENT.encode(EVENT)
    with pytest.raises(Undecodable, match="SCHEMA_REGISTRY_URL is not set"):
        Decoder(CURRENT).decode_value(framed, {"content-type": b"avro/binary; registry=confluent"})
