from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import fastavro
import pytest

from schemas import avro

NAMES = [avro.JOB_EVENT, avro.RAW_DELIVERY, avro.DEAD_LETTER, avro.JOB_STATS]
EVENT = {
    "id": "bf683177-3a48-47d1-9c4e-0b4de39517fa",
    "type": "content_translate",
    "status": "success",
    "result": '{"content": "ciao"}',
    "route": None,
    "received_at": datetime(2026, 12, 4, 12, 30, 15, 123000, tzinfo=UTC),
    "delivery_id": "0c1ebf51-ab29-4d93-855d-5021609811c8",
}


@pytest.mark.parametrize("name", NAMES)
def test_one_record_per_file_with_a_doc_on_every_field(name: str) -> None:
    document = json.loads((avro.DIRECTORY / f"{name}.avsc").read_text())
    assert f"{document['namespace']}.{document['name']}" == name
    assert document["type"] == "record"
    assert document["doc"]
    assert [field["name"] for field in document["fields"] if not field.get("doc")] == []


def test_a_job_event_round_trips() -> None:
    schema = avro.load(avro.JOB_EVENT)
    assert schema.decode(schema.encode(EVENT)) == EVENT


def test_a_datum_decodes_with_the_avsc_file_alone() -> None:
    datum = avro.load(avro.JOB_EVENT).encode(EVENT)
    reader_schema = fastavro.schema.load_schema(str(avro.DIRECTORY / "sharpapi.ingestor.JobEvent.avsc"))
    assert fastavro.schemaless_reader(io.BytesIO(datum), reader_schema, None) == EVENT


def test_encoding_is_strict_about_unknown_and_missing_fields() -> None:
    schema = avro.load(avro.JOB_EVENT)
    with pytest.raises(ValueError, match="extra"):
        schema.encode({**EVENT, "extra": 1})
    with pytest.raises(ValueError, match="id"):
        schema.encode({key: value for key, value in EVENT.items() if key != "id"})


def test_fingerprint_is_crc64_avro_of_the_canonical_form() -> None:
    schema = avro.load(avro.JOB_EVENT)
    canonical = fastavro.schema.to_parsing_canonical_form(schema.parsed)
    assert schema.fingerprint == fastavro.schema.fingerprint(canonical, "CRC-64-AVRO")
    assert len(schema.fingerprint) == 16


def test_a_reader_with_an_older_schema_reads_a_newer_event(tmp_path: object) -> None:
    newer = json.loads((avro.DIRECTORY / "sharpapi.ingestor.JobEvent.avsc").read_text())
    newer["fields"].append({"name": "model", "type": ["null", "string"], "default": None, "doc": "added later"})
    datum = io.BytesIO()
    fastavro.schemaless_writer(datum, fastavro.parse_schema(newer), {**EVENT, "model": "gpt"})
    older = avro.load(avro.JOB_EVENT)
    assert fastavro.schemaless_reader(io.BytesIO(datum.getvalue()), fastavro.parse_schema(newer), older.parsed) == EVENT
