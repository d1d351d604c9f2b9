"""A delivery's way in: verify, validate, publish, and say what became of it."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from ingestor.payloads import InvalidPayload, Job, parse
from ingestor.publisher import Delivered, PublishError
from ingestor.signatures import Secret, verify
from ingestor.topics import TopicUnavailable
from ingestor.wire import Headers
from schemas import avro


@dataclass(frozen=True)
class Delivery:
    delivery_id: str
    received_at_ms: int
    body: bytes
    signature: str | None
    headers: Mapping[str, str]
    route: str | None
    remote_addr: str | None


@dataclass(frozen=True)
class Receipt:
    outcome: Literal["accepted", "dead_lettered"]
    secret: str
    written: Delivered
    raw: Delivered
    job: Job | None = None
    reason: str | None = None
    detail: str | None = None
    duplicate: bool = False


class Publishing(Protocol):
    def send(
        self, topic: str, key: str | bytes | None, value: bytes, headers: Sequence[tuple[str, bytes]]
    ) -> asyncio.Future[Delivered]: ...


class Topics(Protocol):
    async def ensure(self, job_type: str) -> str: ...


class Serializer(Protocol):
    async def serialize(self, topic: str, schema: avro.Schema, record: Mapping[str, Any]) -> tuple[bytes, Headers]: ...


class Receiver:
    def __init__(
        self,
        *,
        secrets: Sequence[Secret],
        publisher: Publishing,
        topics: Topics,
        serializer: Serializer,
        raw_topic: str,
        dlq_topic: str,
        ack_timeout: float,
        remembered_jobs: int = 100_000,
    ) -> None:
        self._secrets = secrets
        self._publisher = publisher
        self._topics = topics
        self._serializer = serializer
        self._raw_topic = raw_topic
        self._dlq_topic = dlq_topic
        self._ack_timeout = ack_timeout
        self._recent: OrderedDict[str, int] = OrderedDict()
        self._remembered_jobs = remembered_jobs
        self._job_event = avro.load(avro.JOB_EVENT)
        self._raw_delivery = avro.load(avro.RAW_DELIVERY)
        self._dead_letter = avro.load(avro.DEAD_LETTER)

    async def receive(self, delivery: Delivery) -> Receipt:
        """Raise InvalidSignature for an unauthentic delivery, PublishError when Kafka did not confirm."""
        secret = verify(delivery.body, delivery.signature, self._secrets)
        try:
            async with asyncio.timeout(self._ack_timeout):
                return await self._publish(delivery, secret)
        except TimeoutError:
            raise PublishError(f"Kafka did not confirm within {self._ack_timeout:g} s") from None

    async def _publish(self, delivery: Delivery, secret: Secret) -> Receipt:
        common = {"delivery_id": delivery.delivery_id, "received_at": delivery.received_at_ms, "route": delivery.route}
        envelope = {
            **common,
            "remote_addr": delivery.remote_addr,
            "headers": dict(delivery.headers),
            "body": delivery.body,
            "secret": secret.label,
        }
        job: Job | None = None
        try:
            job = parse(delivery.body)
            topic = await self._topics.ensure(job.type)
        except InvalidPayload as exc:
            reason, detail = exc.reason, exc.detail
        except TopicUnavailable as exc:
            if exc.retriable:
                raise PublishError(str(exc)) from exc
            reason, detail = "no_topic", str(exc)
        else:
            event = {**common, "id": job.id, "type": job.type, "status": job.status, "result": job.result}
            raw, written = await self._write_both(
                (self._raw_topic, job.id, self._raw_delivery, {**envelope, **_job_fields(job)}),
                (topic, job.id, self._job_event, event),
            )
            return Receipt("accepted", secret.label, written, raw, job=job, duplicate=self._seen(job, delivery.body))
        key = delivery.delivery_id if job is None else job.id
        raw, written = await self._write_both(
            (self._raw_topic, key, self._raw_delivery, {**envelope, **_job_fields(job)}),
            (self._dlq_topic, delivery.delivery_id, self._dead_letter, {**envelope, "reason": reason, "detail": detail}),
        )
        return Receipt("dead_lettered", secret.label, written, raw, job=job, reason=reason, detail=detail)

    async def _write_both(self, *writes: tuple[str, str, avro.Schema, Mapping[str, Any]]) -> tuple[Delivered, Delivered]:
        """Send both messages at once, then wait for both acknowledgements (no task per message)."""
        encoded = [(topic, key, *await self._serializer.serialize(topic, schema, record)) for topic, key, schema, record in writes]
        first = self._publisher.send(*encoded[0])
        try:
            second = self._publisher.send(*encoded[1])
        except PublishError:
            first.add_done_callback(_retrieved)
            raise
        try:
            return await first, await second
        finally:
            second.add_done_callback(_retrieved)  # when the first failed, nobody awaits the second

    def _seen(self, job: Job, body: bytes) -> bool:
        fingerprint = hash(body)
        duplicate = self._recent.get(job.id) == fingerprint
        self._recent[job.id] = fingerprint
        self._recent.move_to_end(job.id)
        if len(self._recent) > self._remembered_jobs:
            self._recent.popitem(last=False)
        return duplicate


def _retrieved(future: asyncio.Future[Delivered]) -> None:
    """Mark an outcome nobody awaits as seen, so asyncio does not log it as lost."""
    if not future.cancelled():
        future.exception()


def _job_fields(job: Job | None) -> dict[str, str | None]:
    """What the raw record says of the job, so the raw topic alone answers per-type questions (analytics)."""
    if job is None:
        return {"job_id": None, "job_type": None, "job_status": None}
    return {"job_id": job.id, "job_type": job.type, "job_status": job.status}
