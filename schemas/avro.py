"""Load the .avsc files once and encode or decode plain Avro binary datums.

A datum carries no schema id: readers decode it with the .avsc file alone, as fastavro,
Flink's ``avro`` format, Spark's ``from_avro`` and quixstreams do.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form
from fastavro.types import Schema as ParsedSchema

DIRECTORY = Path(__file__).parent
CONTENT_TYPE = "avro/binary"
# Values framed for Confluent Schema Registry: a zero byte, the 4-byte schema id, then the datum.
CONFLUENT_CONTENT_TYPE = f"{CONTENT_TYPE}; registry=confluent"

JOB_EVENT = "sharpapi.ingestor.JobEvent"
RAW_DELIVERY = "sharpapi.ingestor.RawDelivery"
DEAD_LETTER = "sharpapi.ingestor.DeadLetter"
JOB_STATS = "sharpapi.ingestor.JobStats"


@dataclass(frozen=True)
class Schema:
    name: str
    text: str
    parsed: ParsedSchema
    fingerprint: str

    def encode(self, record: Mapping[str, Any]) -> bytes:
        out = io.BytesIO()
        fastavro.schemaless_writer(out, self.parsed, record, strict=True)
        return out.getvalue()

    def headers(self, content_type: str = CONTENT_TYPE) -> list[tuple[str, bytes]]:
        """The Kafka headers that name this schema beside its datums, as every writer here sets them."""
        return [
            ("content-type", content_type.encode()),
            ("avro.schema.name", self.name.encode()),
            ("avro.schema.fingerprint", self.fingerprint.encode()),
        ]

    def decode(self, datum: bytes, writer: Schema | None = None) -> dict[str, Any]:
        """Decode ``datum``; pass the ``writer`` schema when it differs from this reader's."""
        writer_schema = self.parsed if writer is None else writer.parsed
        record = fastavro.schemaless_reader(io.BytesIO(datum), writer_schema, self.parsed)
        assert isinstance(record, dict)
        return record


@cache
def load(name: str, directory: Path = DIRECTORY) -> Schema:
    """Parse ``<directory>/<name>.avsc`` once; named types resolve from sibling files."""
    path = directory / f"{name}.avsc"
    parsed = fastavro.schema.load_schema(str(path))
    return Schema(
        name=name,
        text=path.read_text(encoding="utf-8"),
        parsed=parsed,
        fingerprint=fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO"),
    )
