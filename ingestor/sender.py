"""Send webhooks the way SharpAPI does: signed, with its User-Agent, retried up to 3 times."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import httpx

from ingestor.signatures import sign
from ingestor.topics import KNOWN_JOB_TYPES

USER_AGENT = "SharpAPIWebhook/1.0"
RETRIES = 3


@dataclass(frozen=True)
class Attempted:
    body: bytes
    status: int | None  # None: no answer (connection error)
    answer: dict[str, Any]
    attempts: int

    @property
    def accepted(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass
class Summary:
    results: list[Attempted] = field(default_factory=list)

    @property
    def failed(self) -> list[Attempted]:
        return [result for result in self.results if not result.accepted]

    def __str__(self) -> str:
        outcomes = Counter(str(result.answer.get("outcome", "no answer")) for result in self.results)
        retries = sum(result.attempts - 1 for result in self.results)
        parts = ", ".join(f"{count} {outcome}" for outcome, count in sorted(outcomes.items()))
        return f"sent {len(self.results)}: {parts}; {retries} retries; {len(self.failed)} not accepted"


def sample_payloads(path: Path | None = None) -> list[dict[str, Any]]:
    """The payloads of payloads.json (SharpAPI's documented examples), packaged with the ingestor."""
    text = (
        path.read_text(encoding="utf-8")
        if path
        else resources.files("ingestor").joinpath("samples/payloads.json").read_text(encoding="utf-8")
    )
    return [entry["payload"] for entry in json.loads(text)]


def generated_payloads(count: int, seed: int | None = None) -> Iterator[dict[str, Any]]:
    """``count`` distinct jobs with fresh ids, spread over the known job types."""
    chance = random.Random(seed)  # noqa: S311 -- test data, not security
    for n in range(count):
        job_type = KNOWN_JOB_TYPES[n % len(KNOWN_JOB_TYPES)]
        job_id = str(uuid.UUID(int=chance.getrandbits(128), version=4))
        if chance.random() < 0.1:
            yield {"id": job_id, "status": "failed", "type": job_type}
        else:
            yield {"id": job_id, "status": "success", "type": job_type, "result": {"n": n, "text": f"generated job {n}"}}


async def send_all(
    url: str,
    secret: bytes,
    bodies: Iterable[bytes],
    *,
    concurrency: int = 10,
    retry_delay: float = 1.0,
    timeout: float = 30.0,
) -> Summary:
    summary = Summary()
    limit = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:

        async def one(body: bytes) -> None:
            async with limit:
                summary.results.append(await send_one(client, url, secret, body, retry_delay=retry_delay))

        await asyncio.gather(*(one(body) for body in bodies))
    return summary


async def send_one(client: httpx.AsyncClient, url: str, secret: bytes, body: bytes, *, retry_delay: float) -> Attempted:
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, "X-Signature": sign(body, secret)}
    attempt = 0
    while True:
        attempt += 1
        status, answer = None, {}
        try:
            response = await client.post(url, content=body, headers=headers)
            status = response.status_code
            answer = _json_object(response)
        except httpx.TransportError as exc:
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        result = Attempted(body, status, answer, attempt)
        if result.accepted or attempt > RETRIES:
            return result
        await asyncio.sleep(retry_delay * 2 ** (attempt - 1))


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        answer = response.json()
    except ValueError:
        return {"error": response.text[:200]}
    return answer if isinstance(answer, dict) else {"answer": answer}


def encode(payload: dict[str, Any]) -> bytes:
    """Compact JSON with non-ASCII kept as UTF-8, as a JSON API would send it."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
