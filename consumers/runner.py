"""Poll, decode, handle, commit: the loop every consumer service runs.

Delivery is at least once: an offset is stored only after the handler's transaction committed
(or the message went to the service's dead-letter topic), and stored offsets are committed in
the background, on partition revocation and on shutdown.

Messages already fetched are applied in one transaction, up to ``CONSUMER_BATCH_SIZE`` at a time.
If anything in a batch fails, the batch is rolled back and its halves are tried, down to
messages one by one, each in its own transaction: that path decides what is retried and what is
dead-lettered, so batching changes the speed and never the outcome.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import traceback
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from consumers.decoding import Decoder, Undecodable, header_pairs
from consumers.metrics import Metrics
from consumers.service import HandlerError, JobEvent, Retriable, Service
from consumers.settings import Settings

log = logging.getLogger("consumers.runner")

FIRST_BACKOFF_S = 0.1
SMALLEST_BATCH = 8  # a failing batch this small goes one by one
DLQ_RETENTION_MS = 30 * 24 * 60 * 60 * 1000


class Runner:
    def __init__(self, service: Service, settings: Settings, engine: Engine, decoder: Decoder, metrics: Metrics) -> None:
        self.service = service
        self.settings = settings
        self.engine = engine
        self.decoder = decoder
        self.metrics = metrics
        self.dlq_topic = settings.dlq_topic(service.name)
        self._attempts: dict[tuple[str, int, int], int] = {}

    def run(self, stop: threading.Event) -> None:
        """Consume until ``stop`` is set, then finish the message in hand, commit and close."""
        self._ensure_dlq_topic()
        consumer = Consumer(
            {
                **self.settings.kafka_config(),
                "group.id": self.settings.group(self.service.name),
                "auto.offset.reset": "earliest",
                "enable.auto.commit": True,
                "enable.auto.offset.store": False,
                "partition.assignment.strategy": "cooperative-sticky",
                "statistics.interval.ms": 5000,
                "topic.metadata.refresh.interval.ms": 30_000,  # pattern subscriptions see new job types within 30 s
                "stats_cb": self._observe_lag,
            }
        )
        producer = Producer({**self.settings.kafka_config(), "enable.idempotence": True, "acks": "all"})
        topics = list(self.service.topics(self.settings))
        consumer.subscribe(topics, on_revoke=_commit)
        log.info("consuming", extra={"service": self.service.name, "topics": topics})
        try:
            while not stop.is_set():
                first = consumer.poll(0.5)  # waits for one message, then takes what was fetched already
                if first is None:
                    continue
                batch = []
                for message in [first, *consumer.consume(self.settings.batch_size - 1, 0)]:
                    if message.error() is None:
                        batch.append(message)
                    else:
                        log.warning("consumer error", extra={"service": self.service.name, "error": str(message.error())})
                if batch:
                    self._process_batch(consumer, producer, batch, stop)
        finally:
            _commit(consumer, [])
            consumer.close()
            producer.flush(10)
            producer.purge()  # a dead letter still unconfirmed kept its offset: it comes again

    def _process_batch(
        self,
        consumer: Consumer,
        producer: Producer,
        messages: list[Message],
        stop: threading.Event,
        held: set[tuple[str | None, int | None]] | None = None,
    ) -> None:
        """Apply ``messages`` in one transaction; if that fails, each half on its own, down to one by one.

        Halving finds a bad message among thousands in a few dozen transactions instead of thousands.
        ``held`` are partitions sought back for a retry: their later messages come again, so they are skipped.
        """
        held = set() if held is None else held
        messages = [message for message in messages if (message.topic(), message.partition()) not in held]
        started = time.perf_counter()
        if len(messages) > 1 and self._apply_batch(messages):
            self._batch_done(consumer, messages, started)
        elif len(messages) > SMALLEST_BATCH:
            half = len(messages) // 2
            self._process_batch(consumer, producer, messages[:half], stop, held)
            self._process_batch(consumer, producer, messages[half:], stop, held)
        else:
            for message in messages:
                if (message.topic(), message.partition()) not in held and not self._process(consumer, producer, message, stop):
                    held.add((message.topic(), message.partition()))

    def _batch_done(self, consumer: Consumer, messages: list[Message], started: float) -> None:
        self.metrics.processed.labels(self.service.name).inc(len(messages))
        last = {(message.topic(), message.partition()): message.offset() or 0 for message in messages}
        try:
            consumer.store_offsets(offsets=[TopicPartition(topic, partition, offset + 1) for (topic, partition), offset in last.items()])
        except KafkaException as exc:  # a partition was revoked meanwhile: its new owner redelivers
            log.warning("offsets not stored", extra={"service": self.service.name, "error": str(exc)})
        latency_ms = round((time.perf_counter() - started) * 1000, 3)
        log.info("processed", extra={"service": self.service.name, "messages": len(messages), "latency_ms": latency_ms})

    def _apply_batch(self, messages: list[Message]) -> bool:
        """Apply every message in one transaction; False (and nothing applied) if any of them fails."""
        try:
            events = [self.decoder.decode(message) for message in messages]
            with self.engine.begin() as connection:
                self.service.apply(events, connection)
        except Exception as exc:  # whatever it was, the one-by-one path handles and reports it
            log.debug(
                "batch rolled back; trying its halves", extra={"service": self.service.name, "messages": len(messages), "error": str(exc)}
            )
            return False
        return True

    def _process(self, consumer: Consumer, producer: Producer, message: Message, stop: threading.Event) -> bool:
        """Apply or dead-letter one message and store its offset; False when it is to be retried instead."""
        started = time.perf_counter()
        place = (message.topic() or "", message.partition() or 0, message.offset() or 0)
        fields: dict[str, Any] = {"service": self.service.name, "topic": place[0], "partition": place[1], "offset": place[2]}
        failure: tuple[str, str] | None = None
        try:
            event = self.decoder.decode(message)
            fields.update(job_id=event["id"], type=event["type"], status=event["status"])
            self._apply(event)
        except HandlerError as exc:
            if exc.retriable:
                self._retry_later(consumer, place, exc, fields, stop)
                return False
            failure = ("permanent", str(exc))
        except Undecodable as exc:
            failure = ("undecodable", str(exc))
        except Exception as exc:
            log.exception("handler failed unexpectedly", extra=fields)
            failure = ("unexpected", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")
        if failure is None:
            self.metrics.processed.labels(self.service.name).inc()
            log.info("processed", extra={**fields, "latency_ms": round((time.perf_counter() - started) * 1000, 3)})
        else:
            try:
                self._dead_letter(producer, message, *failure, fields)
            except KafkaException as exc:  # the dead letter is not safe yet: keep the offset, try again later
                self._retry_later(consumer, place, Retriable(f"dead-letter topic: {exc}"), fields, stop)
                return False
        self._attempts.pop(place, None)
        self._store_offset(consumer, message, fields)
        return True

    def _store_offset(self, consumer: Consumer, message: Message, fields: dict[str, Any]) -> None:
        try:
            consumer.store_offsets(message=message)
        except KafkaException as exc:  # the partition was revoked meanwhile: its new owner redelivers
            log.warning("offset not stored", extra={**fields, "offset": message.offset(), "error": str(exc)})

    def _apply(self, event: JobEvent) -> None:
        try:
            with self.engine.begin() as connection:
                self.service.handle(event, connection)
        except (OperationalError, PoolTimeout) as exc:  # the database is away or busy: later may work
            raise Retriable(f"database: {exc}") from exc

    def _retry_later(
        self, consumer: Consumer, place: tuple[str, int, int], exc: HandlerError, fields: dict[str, Any], stop: threading.Event
    ) -> None:
        attempt = self._attempts[place] = self._attempts.get(place, 0) + 1
        backoff = min(FIRST_BACKOFF_S * 2 ** (attempt - 1), self.settings.max_backoff_s)
        self.metrics.failed.labels(self.service.name, "retriable").inc()
        log.warning("retrying", extra={**fields, "attempt": attempt, "backoff_s": backoff, "error": str(exc)})
        consumer.seek(TopicPartition(place[0], place[1], place[2]))
        stop.wait(backoff)

    def _dead_letter(self, producer: Producer, message: Message, kind: str, error: str, fields: dict[str, Any]) -> None:
        """Write the original bytes and headers plus the error, and wait for the ack before the offset moves on."""
        self.metrics.failed.labels(self.service.name, kind).inc()
        headers: list[tuple[str, str | bytes | None]] = [
            *header_pairs(message),
            ("dlq.service", self.service.name.encode()),
            ("dlq.reason", kind.encode()),
            ("dlq.error", error.encode()),
            ("dlq.topic", (message.topic() or "").encode()),
            ("dlq.partition", str(message.partition()).encode()),
            ("dlq.offset", str(message.offset()).encode()),
        ]
        failures: list[KafkaError] = []

        def report(err: KafkaError | None, _: Message) -> None:
            if err is not None:
                failures.append(err)

        producer.produce(self.dlq_topic, message.value(), message.key(), headers=headers, on_delivery=report)
        if producer.flush(30) or failures:
            raise KafkaException(failures[0] if failures else KafkaError(KafkaError._MSG_TIMED_OUT))
        self.metrics.dead_lettered.labels(self.service.name).inc()
        log.error("dead-lettered", extra={**fields, "reason": kind, "error": error.splitlines()[0], "dlq_topic": self.dlq_topic})

    def _ensure_dlq_topic(self) -> None:
        admin = AdminClient(self.settings.kafka_config())
        if self.dlq_topic in admin.list_topics(timeout=30).topics:
            return
        spec = NewTopic(self.dlq_topic, 1, -1, config={"cleanup.policy": "delete", "retention.ms": str(DLQ_RETENTION_MS)})
        try:
            admin.create_topics([spec])[self.dlq_topic].result()
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise

    def _observe_lag(self, stats: str) -> None:
        for topic, detail in json.loads(stats).get("topics", {}).items():
            for partition, numbers in detail.get("partitions", {}).items():
                if partition != "-1" and numbers.get("consumer_lag", -1) >= 0:
                    self.metrics.lag.labels(self.service.name, topic, partition).set(numbers["consumer_lag"])


def _commit(consumer: Consumer, partitions: list[TopicPartition]) -> None:
    try:
        consumer.commit(asynchronous=False)
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError._NO_OFFSET:
            log.warning("commit failed", extra={"error": str(exc)})
