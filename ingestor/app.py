"""The HTTP service: routes, the answer to every outcome, and the resources its lifespan owns."""

from __future__ import annotations

import logging
import os
import re
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypedDict, cast

import orjson
from confluent_kafka.admin import AdminClient
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ingestor import logs
from ingestor.metrics import Metrics
from ingestor.publisher import Publisher, PublishError, producer_config
from ingestor.receiver import Delivery, Receipt, Receiver
from ingestor.settings import Settings
from ingestor.signatures import HEADER as SIGNATURE_HEADER
from ingestor.signatures import InvalidSignature
from ingestor.topics import JobTopics
from ingestor.wire import ConfluentAvro, PlainAvro
from schemas import avro

log = logging.getLogger("ingestor.webhooks")

ROUTE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_HIDDEN_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})


class State(TypedDict):
    settings: Settings
    receiver: Receiver
    publisher: Publisher
    metrics: Metrics


class Refusal(Exception):
    """A request answered with an error before the receiver saw it."""

    def __init__(self, status: int, outcome: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.outcome = outcome
        self.message = message


def create_app(settings: Settings) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[State]:
        config = {**settings.kafka_config(), "logger": logging.getLogger("ingestor.kafka")}
        publisher = Publisher(producer_config(config, settings.ack_timeout_ms))
        await publisher.start()
        serializer = _serializer(settings)
        receiver = Receiver(
            secrets=settings.secrets,
            publisher=publisher,
            topics=JobTopics(AdminClient(settings.kafka_config()), settings),
            serializer=serializer,
            raw_topic=settings.raw_topic,
            dlq_topic=settings.dlq_topic,
            ack_timeout=settings.ack_timeout_ms / 1000,
        )
        try:
            yield {"settings": settings, "receiver": receiver, "publisher": publisher, "metrics": Metrics()}
        finally:
            serializer.close()
            left = await publisher.close()
            if left:
                log.error("shutdown left %d messages unconfirmed by Kafka", left)

    return Starlette(
        routes=[
            Route("/webhooks/sharpapi", receive_webhook, methods=["POST"]),
            Route("/webhooks/sharpapi/{route}", receive_webhook, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ],
        exception_handlers={HTTPException: http_error},
        lifespan=lifespan,
    )


def _serializer(settings: Settings) -> PlainAvro | ConfluentAvro:
    schemas = [avro.load(name) for name in (avro.JOB_EVENT, avro.RAW_DELIVERY, avro.DEAD_LETTER)]
    if settings.schema_registry_url:
        return ConfluentAvro(settings.schema_registry_url, settings.schema_registry_user_info, *schemas)
    return PlainAvro(*schemas)


def create_app_from_env() -> Starlette:
    """Factory for ``uvicorn --factory`` and for every worker process of ``ingestor serve``."""
    settings = Settings.from_env(os.environ)
    logs.configure(settings.log_level, settings.log_format)
    return create_app(settings)


def _state(request: Request) -> State:
    return cast(State, request.scope["state"])


async def receive_webhook(request: Request) -> Response:
    started = time.perf_counter()
    state = _state(request)
    route: str | None = request.path_params.get("route")
    fields: dict[str, Any] = {"route": route, "remote_addr": request.client.host if request.client else None}
    try:
        if route is not None and not ROUTE_NAME.fullmatch(route):
            raise Refusal(404, "not_found", f"route names match {ROUTE_NAME.pattern}")
        _check_content_type(request.headers.get("content-type"))
        body = await _read_body(request, state["settings"].max_body_bytes)
        delivery = Delivery(
            delivery_id=str(uuid.uuid4()),
            received_at_ms=time.time_ns() // 1_000_000,
            body=body,
            signature=request.headers.get(SIGNATURE_HEADER),
            headers=_recorded_headers(request.headers.raw),
            route=route,
            remote_addr=fields["remote_addr"],
        )
        fields["delivery_id"] = delivery.delivery_id
        receipt = await state["receiver"].receive(delivery)
    except Refusal as refusal:
        return _answer(state["metrics"], started, refusal.status, {"outcome": refusal.outcome, "error": refusal.message}, fields)
    except InvalidSignature as exc:
        state["metrics"].of(state["metrics"].signature_failures, exc.reason).inc()
        return _answer(state["metrics"], started, 401, {"outcome": "unauthorized", "error": exc.detail}, fields)
    except PublishError as exc:
        state["metrics"].kafka_errors.inc()
        retry_after = state["settings"].retry_after_s
        answer = {"outcome": "unavailable", "error": f"Kafka did not confirm the write, retry later: {exc}"}
        return _answer(state["metrics"], started, 503, answer, fields, verified=True, headers={"Retry-After": str(retry_after)})
    return _answer(state["metrics"], started, 200, _describe(receipt, state["metrics"]), fields, verified=True)


def _describe(receipt: Receipt, metrics: Metrics) -> dict[str, Any]:
    """The answer's body and log fields for a delivery that Kafka confirmed; counts it too."""
    metrics.of(metrics.secret_matched, receipt.secret).inc()
    metrics.of(metrics.kafka_delivery, "raw").observe(receipt.raw.seconds)
    kind = "job" if receipt.outcome == "accepted" else "dlq"
    metrics.of(metrics.kafka_delivery, kind).observe(receipt.written.seconds)
    if receipt.reason is not None:
        metrics.of(metrics.dead_letters, receipt.reason).inc()
    if receipt.duplicate:
        metrics.duplicates.inc()
    described: dict[str, Any] = {"outcome": receipt.outcome}
    if receipt.job is not None:
        described.update(job_id=receipt.job.id, type=receipt.job.type, status=receipt.job.status)
    if receipt.reason is not None:
        described.update(reason=receipt.reason, detail=receipt.detail)
    described.update(topic=receipt.written.topic, partition=receipt.written.partition, offset=receipt.written.offset)
    described.update(secret=receipt.secret, duplicate=receipt.duplicate)
    return described


def _answer(
    metrics: Metrics,
    started: float,
    status: int,
    body: dict[str, Any],
    fields: dict[str, Any],
    *,
    verified: bool = False,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """Count, log and send the answer; only verified deliveries label metrics with their route name."""
    seconds = time.perf_counter() - started
    outcome = body["outcome"]
    route = (fields["route"] or "_account") if verified else "_unverified"
    metrics.of(metrics.webhooks, route, outcome).inc()
    metrics.of(metrics.duration, outcome).observe(seconds)
    public = {key: value for key, value in body.items() if key != "secret"}
    level = logging.WARNING if status in (401, 503) else logging.INFO
    log.log(level, "webhook", extra={**fields, **body, "status_code": status, "latency_ms": round(seconds * 1000, 3)})
    return Response(orjson.dumps(public), status, headers=headers, media_type="application/json")


def _check_content_type(value: str | None) -> None:
    media_type, _, parameters = (value or "").partition(";")
    media_type = media_type.strip().lower()
    if media_type != "application/json" and not (media_type.startswith("application/") and media_type.endswith("+json")):
        raise Refusal(415, "unsupported_media_type", f"Content-Type must be application/json, not {value!r}")
    for parameter in parameters.split(";"):
        name, _, charset = parameter.partition("=")
        if name.strip().lower() == "charset" and charset.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise Refusal(415, "unsupported_media_type", f"JSON must be UTF-8, not {charset.strip()!r}")


async def _read_body(request: Request, limit: int) -> bytes:
    """Read at most ``limit`` bytes; refuse as soon as the declared or streamed size passes it."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _too_large(limit)
    return bytes(body)


def _too_large(limit: int) -> Refusal:
    return Refusal(413, "too_large", f"the body is larger than {limit} bytes")


def _recorded_headers(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name_bytes, value_bytes in raw:
        name, value = name_bytes.decode("latin-1").lower(), value_bytes.decode("latin-1")
        if name not in _HIDDEN_HEADERS:
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return Response(orjson.dumps({"error": exc.detail}), exc.status_code, headers=exc.headers, media_type="application/json")


async def healthz(request: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


async def readyz(request: Request) -> Response:
    """Ready when a broker answers within a second and the raw and dead-letter topics exist."""
    state = _state(request)
    settings = state["settings"]
    try:
        topics = await state["publisher"].cluster_topics(timeout=1.0)
    except PublishError as exc:
        return Response(orjson.dumps({"status": "unavailable", "error": f"Kafka unreachable: {exc}"}), 503, media_type="application/json")
    missing = sorted({settings.raw_topic, settings.dlq_topic} - topics)
    if missing:
        error = f"missing topics {', '.join(missing)}: run `ingestor topics`"
        return Response(orjson.dumps({"status": "unavailable", "error": error}), 503, media_type="application/json")
    return Response(b'{"status":"ready"}', media_type="application/json")


async def metrics(request: Request) -> Response:
    state = _state(request)
    return Response(state["metrics"].exposition(), media_type="text/plain; version=0.0.4; charset=utf-8")
