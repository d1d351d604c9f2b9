"""With SCHEMA_REGISTRY_URL set, values use Confluent's wire format (magic byte, schema id, datum)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext
from sqlalchemy import Engine, text

from consumers import settings as consumer_settings
from consumers.decoding import Decoder
from consumers.job_store import SERVICE as JOB_STORE
from consumers.metrics import Metrics
from consumers.runner import Runner
from consumers.store import create_tables, engine_for
from ingestor.localkafka import free_port
from ingestor.settings import Settings
from schemas import avro
from tests.conftest import read_topic, serving, signed, tuned, wait_for
from tests.registry import Registry
from tests.test_analytics import analytics, table


@pytest.fixture
def registry() -> Iterator[tuple[str, Registry]]:
    registry, port = Registry(), free_port()
    server = uvicorn.Server(uvicorn.Config(registry.app, host="127.0.0.1", port=port, log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, "the registry to start")
    yield f"http://127.0.0.1:{port}", registry
    server.should_exit = True
    thread.join(30)


def test_values_are_registered_and_framed_with_the_schema_id(topics: Settings, registry: tuple[str, Registry]) -> None:
    url, store = registry
    settings = tuned(topics, schema_registry_url=url)
    body = json.dumps({"id": "j-sr", "status": "success", "type": "content_translate", "result": {"content": "ciao"}}).encode()

    with serving(settings) as base, httpx.Client(base_url=base) as client:
        answers = [client.post("/webhooks/sharpapi", content=body, headers=signed(body)) for _ in range(2)]

    assert [answer.status_code for answer in answers] == [200, 200]
    job_topic = settings.job_topic("content_translate")
    assert sorted(store.subjects) == sorted([f"{job_topic}-value", f"{settings.raw_topic}-value"])
    messages = read_topic(settings.bootstrap_servers, job_topic)
    values = [message.value() or b"" for message in messages]
    schema_id = store.subjects[f"{job_topic}-value"][0]
    assert [value[:5] for value in values] == [b"\x00" + schema_id.to_bytes(4, "big")] * 2
    assert dict(messages[0].headers() or [])["content-type"] == b"avro/binary; registry=confluent"
    with SchemaRegistryClient({"url": url}) as reader:
        event = AvroDeserializer(reader)(values[0], SerializationContext(job_topic, MessageField.VALUE))
    assert (event["id"], event["result"]) == ("j-sr", '{"content": "ciao"}')
    assert avro.load(avro.JOB_EVENT).decode(values[0][5:])["id"] == "j-sr"


def test_an_unreachable_registry_is_503_not_an_acknowledgement(topics: Settings) -> None:
    settings = tuned(topics, schema_registry_url=f"http://127.0.0.1:{free_port()}")
    body = json.dumps({"id": "j-sr2", "status": "success", "type": "content_translate"}).encode()

    with serving(settings) as base, httpx.Client(base_url=base, timeout=30) as client:
        answer = client.post("/webhooks/sharpapi", content=body, headers=signed(body))

    assert answer.status_code == 503
    assert answer.json()["outcome"] == "unavailable"
    assert read_topic(settings.bootstrap_servers, settings.job_topic("content_translate")) == []


def test_job_store_decodes_the_registry_format(topics: Settings, registry: tuple[str, Registry], tmp_path: Path) -> None:
    url, _ = registry
    settings = tuned(topics, schema_registry_url=url)
    body = json.dumps({"id": "j-sr3", "status": "success", "type": "content_translate", "result": "ciao"}).encode()
    with serving(settings) as base, httpx.Client(base_url=base) as client:
        assert client.post("/webhooks/sharpapi", content=body, headers=signed(body)).status_code == 200
    config = consumer_settings.Settings(
        bootstrap_servers=settings.bootstrap_servers,
        topic_prefix=settings.topic_prefix,
        database_url=f"sqlite:///{tmp_path / 'jobs.db'}",
        schema_registry_url=url,
    )
    engine = engine_for(config.database_url)
    create_tables(engine, JOB_STORE.tables)
    stop = threading.Event()
    with SchemaRegistryClient({"url": url}) as client:
        runner = Runner(JOB_STORE, config, engine, Decoder(avro.load(avro.JOB_EVENT), registry=client), Metrics())
        thread = threading.Thread(target=runner.run, args=(stop,), daemon=True)
        thread.start()
        try:
            found = wait_for(lambda: _rows(engine), "the job row")
        finally:
            stop.set()
            thread.join(20)

    assert found == [("j-sr3", '"ciao"')]


def _rows(engine: Engine) -> list[tuple[object, ...]]:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text("SELECT id, result FROM jobs"))]


def test_the_analytics_reads_and_writes_the_registry_format(topics: Settings, registry: tuple[str, Registry], tmp_path: Path) -> None:
    url, store = registry
    settings = tuned(topics, schema_registry_url=url)
    body = json.dumps({"id": "j-sr4", "status": "failed", "type": "content_translate"}).encode()
    with serving(settings) as base, httpx.Client(base_url=base) as client:
        assert client.post("/webhooks/sharpapi", content=body, headers=signed(body)).status_code == 200

    with analytics(settings, f"sqlite:///{tmp_path / 'stats.db'}", tmp_path / "state", SCHEMA_REGISTRY_URL=url) as engine:
        wait_for(lambda: [row[3:7] for row in table(engine)] == [(1, 1, 0, 1)], "the window of the failed job")

    [message] = read_topic(settings.bootstrap_servers, settings.stats_topic)
    value = message.value() or b""
    assert dict(message.headers() or [])["content-type"] == b"avro/binary; registry=confluent"
    assert value[:5] == b"\x00" + store.subjects[f"{settings.stats_topic}-value"][0].to_bytes(4, "big")
    stats = avro.load(avro.JOB_STATS).decode(value[5:])
    assert (stats["job_type"], stats["deliveries"], stats["failed"], stats["failure_rate"]) == ("content_translate", 1, 1, 1.0)
