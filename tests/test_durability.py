"""Promises that need time or a broker outage: compaction of retries, 503 while Kafka is down, load."""

from __future__ import annotations

import asyncio
import gc
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from confluent_kafka.admin import AdminClient

from ingestor.localkafka import LocalKafka, free_port
from ingestor.sender import encode, generated_payloads, send_all
from ingestor.settings import Settings
from ingestor.topics import TopicSpec, job_topic, reconcile
from schemas import avro
from tests.conftest import SECRET, read_topic, serving, signed, tuned, wait_for


def test_four_deliveries_of_one_job_compact_to_one_record_while_raw_keeps_all(settings: Settings) -> None:
    admin = AdminClient(settings.kafka_config())
    # Roll segments fast and clean eagerly, so compaction happens within the test (BRIEF.md).
    spec = job_topic(settings, "content_translate")
    eager = TopicSpec(
        spec.name, 1, -1, {**spec.config, "segment.ms": "100", "min.cleanable.dirty.ratio": "0.001", "delete.retention.ms": "0"}
    )
    admin.create_topics([eager.new_topic()])[spec.name].result()
    reconcile(admin, settings, create=True)
    body = json.dumps({"id": "job-retried", "status": "success", "type": "content_translate", "result": {"content": "ciao"}}).encode()

    with serving(settings) as url, httpx.Client(base_url=url) as client:
        answers = [client.post("/webhooks/sharpapi", content=body, headers=signed(body)) for _ in range(4)]
        assert [answer.status_code for answer in answers] == [200] * 4

        def compacted() -> bool:
            # Each later record closes the segment before it, so the cleaner may compact the retries.
            other = json.dumps({"id": f"later-{time.monotonic_ns()}", "status": "success", "type": "content_translate"}).encode()
            assert client.post("/webhooks/sharpapi", content=other, headers=signed(other)).status_code == 200
            keys = [message.key() for message in read_topic(settings.bootstrap_servers, spec.name)]
            return keys.count(b"job-retried") == 1

        wait_for(compacted, "the job topic to be compacted", timeout=120, interval=0.3)

    raws = [
        avro.load(avro.RAW_DELIVERY).decode(message.value() or b"")
        for message in read_topic(settings.bootstrap_servers, settings.raw_topic)
    ]
    assert [raw["body"] for raw in raws].count(body) == 4


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[LocalKafka]:
    """A broker of this test's own, to stop and start again."""
    with LocalKafka(tmp_path / "kafka") as broker:
        yield broker
        gc.collect()  # the test's clients go before their broker


def test_broker_down_is_503_within_the_deadline_and_recovers_without_restart(own_broker: LocalKafka, settings: Settings) -> None:
    settings = tuned(settings, bootstrap_servers=own_broker.bootstrap_servers, ack_timeout_ms=2000, retry_after_s=7)
    reconcile(AdminClient(settings.kafka_config()), settings, create=True)

    def body(n: int) -> bytes:
        return json.dumps({"id": f"outage-{n}", "status": "success", "type": "content_summarize"}).encode()

    with serving(settings) as url, httpx.Client(base_url=url, timeout=30) as client:
        assert client.post("/webhooks/sharpapi", content=body(1), headers=signed(body(1))).status_code == 200

        own_broker.stop()
        answers = []
        for n in (2, 3):
            started = time.monotonic()
            answers.append(client.post("/webhooks/sharpapi", content=body(n), headers=signed(body(n))))
            assert time.monotonic() - started < 2.0 + 3.0  # the deadline plus scheduling slack
        assert [answer.status_code for answer in answers] == [503, 503]
        assert [answer.headers["retry-after"] for answer in answers] == ["7", "7"]
        assert answers[0].json()["outcome"] == "unavailable"
        assert client.get("/readyz").status_code == 503
        assert client.get("/healthz").status_code == 200
        assert 'ingestor_webhooks_total{outcome="unavailable",route="_account"} 2.0' in client.get("/metrics").text

        own_broker.start()

        def accepted_again() -> bool:
            return client.post("/webhooks/sharpapi", content=body(4), headers=signed(body(4))).status_code == 200

        wait_for(accepted_again, "the ingestor to accept again", timeout=90, interval=0.5)
        wait_for(lambda: client.get("/readyz").status_code == 200, "readiness", timeout=30)

    keys = {message.key() for message in read_topic(settings.bootstrap_servers, settings.job_topic("content_summarize"))}
    assert {b"outage-1", b"outage-4"} <= keys


def test_two_thousand_concurrent_webhooks_through_ingestor_serve_all_land(topics: Settings, tmp_path: Path) -> None:
    settings = topics
    port = free_port()
    environment = {
        "PATH": "/usr/bin:/bin",
        "KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "TOPIC_PREFIX": settings.topic_prefix,
        "SHARPAPI_WEBHOOK_SECRET": SECRET.decode(),
        "TOPIC_PARTITIONS": str(settings.partitions),
    }
    command = [sys.executable, "-m", "ingestor", "serve", "--host", "127.0.0.1", "--port", str(port)]
    log_file = tmp_path / "serve.log"
    with log_file.open("w") as log:
        server = subprocess.Popen(command, env=environment, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: _answers(f"http://127.0.0.1:{port}/readyz"), "ingestor serve to be ready")
        bodies = [encode(payload) for payload in generated_payloads(2000, seed=7)]
        summary = asyncio.run(send_all(f"http://127.0.0.1:{port}/webhooks/sharpapi", SECRET, bodies, concurrency=100, retry_delay=0.2))
    finally:
        server.terminate()
        server.wait(30)

    assert "Application shutdown complete" in log_file.read_text()  # uvicorn then re-raises SIGTERM, so the exit code says -15
    assert server.returncode == -signal.SIGTERM

    assert summary.failed == []
    answered = {(r.answer["topic"], r.answer["partition"], r.answer["offset"]): r.answer["job_id"] for r in summary.results}
    assert len(set(answered.values())) == 2000
    job_topics = sorted({topic for topic, _, _ in answered})
    records = {
        (m.topic(), m.partition(), m.offset()): (m.key() or b"").decode() for m in read_topic(settings.bootstrap_servers, *job_topics)
    }
    assert {place: records.get(place) for place in answered} == answered
    assert len(set(records.values())) == 2000


def _answers(url: str) -> bool:
    try:
        return httpx.get(url).status_code == 200
    except httpx.TransportError:
        return False
