"""The only module that talks to the Kafka producer.

A thread polls the producer for delivery reports. Reports queue up in a deque; the first
one to arrive while the event loop has none pending schedules a drain, so the loop wakes
once per batch of reports, not once per message, and never waits for a poll to time out.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException, Message, Producer


class PublishError(Exception):
    """Kafka did not confirm the write: its outcome is unknown, so the sender should retry."""


@dataclass(frozen=True)
class Delivered:
    topic: str
    partition: int
    offset: int
    seconds: float


_Report = tuple["asyncio.Future[Delivered]", float, KafkaError | None, Message]


def producer_config(base: Mapping[str, object], ack_timeout_ms: int) -> dict[str, object]:
    """Durable defaults (acks=all, idempotence); librdkafka overrides from the settings win."""
    return {
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 2,
        "message.timeout.ms": ack_timeout_ms,
        "allow.auto.create.topics": False,
        "queue.buffering.max.messages": 100_000,
        **base,
    }


class Publisher:
    def __init__(self, config: Mapping[str, object]) -> None:
        self._producer = Producer(dict(config))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reports: deque[_Report] = deque()
        self._drain_scheduled = False
        self._stopping = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="kafka-delivery-reports", daemon=True)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._poller.start()

    async def close(self, timeout: float = 10.0) -> int:
        """Wait up to ``timeout`` for messages still queued, then shut the producer; return how many were left.

        Messages left then were answered 503 (the server has finished every request), so
        dropping them loses nothing that was acknowledged.
        """
        self._stopping.set()
        await asyncio.to_thread(self._poller.join)
        left: int = await asyncio.to_thread(self._producer.flush, timeout)
        self._producer.purge()  # the producer itself is destroyed with this object (confluent-kafka < 2.13 has no close())
        self._drain()
        return left

    async def publish(self, topic: str, key: str | bytes | None, value: bytes, headers: Sequence[tuple[str, bytes]]) -> Delivered:
        """Write one message and return once the broker acknowledged it; cancel to give up waiting."""
        assert self._loop is not None, "Publisher.start() was not awaited"
        future: asyncio.Future[Delivered] = self._loop.create_future()
        started = time.perf_counter()

        def report(err: KafkaError | None, msg: Message) -> None:
            self._reports.append((future, time.perf_counter() - started, err, msg))
            if not self._drain_scheduled:
                self._drain_scheduled = True
                self._wake()

        try:
            self._producer.produce(topic, value, key, headers=list(headers), on_delivery=report)
        except BufferError as exc:
            raise PublishError("the producer queue is full") from exc
        except KafkaException as exc:
            raise PublishError(str(exc.args[0])) from exc
        return await future

    async def cluster_topics(self, timeout: float) -> set[str]:
        """Names of the cluster's topics; raises PublishError when no broker answers in time."""
        try:
            metadata = await asyncio.to_thread(self._producer.list_topics, timeout=timeout)
        except KafkaException as exc:
            raise PublishError(str(exc.args[0])) from exc
        return set(metadata.topics)

    def _poll(self) -> None:
        while not self._stopping.is_set():
            self._producer.poll(0.1)

    def _wake(self) -> None:
        assert self._loop is not None
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        """On the event loop: settle every report queued so far."""
        self._drain_scheduled = False
        reports = self._reports
        while reports:
            future, seconds, err, msg = reports.popleft()
            if future.done():
                continue
            if err is not None:
                future.set_exception(PublishError(err.str()))
            else:
                future.set_result(Delivered(msg.topic() or "", msg.partition() or 0, msg.offset() or 0, seconds))
