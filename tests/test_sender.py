"""``ingestor send`` behaves like SharpAPI against the real ingestor."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

from ingestor.sender import USER_AGENT, encode, generated_payloads, sample_payloads, send_all
from ingestor.settings import Settings
from schemas import avro
from tests.conftest import SECRET, read_topic, signed


def run_send(url: str, secret: bytes, *args: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "SHARPAPI_WEBHOOK_SECRET": secret.decode()}
    command = [sys.executable, "-m", "ingestor", "send", "--url", f"{url}/webhooks/sharpapi", "--retry-delay", "0.05", *args]
    return subprocess.run(command, env=environment, capture_output=True, text=True, timeout=120, check=False)


def test_send_samples_delivers_every_sample(ingestor: str, settings: Settings) -> None:
    done = run_send(ingestor, SECRET, "--samples")

    assert done.returncode == 0, done.stderr
    assert done.stdout == f"sent {len(sample_payloads())}: {len(sample_payloads())} accepted; 0 retries; 0 not accepted\n"
    raws = [avro.load(avro.RAW_DELIVERY).decode(m.value() or b"") for m in read_topic(settings.bootstrap_servers, settings.raw_topic)]
    assert {raw["headers"]["user-agent"] for raw in raws} == {USER_AGENT}
    assert sorted(raw["body"] for raw in raws) == sorted(encode(payload) for payload in sample_payloads())


def test_send_file_with_the_wrong_secret_retries_three_times_then_fails(ingestor: str, settings: Settings, tmp_path: Path) -> None:
    payload = tmp_path / "job.json"
    payload.write_bytes(b'{"id": "j-1", "status": "success", "type": "content_translate"}')

    done = run_send(ingestor, b"wrong-secret", "--file", str(payload))

    assert done.returncode == 1
    assert done.stdout == "sent 1: 1 unauthorized; 3 retries; 1 not accepted\n"
    assert done.stderr.startswith("not accepted after 4 attempts: 401 ")
    assert read_topic(settings.bootstrap_servers, settings.raw_topic) == []


def test_connection_errors_are_retried_and_reported(tmp_path: Path) -> None:
    summary = asyncio.run(send_all("http://127.0.0.1:1/webhooks/sharpapi", SECRET, [b"{}"], retry_delay=0.01))

    [result] = summary.results
    assert (result.status, result.attempts, result.accepted) == (None, 4, False)
    assert str(summary) == "sent 1: 1 no answer; 3 retries; 1 not accepted"


def test_generated_jobs_are_distinct_and_valid() -> None:
    payloads = list(generated_payloads(500, seed=1))

    assert len({payload["id"] for payload in payloads}) == 500
    assert {payload["status"] for payload in payloads} == {"success", "failed"}
    assert all("result" not in payload for payload in payloads if payload["status"] == "failed")


def test_show_prints_the_topic_decoded(ingestor: str, settings: Settings) -> None:
    body = b'{"id": "shown-1", "status": "success", "type": "content_translate", "result": {"content": "ciao"}}'
    assert httpx.post(f"{ingestor}/webhooks/sharpapi", content=body, headers=signed(body)).status_code == 200
    environment = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers}

    shown = subprocess.run(
        [sys.executable, "-m", "ingestor", "show", settings.job_topic("content_translate")],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    missing = subprocess.run(
        [sys.executable, "-m", "ingestor", "show", f"{settings.topic_prefix}.nope"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert shown.returncode == 0, shown.stderr
    [line] = [json.loads(text) for text in shown.stdout.splitlines()]
    assert (line["key"], line["value"]["id"], line["value"]["result"], line["value"]["route"]) == (
        "shown-1",
        "shown-1",
        '{"content": "ciao"}',
        None,
    )
    assert missing.returncode == 1
    assert missing.stderr.startswith(f"ingestor show: {settings.topic_prefix}.nope: ")
