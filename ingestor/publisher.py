"""The only module that talks to the Kafka producer.

Delivery reports are served on the event loop itself: while messages are in flight, the loop
polls the producer every millisecond without blocking, and each report settles its
future in place. No thread hands reports over, so there is no wake-up per batch and no
contention for the GIL with a polling thread.
"""

from __future__ import annotations

import asyncio
import time
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


POLL_INTERVAL_S = 0.001  # uvloop rounds timers to whole milliseconds: less would spin


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
        self._polling: asyncio.TimerHandle | asyncio.Handle | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()

    async def close(self, timeout: float = 10.0) -> int:
        """Wait up to ``timeout`` for messages still queued, then drop them; return how many were left.

        Messages left then were answered 503 (the server has finished every request), so
        dropping them loses nothing that was acknowledged.
        """
        deadline = time.monotonic() + timeout
        while len(self._producer) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)  # the polling goes on meanwhile
        left = len(self._producer)
        self._producer.purge()  # the producer itself is destroyed with this object (confluent-kafka < 2.13 has no close())
        self._producer.poll(0)  # settle the purged messages' futures
        if self._polling is not None:
            self._polling.cancel()
        return left

    def send(self, topic: str, key: str | bytes | None, value: bytes, headers: Sequence[tuple[str, bytes]]) -> asyncio.Future[Delivered]:
        """Write one message; the future settles when the broker acknowledged it (PublishError if it did not).

        Cancelling the future gives up waiting; the write itself may still land.
        """
        assert self._loop is not None, "Publisher.start() was not awaited"
        future: asyncio.Future[Delivered] = self._loop.create_future()
        started = time.perf_counter()

        def report(err: KafkaError | None, msg: Message) -> None:
            if future.done():
                return
            if err is not None:
                future.set_exception(PublishError(err.str()))
            else:
                future.set_result(Delivered(msg.topic() or "", msg.partition() or 0, msg.offset() or 0, time.perf_counter() - started))

        try:
            self._producer.produce(topic, value, key, headers=list(headers), on_delivery=report)
        except BufferError as exc:
            raise PublishError("the producer queue is full") from exc
        except KafkaException as exc:
            raise PublishError(str(exc.args[0])) from exc
        if self._polling is None:
            self._polling = self._loop.call_soon(self._poll)
        return future

    async def cluster_topics(self, timeout: float) -> set[str]:
        """Names of the cluster's topics; raises PublishError when no broker answers in time."""
        try:
            metadata = await asyncio.to_thread(self._producer.list_topics, timeout=timeout)
        except KafkaException as exc:
            raise PublishError(str(exc.args[0])) from exc
        return set(metadata.topics)

    def _poll(self) -> None:
        """On the event loop: serve the reports ready now; come back soon while messages are in flight."""
        assert self._loop is not None
        self._producer.poll(0)
        # len() counts messages queued, in flight, and with a report not yet served.
        self._polling = self._loop.call_later(POLL_INTERVAL_S, self._poll) if len(self._producer) else None
