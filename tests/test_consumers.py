"""The consumer services against a real broker, fed through the real ingestor."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from sqlalchemy import Column, Connection, Engine, String, Table, text

from consumers import settings as consumer_settings
from consumers.categories import SERVICE as CATEGORIES
from consumers.cli import SERVICES
from consumers.decoding import Decoder, header_pairs
from consumers.failures import SERVICE as FAILURES
from consumers.job_store import SERVICE as JOB_STORE
from consumers.metrics import Metrics
from consumers.resumes import SERVICE as RESUMES
from consumers.runner import SMALLEST_BATCH, Runner
from consumers.service import JobEvent, Permanent, Retriable, Service
from consumers.store import METADATA, create_tables, engine_for, upsert
from consumers.translations import SERVICE as TRANSLATIONS
from ingestor.localkafka import free_port
from ingestor.sender import encode, sample_payloads
from ingestor.settings import Settings
from schemas import avro
from tests.conftest import read_topic, signed, wait_for

JOB_EVENT = avro.load(avro.JOB_EVENT)


def for_consumers(settings: Settings, database_url: str, batch_size: int = 2000) -> consumer_settings.Settings:
    return consumer_settings.Settings(
        bootstrap_servers=settings.bootstrap_servers,
        topic_prefix=settings.topic_prefix,
        database_url=database_url,
        max_backoff_s=0.2,
        batch_size=batch_size,
    )


@contextmanager
def running(service: Service, settings: consumer_settings.Settings) -> Iterator[Engine]:
    """The service's runner in a thread, as ``consumers run`` runs it; yields its database."""
    engine = engine_for(settings.database_url)
    create_tables(engine, service.tables)
    stop = threading.Event()
    runner = Runner(service, settings, engine, Decoder(JOB_EVENT), Metrics())
    thread = threading.Thread(target=runner.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield engine
    finally:
        stop.set()
        thread.join(20)
        assert not thread.is_alive(), "the runner did not stop"
        engine.dispose()


def rows(engine: Engine, query: str) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text(query))]


def publish(settings: Settings, events: list[dict[str, Any]], *raw: bytes) -> None:
    """Write JobEvents (and raw values) to their job topics as the ingestor does."""
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers, "enable.idempotence": True})
    headers: list[tuple[str, str | bytes | None]] = [
        ("content-type", b"avro/binary"),
        ("avro.schema.name", JOB_EVENT.name.encode()),
        ("avro.schema.fingerprint", JOB_EVENT.fingerprint.encode()),
    ]
    for value in raw:
        producer.produce(settings.job_topic("content_translate"), value, b"garbage")
    for event in events:
        producer.produce(settings.job_topic(event["type"]), JOB_EVENT.encode(event), event["id"].encode(), headers=headers)
    assert producer.flush(30) == 0


T0 = int(datetime(2026, 12, 4, 12, 0, tzinfo=UTC).timestamp() * 1000)


def job(
    job_id: str, job_type: str = "content_translate", status: str = "success", result: str | None = None, at: int = 0
) -> dict[str, Any]:
    received = datetime(2026, 12, 4, 12, 0, tzinfo=UTC).timestamp() * 1000 + at
    return {
        "id": job_id,
        "type": job_type,
        "status": status,
        "result": result,
        "route": None,
        "received_at": int(received),
        "delivery_id": str(uuid.uuid4()),
    }


def test_services_are_listed() -> None:
    assert list(SERVICES) == ["job-store", "translations", "resumes", "categories", "failures"]


def test_each_service_turns_webhooks_into_its_rows(client: httpx.Client, settings: Settings, database_url: str) -> None:
    payloads = {p["type"]: p for p in sample_payloads() if "result" in p}
    chosen = [payloads["content_translate"], payloads["hr_parse_resume"], payloads["ecommerce_product_categories"]]
    failed = {"id": "failed-job-1", "status": "failed", "type": "content_summarize"}
    for payload in [*chosen, failed]:
        body = encode(payload)
        assert client.post("/webhooks/sharpapi", content=body, headers=signed(body)).status_code == 200
    config = for_consumers(settings, database_url)

    with running(JOB_STORE, config) as db:
        found = wait_for(
            lambda: len(rows(db, "SELECT id FROM jobs")) == 4 and rows(db, "SELECT id, type, status, result FROM jobs ORDER BY id"), "jobs"
        )
    expected = sorted((p["id"], p["type"], p["status"], json.dumps(p["result"], ensure_ascii=False, separators=(",", ":"))) for p in chosen)
    assert found == sorted([*expected, ("failed-job-1", "content_summarize", "failed", None)])

    translation = payloads["content_translate"]["result"]
    with running(TRANSLATIONS, config) as db:
        found = wait_for(lambda: rows(db, "SELECT job_id, from_language, to_language, content FROM translations"), "translations")
    assert found == [
        (payloads["content_translate"]["id"], translation["from_language"], translation["to_language"], translation["content"])
    ]

    resume = payloads["hr_parse_resume"]["result"]
    with running(RESUMES, config) as db:
        found = wait_for(
            lambda: rows(db, "SELECT job_id, name, email, phone, address, languages, positions, education FROM candidates"), "candidates"
        )
    [(job_id, name, email, phone, address, languages, positions, education)] = found
    assert (job_id, name, email, phone, address) == (
        payloads["hr_parse_resume"]["id"],
        resume["candidate_name"],
        resume["candidate_email"],
        resume["candidate_phone"],
        resume["candidate_address"],
    )
    assert (json.loads(languages), json.loads(positions), json.loads(education)) == (
        resume["candidate_spoken_languages"],
        resume["positions"],
        resume["education_qualifications"],
    )

    categories = payloads["ecommerce_product_categories"]["result"]
    with running(CATEGORIES, config) as db:
        found = wait_for(lambda: rows(db, "SELECT job_id, name, weight FROM categories ORDER BY name"), "categories")
    assert found == sorted((payloads["ecommerce_product_categories"]["id"], c["name"], float(c["weight"])) for c in categories)

    with running(FAILURES, config) as db:
        found = wait_for(lambda: rows(db, "SELECT job_id, type, route FROM failures"), "failures")
    assert found == [("failed-job-1", "content_summarize", None)]


def test_four_deliveries_of_a_job_are_one_row_and_replays_change_nothing(
    client: httpx.Client, settings: Settings, database_url: str
) -> None:
    body = encode(
        {
            "id": "once",
            "status": "success",
            "type": "content_translate",
            "result": {"content": "ciao", "from_language": "English", "to_language": "Italian"},
        }
    )
    for _ in range(4):
        assert client.post("/webhooks/sharpapi", content=body, headers=signed(body)).status_code == 200
    config = for_consumers(settings, database_url)

    with running(TRANSLATIONS, config) as db:
        wait_for(lambda: _committed(config, TRANSLATIONS, settings.job_topic("content_translate")) == 4, "all four consumed")
        first = rows(db, "SELECT * FROM translations")
    replay = consumer_settings.Settings(**{**config.__dict__, "topic_prefix": settings.topic_prefix})
    with running(Service("translations-replay", "", TRANSLATIONS.topics, TRANSLATIONS.handle, TRANSLATIONS.tables), replay) as db:
        wait_for(lambda: _committed(replay, "translations-replay", settings.job_topic("content_translate")) == 4, "the replay consumed")
        again = rows(db, "SELECT * FROM translations")

    assert first == [("once", "English", "Italian", "ciao")]
    assert again == first


def _committed(settings: consumer_settings.Settings, service: Service | str, topic: str) -> int:
    name = service if isinstance(service, str) else service.name
    consumer = Consumer({"bootstrap.servers": settings.bootstrap_servers, "group.id": settings.group(name)})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        offsets = consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=10)
        return sum(max(tp.offset, 0) for tp in offsets)
    finally:
        consumer.close()


def test_an_older_event_never_overwrites_a_newer_one(topics: Settings, tmp_path: Path) -> None:
    config = for_consumers(topics, f"sqlite:///{tmp_path / 'jobs.db'}")
    publish(topics, [job("j-late", status="success", at=2000), job("j-late", status="pending", at=1000)])

    with running(JOB_STORE, config) as db:
        wait_for(lambda: _committed(config, JOB_STORE, topics.job_topic("content_translate")) == 2, "both consumed")
        assert rows(db, "SELECT id, status FROM jobs") == [("j-late", "success")]


class Flaky:
    """A handler that fails permanently on 'bad' and twice, retriably, on 'flaky'."""

    def __init__(self) -> None:
        self.applied: list[str] = []
        self.attempts: dict[str, int] = {}

    def __call__(self, event: JobEvent, connection: Connection) -> None:
        self.attempts[event["id"]] = self.attempts.get(event["id"], 0) + 1
        if event["id"] == "bad":
            raise Permanent("bad is never usable")
        if event["id"] == "flaky" and self.attempts["flaky"] <= 2:
            raise Retriable("flaky is not ready yet")
        self.applied.append(event["id"])


def test_undecodable_and_permanent_failures_are_dead_lettered_and_the_rest_goes_on(topics: Settings, tmp_path: Path) -> None:
    config = for_consumers(topics, f"sqlite:///{tmp_path / 'jobs.db'}", batch_size=1)  # counts the handler's calls one by one
    handler = Flaky()
    service = Service("flaky", "", lambda s: [s.job_topic("content_translate")], handler)
    publish(topics, [job("bad"), job("flaky"), job("good")], b"\xff\x00 not avro")

    with running(service, config):
        wait_for(lambda: sorted(handler.applied) == ["flaky", "good"], "flaky and good to be applied")
        wait_for(lambda: _committed(config, service, topics.job_topic("content_translate")) == 4, "every offset committed")

    letters = sorted(read_topic(topics.bootstrap_servers, config.dlq_topic("flaky")), key=lambda m: m.key() or b"")
    bad, garbage = (dict(header_pairs(m)) for m in letters)
    assert [(m.key(), h["dlq.reason"]) for m, h in zip(letters, (bad, garbage), strict=True)] == [
        (b"bad", b"permanent"),
        (b"garbage", b"undecodable"),
    ]
    assert JOB_EVENT.decode(letters[0].value() or b"")["id"] == "bad"
    assert (bad["dlq.error"], bad["avro.schema.name"], bad["dlq.service"]) == (
        b"bad is never usable",
        b"sharpapi.ingestor.JobEvent",
        b"flaky",
    )
    assert letters[1].value() == b"\xff\x00 not avro"
    assert garbage["dlq.error"].startswith(b"not a JobEvent datum: ")
    assert (garbage["dlq.topic"], garbage["dlq.offset"]) == (topics.job_topic("content_translate").encode(), b"0")
    assert handler.attempts == {"bad": 1, "flaky": 3, "good": 1}


SEEN = Table("seen", METADATA, Column("job_id", String(256), primary_key=True), Column("status", String(64), nullable=False))


def _remember_unless_bad(event: JobEvent, connection: Connection) -> None:
    if event["id"] == "bad":
        raise Permanent("bad is never usable")
    upsert(connection, SEEN, {"job_id": event["id"], "status": event["status"]})


def test_a_failure_inside_a_batch_ends_as_one_by_one_would(topics: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = for_consumers(topics, f"sqlite:///{tmp_path / 'jobs.db'}")
    service = Service("batched", "", lambda s: [s.job_topic("content_translate")], _remember_unless_bad, (SEEN,))
    ids = [f"n{n:03}" for n in range(300)]
    publish(topics, [job(job_id, status="pending", at=n) for n, job_id in enumerate(ids)])
    publish(topics, [job("bad"), *(job(job_id, at=1000 + n) for n, job_id in enumerate(ids))])

    with caplog.at_level(logging.INFO, logger="consumers.runner"), running(service, config) as db:
        wait_for(lambda: _committed(config, service, topics.job_topic("content_translate")) == 601, "every offset committed")
        found = rows(db, "SELECT job_id, status FROM seen ORDER BY job_id")

    assert found == [(job_id, "success") for job_id in ids]
    [letter] = read_topic(topics.bootstrap_servers, config.dlq_topic("batched"))
    assert letter.key() == b"bad"
    processed = [record for record in caplog.records if record.getMessage() == "processed"]
    assert max(record.messages for record in processed if hasattr(record, "messages")) > 1  # the batch path was taken
    assert len([record for record in processed if not hasattr(record, "messages")]) < SMALLEST_BATCH  # halving isolated "bad"


def test_job_store_applies_a_batch_as_its_events_one_by_one(database_url: str) -> None:
    records = [job("j-1", status="pending", at=1), job("j-2", at=5), job("j-1", status="success", at=3), job("j-1", status="failed", at=2)]
    records += [job("j-2", status="late", at=4), job("j-3", status="first", at=7), job("j-3", status="second", at=7)]
    events = [cast(JobEvent, {**record, "received_at": datetime.fromtimestamp(record["received_at"] / 1000, UTC)}) for record in records]
    one_by_one, batched = engine_for("sqlite:///:memory:"), engine_for(database_url)
    for engine in (one_by_one, batched):
        create_tables(engine, JOB_STORE.tables)
    with one_by_one.begin() as connection:
        for event in events:
            JOB_STORE.handle(event, connection)
    with batched.begin() as connection:
        JOB_STORE.apply(events, connection)  # one statement: PostgreSQL refuses a key twice in it, so only the winners go

    query = "SELECT id, status, received_at FROM jobs ORDER BY id"
    found = rows(batched, query), rows(one_by_one, query)
    batched.dispose()
    one_by_one.dispose()
    assert found[0] == found[1] == [("j-1", "success", T0 + 3), ("j-2", "success", T0 + 5), ("j-3", "second", T0 + 7)]


def _service_process(
    settings: Settings, database_url: str, service: str, log: Path, *options: str, batch_size: int = 2000
) -> subprocess.Popen[bytes]:
    environment = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "TOPIC_PREFIX": settings.topic_prefix,
        "DATABASE_URL": database_url,
        "CONSUMER_BATCH_SIZE": str(batch_size),
    }
    with log.open("ab") as out:
        command = [sys.executable, "-m", "consumers", "run", service, *options]
        return subprocess.Popen(command, env=environment, stdout=out, stderr=subprocess.STDOUT)


def test_a_service_killed_mid_stream_resumes_with_every_row_once(topics: Settings, tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'jobs.db'}"
    publish(topics, [job(f"bulk-{n:04}", job_type=("content_keywords", "seo_generate_tags")[n % 2], at=n) for n in range(1000)])
    engine = engine_for(database_url)
    create_tables(engine, [METADATA.tables["jobs"]])

    def count() -> int:
        return int(rows(engine, "SELECT count(*) FROM jobs")[0][0])

    first = _service_process(
        topics, database_url, "job-store", tmp_path / "first.log", batch_size=5
    )  # many commits: the kill lands mid-stream
    wait_for(lambda: count() >= 100, "some rows before the kill")
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    at_kill = count()
    second = _service_process(topics, database_url, "job-store", tmp_path / "second.log")
    try:
        wait_for(lambda: count() == 1000, "all 1,000 rows after the restart", timeout=120)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(20)

    assert at_kill < 1000
    assert rows(engine, "SELECT count(*), count(DISTINCT id), min(id), max(id) FROM jobs") == [(1000, 1000, "bulk-0000", "bulk-0999")]


def test_sigterm_exits_within_ten_seconds_with_offsets_committed(topics: Settings, tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'jobs.db'}"
    publish(topics, [job(f"term-{n}", job_type="content_translate", at=n) for n in range(50)])
    engine = engine_for(database_url)
    create_tables(engine, [METADATA.tables["jobs"]])
    port = free_port()
    service = _service_process(topics, database_url, "job-store", tmp_path / "service.log", "--metrics-port", str(port))
    config = for_consumers(topics, database_url)
    wait_for(lambda: rows(engine, "SELECT count(*) FROM jobs") == [(50,)], "50 rows")
    metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    assert 'consumer_processed_total{service="job-store"} 50.0' in metrics
    assert "# TYPE consumer_lag gauge" in metrics

    service.send_signal(signal.SIGTERM)
    started = time.monotonic()
    code = service.wait(15)

    assert time.monotonic() - started < 10
    assert code == 0
    assert _committed(config, JOB_STORE, topics.job_topic("content_translate")) == 50
