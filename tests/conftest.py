from __future__ import annotations

import gc
import os
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from confluent_kafka import Consumer, KafkaException, Message, TopicPartition
from confluent_kafka.admin import AdminClient

from ingestor.app import create_app
from ingestor.localkafka import LocalKafka, free_port
from ingestor.settings import Settings
from ingestor.signatures import Secret, sign
from ingestor.topics import reconcile
from tests.postgres import PostgresMissing, postgres_server

SECRET = b"current-test-secret"
PREVIOUS = b"previous-test-secret"


def _docker_answers() -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)  # docker-py leaves its socket to the GC on failure
        try:
            import docker

            engine = docker.from_env()
            try:
                return bool(engine.ping())
            finally:
                engine.close()
        except Exception:
            return False
        finally:
            gc.collect()


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap servers of a real broker: KAFKA_BOOTSTRAP_SERVERS, else Docker, else local jars."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    elif _docker_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as container:
            yield container.get_bootstrap_server()
            gc.collect()
    else:
        with LocalKafka(tmp_path_factory.mktemp("kafka")) as broker:
            yield broker.bootstrap_servers
            gc.collect()  # clients the tests dropped go now, before their broker, or they log its absence


@pytest.fixture
def settings(kafka: str) -> Settings:
    """Settings for one test: its own topic prefix on the shared broker."""
    return Settings(
        bootstrap_servers=kafka,
        topic_prefix=f"t{uuid.uuid4().hex[:12]}",
        secrets=(Secret("current", SECRET), Secret("previous-1", PREVIOUS)),
        partitions=2,
        ack_timeout_ms=10_000,
    )


@pytest.fixture
def topics(settings: Settings) -> Settings:
    """The test's topics exist, as ``ingestor topics`` creates them."""
    reconcile(AdminClient(settings.kafka_config()), settings, create=True)
    return settings


@contextmanager
def serving(settings: Settings) -> Iterator[str]:
    """The ingestor on uvicorn in a thread on a free port; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, "the server to start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


@pytest.fixture
def ingestor(topics: Settings) -> Iterator[str]:
    with serving(topics) as url:
        yield url


@pytest.fixture
def client(ingestor: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=ingestor, timeout=30) as http:
        yield http


def signed(body: bytes, secret: bytes = SECRET, /, **headers: str) -> dict[str, str]:
    return {"Content-Type": "application/json", "User-Agent": "SharpAPIWebhook/1.0", "X-Signature": sign(body, secret), **headers}


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 60.0, interval: float = 0.05) -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:g} s waiting for {what}")


def read_topic(bootstrap: str, *topics: str, timeout: float = 30.0) -> list[Message]:
    """Every message now in ``topics``, read from the start of each partition up to its end."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{uuid.uuid4()}", "enable.auto.commit": False})
    try:
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(consumer.list_topics(topic, timeout=timeout).topics[topic].partitions)
        ]
        ends = {(tp.topic, tp.partition): _end_offset(consumer, tp, timeout) for tp in partitions}
        consumer.assign([TopicPartition(tp.topic, tp.partition, 0) for tp in partitions])
        messages: list[Message] = []
        deadline = time.monotonic() + timeout
        while True:
            # Compaction can leave a partition's end past its last record, so ask for the position too.
            positions = {(tp.topic, tp.partition): tp.offset for tp in consumer.position(partitions)}
            if all(positions[key] >= end for key, end in ends.items() if end > 0):
                return messages
            if time.monotonic() > deadline:
                pytest.fail(f"could not read {topics} to the end within {timeout:g} s")
            message = consumer.poll(0.2)
            if message is not None:
                assert message.error() is None, message.error()
                messages.append(message)
    finally:
        consumer.close()


def _end_offset(consumer: Consumer, partition: TopicPartition, timeout: float) -> int:
    """The partition's high watermark, waiting out leadership moves just after the topic was created."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return int(consumer.get_watermark_offsets(partition, timeout=timeout)[1])
        except KafkaException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def tuned(settings: Settings, **changes: Any) -> Settings:
    return replace(settings, **changes)


@pytest.fixture(scope="session")
def samples_path() -> Path:
    return Path(__file__).resolve().parent.parent / "ingestor" / "samples" / "payloads.json"


@pytest.fixture(scope="session")
def postgres() -> Iterator[str]:
    """A PostgreSQL server of the test session's own on a free port; yields its URL."""
    try:
        with postgres_server(fsync=False) as url:
            yield url
    except PostgresMissing as exc:
        pytest.fail(str(exc))


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database for one test: an SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'jobs.db'}"
    import psycopg

    server: str = request.getfixturevalue("postgres")
    name = f"t{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    return server.rsplit("/", 1)[0] + f"/{name}"
