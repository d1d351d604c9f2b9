"""The ingest path over real HTTP against a real broker."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from confluent_kafka import Message

from ingestor.sender import encode, sample_payloads
from ingestor.settings import Settings
from schemas import avro
from tests.conftest import PREVIOUS, SECRET, read_topic, signed

JOB_EVENT = avro.load(avro.JOB_EVENT)
RAW = avro.load(avro.RAW_DELIVERY)
DEAD_LETTER = avro.load(avro.DEAD_LETTER)
BLOG = {"id": "bf683177-3a48-47d1-9c4e-0b4de39517fa", "status": "success", "type": "content_translate"}


def post(client: httpx.Client, body: bytes, path: str = "/webhooks/sharpapi", **headers: str) -> httpx.Response:
    return client.post(path, content=body, headers=signed(body, **headers))


def decoded(messages: list[Message], schema: avro.Schema) -> list[dict[str, Any]]:
    return [schema.decode(message.value() or b"") for message in messages]


def test_blog_payloads_become_job_events_keyed_by_id(client: httpx.Client, settings: Settings) -> None:
    with_result = {**BLOG, "result": {"content": "ciao", "from_language": "English", "to_language": "Italian"}}
    bodies = [json.dumps(BLOG).encode(), json.dumps(with_result, indent=2).encode()]

    answers = [post(client, body) for body in bodies]

    assert [answer.status_code for answer in answers] == [200, 200]
    assert [answer.json()["outcome"] for answer in answers] == ["accepted", "accepted"]
    assert {answer.json()["topic"] for answer in answers} == {f"{settings.topic_prefix}.jobs.content_translate"}
    messages = read_topic(settings.bootstrap_servers, settings.job_topic("content_translate"))
    assert [message.key() for message in messages] == [BLOG["id"].encode()] * 2
    events = decoded(messages, JOB_EVENT)
    assert [(event["id"], event["type"], event["status"], event["route"]) for event in events] == [
        (BLOG["id"], "content_translate", "success", None)
    ] * 2
    assert events[0]["result"] is None
    assert events[1]["result"] == '{\n    "content": "ciao",\n    "from_language": "English",\n    "to_language": "Italian"\n  }'
    answered = [(answer.json()["partition"], answer.json()["offset"]) for answer in answers]
    assert [(message.partition(), message.offset()) for message in messages] == answered


def test_every_sample_payload_comes_out_equal_with_its_result_byte_for_byte(
    client: httpx.Client, settings: Settings, samples_path: Path
) -> None:
    payloads = sample_payloads(samples_path)
    sent = {}
    for n, payload in enumerate(payloads):
        body = encode({**payload, "id": f"{payload['id']}-{n}"})
        answer = post(client, body)
        assert answer.status_code == 200, answer.text
        sent[f"{payload['id']}-{n}"] = (payload, body)

    events = {}
    job_topics = sorted({settings.job_topic(payload["type"]) for payload in payloads})
    for message in read_topic(settings.bootstrap_servers, *job_topics):
        event = JOB_EVENT.decode(message.value() or b"")
        assert message.key() == event["id"].encode()
        assert message.topic() == settings.job_topic(event["type"])
        events[event["id"]] = event
    assert events.keys() == sent.keys()
    for job_id, (payload, body) in sent.items():
        event = events[job_id]
        assert (event["type"], event["status"]) == (payload["type"], payload["status"])
        if "result" in payload:
            assert event["result"].encode() in body
            assert orjson.loads(event["result"]) == payload["result"]
        else:
            assert event["result"] is None


def test_result_keeps_escapes_number_spelling_and_key_order(client: httpx.Client, settings: Settings) -> None:
    result = rb'{"z":"caf\u00e9 \/ \"q\"","a":[1.50,2e3,-0],"n":null,"s":"85"}'
    body = b'{"type":"content_proofread","result": ' + result + b' ,"id":"job-1","status":"success"}'

    assert post(client, body).status_code == 200

    [message] = read_topic(settings.bootstrap_servers, settings.job_topic("content_proofread"))
    assert JOB_EVENT.decode(message.value() or b"")["result"].encode() == result


@pytest.mark.parametrize("result", [b'"a plain string"', b'["php","laravel"]', b'"{\\"encoded\\": \\"as a string\\"}"', b"null", b"85"])
def test_any_json_value_is_a_result(client: httpx.Client, settings: Settings, result: bytes) -> None:
    body = b'{"id":"job-2","status":"success","type":"content_keywords","result":' + result + b"}"

    assert post(client, body).status_code == 200

    [message] = read_topic(settings.bootstrap_servers, settings.job_topic("content_keywords"))
    assert JOB_EVENT.decode(message.value() or b"")["result"].encode() == result


def test_raw_topic_holds_every_authentic_delivery_as_received(client: httpx.Client, settings: Settings) -> None:
    body = json.dumps(BLOG).encode()

    answers = [post(client, body, path="/webhooks/sharpapi/team-a", Authorization="Bearer hidden") for _ in range(2)]
    unsigned = client.post("/webhooks/sharpapi", content=body, headers={"Content-Type": "application/json"})

    assert [answer.status_code for answer in answers] == [200, 200]
    assert unsigned.status_code == 401
    raws = decoded(read_topic(settings.bootstrap_servers, settings.raw_topic), RAW)
    assert len(raws) == 2
    for raw in raws:
        assert raw["body"] == body
        assert raw["route"] == "team-a"
        assert raw["remote_addr"] == "127.0.0.1"
        assert raw["secret"] == "current"
        assert raw["headers"]["x-signature"] == signed(body)["X-Signature"]
        assert raw["headers"]["user-agent"] == "SharpAPIWebhook/1.0"
        assert "authorization" not in raw["headers"]
        assert (raw["job_id"], raw["job_type"], raw["job_status"]) == (BLOG["id"], "content_translate", "success")
    assert len({raw["delivery_id"] for raw in raws}) == 2
    [event, _] = decoded(read_topic(settings.bootstrap_servers, settings.job_topic("content_translate")), JOB_EVENT)
    assert event["route"] == "team-a"
    assert event["delivery_id"] == raws[0]["delivery_id"]


def test_messages_carry_schema_name_fingerprint_and_content_type(client: httpx.Client, settings: Settings) -> None:
    assert post(client, json.dumps(BLOG).encode()).status_code == 200

    [message] = read_topic(settings.bootstrap_servers, settings.job_topic("content_translate"))
    assert dict(message.headers() or []) == {
        "content-type": b"avro/binary",
        "avro.schema.name": b"sharpapi.ingestor.JobEvent",
        "avro.schema.fingerprint": JOB_EVENT.fingerprint.encode(),
    }


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"X-Signature": ""}, "missing"),
        ({"X-Signature": "not hex at all"}, "malformed"),
        ({"X-Signature": "ab" * 31}, "malformed"),
        ({"X-Signature": "0" * 64}, "mismatch"),
    ],
)
def test_bad_signatures_are_401_and_write_nothing(client: httpx.Client, settings: Settings, headers: dict[str, str], reason: str) -> None:
    body = json.dumps(BLOG).encode()

    answer = client.post("/webhooks/sharpapi", content=body, headers={**signed(body), **headers})

    assert answer.status_code == 401
    assert answer.json()["outcome"] == "unauthorized"
    assert read_topic(settings.bootstrap_servers, settings.job_topic("content_translate")) == []
    assert read_topic(settings.bootstrap_servers, settings.raw_topic) == []
    metrics = client.get("/metrics").text
    assert f'ingestor_signature_failures_total{{reason="{reason}"}} 1.0' in metrics
    assert 'ingestor_webhooks_total{outcome="unauthorized",route="_unverified"} 1.0' in metrics


def test_other_secret_is_401(client: httpx.Client, settings: Settings) -> None:
    body = json.dumps(BLOG).encode()

    answer = client.post("/webhooks/sharpapi", content=body, headers=signed(body, b"someone-else"))

    assert answer.status_code == 401
    assert read_topic(settings.bootstrap_servers, settings.job_topic("content_translate")) == []


def test_current_and_previous_secrets_are_both_valid_and_counted(client: httpx.Client, settings: Settings) -> None:
    body = json.dumps(BLOG).encode()

    answers = [client.post("/webhooks/sharpapi", content=body, headers=signed(body, secret)) for secret in (SECRET, PREVIOUS)]

    assert [answer.status_code for answer in answers] == [200, 200]
    raws = decoded(read_topic(settings.bootstrap_servers, settings.raw_topic), RAW)
    assert sorted(raw["secret"] for raw in raws) == ["current", "previous-1"]
    metrics = client.get("/metrics").text
    assert 'ingestor_secret_matched_total{secret="current"} 1.0' in metrics
    assert 'ingestor_secret_matched_total{secret="previous-1"} 1.0' in metrics


def test_upper_case_hex_signature_is_accepted(client: httpx.Client) -> None:
    body = json.dumps(BLOG).encode()

    answer = client.post("/webhooks/sharpapi", content=body, headers={**signed(body), "X-Signature": signed(body)["X-Signature"].upper()})

    assert answer.status_code == 200


def test_body_over_the_limit_is_413(client: httpx.Client, settings: Settings) -> None:
    body = b'{"id":"x","status":"success","type":"content_translate","result":"' + b"a" * settings.max_body_bytes + b'"}'

    answer = post(client, body)

    assert answer.status_code == 413
    assert answer.json() == {"outcome": "too_large", "error": f"the body is larger than {settings.max_body_bytes} bytes"}


def test_streamed_body_over_the_limit_is_413_without_a_length(client: httpx.Client, settings: Settings) -> None:
    chunk = b"x" * 65536
    count = settings.max_body_bytes // len(chunk) + 2

    answer = client.post("/webhooks/sharpapi", content=iter([chunk] * count), headers=signed(b""))

    assert answer.status_code == 413
    assert client.get("/healthz").status_code == 200


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1", ""])
def test_content_type_other_than_json_is_415(client: httpx.Client, content_type: str) -> None:
    body = json.dumps(BLOG).encode()

    answer = client.post("/webhooks/sharpapi", content=body, headers={**signed(body), "Content-Type": content_type})

    assert answer.status_code == 415


def test_json_with_utf8_charset_is_accepted(client: httpx.Client) -> None:
    body = json.dumps(BLOG).encode()

    assert post(client, body, **{"Content-Type": "application/json; charset=UTF-8"}).status_code == 200


def test_wrong_method_is_405_and_unknown_path_is_404(client: httpx.Client) -> None:
    assert client.get("/webhooks/sharpapi").status_code == 405
    assert client.put("/webhooks/sharpapi/team-a").status_code == 405
    assert client.post("/webhooks/other", content=b"{}").status_code == 404
    assert client.post("/webhooks/sharpapi/a/b", content=b"{}").status_code == 404
    assert post(client, json.dumps(BLOG).encode(), path="/webhooks/sharpapi/.hidden").status_code == 404


GARBAGE = [
    (b"\xff\xfe{}", "not_utf8"),
    (b"{not json", "not_json"),
    (b"[" * 2000 + b"]" * 2000, "too_deep"),
    (b'["an", "array"]', "not_object"),
    (b'{"id": "x", "status": "success"}', "missing_field"),
    (b'{"id": 42, "status": "success", "type": "content_translate"}', "wrong_type"),
    (b'{"id": "", "status": "success", "type": "content_translate"}', "bad_id"),
    (b'{"id": "x", "status": "success", "type": "../../etc"}', "bad_type_name"),
    (b'{"id": "x", "status": "success", "type": "Content-Translate"}', "bad_type_name"),
    (b'{"id": "x", "status": "success", "type": "' + b"a" * 65 + b'"}', "bad_type_name"),
]


@pytest.mark.parametrize(("body", "reason"), GARBAGE)
def test_authentic_garbage_is_dead_lettered_with_its_reason_and_answered_2xx(
    client: httpx.Client, settings: Settings, body: bytes, reason: str
) -> None:
    answer = post(client, body)

    assert answer.status_code == 200
    assert answer.json()["outcome"] == "dead_lettered"
    assert answer.json()["reason"] == reason
    [message] = read_topic(settings.bootstrap_servers, settings.dlq_topic)
    letter = DEAD_LETTER.decode(message.value() or b"")
    assert (letter["reason"], letter["body"], letter["secret"]) == (reason, body, "current")
    assert letter["detail"] == answer.json()["detail"]
    [raw] = decoded(read_topic(settings.bootstrap_servers, settings.raw_topic), RAW)
    assert raw["body"] == body
    assert raw["delivery_id"] == letter["delivery_id"]
    assert (raw["job_id"], raw["job_type"], raw["job_status"]) == (None, None, None)
    assert f'ingestor_dead_letters_total{{reason="{reason}"}} 1.0' in client.get("/metrics").text


def test_no_topic_is_created_from_an_odd_type_name(client: httpx.Client, settings: Settings) -> None:
    from confluent_kafka.admin import AdminClient

    for odd in ("UPPER", "with space", "dots.in.name", "x" * 65, ""):
        body = orjson.dumps({"id": "x", "status": "success", "type": odd})
        assert post(client, body).json()["outcome"] == "dead_lettered"

    names = AdminClient(settings.kafka_config()).list_topics(timeout=10).topics
    assert sorted(name for name in names if name.startswith(settings.topic_prefix + ".")) == sorted(
        [settings.raw_topic, settings.dlq_topic, settings.stats_topic, *(settings.job_topic(t) for t in _known_types())]
    )


def _known_types() -> tuple[str, ...]:
    from ingestor.topics import KNOWN_JOB_TYPES

    return KNOWN_JOB_TYPES


def test_a_new_job_type_gets_its_own_compacted_topic(client: httpx.Client, settings: Settings) -> None:
    from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

    body = orjson.dumps({"id": "new-1", "status": "success", "type": "video_transcribe", "result": {"text": "hi"}})

    answer = post(client, body)

    assert answer.status_code == 200
    assert answer.json()["topic"] == settings.job_topic("video_transcribe")
    [message] = read_topic(settings.bootstrap_servers, settings.job_topic("video_transcribe"))
    assert JOB_EVENT.decode(message.value() or b"")["result"] == '{"text":"hi"}'
    admin = AdminClient(settings.kafka_config())
    resource = ConfigResource(ResourceType.TOPIC, settings.job_topic("video_transcribe"))
    configs = admin.describe_configs([resource])[resource].result()
    assert configs["cleanup.policy"].value == "compact"


def test_duplicates_are_accepted_and_counted(client: httpx.Client) -> None:
    body = json.dumps(BLOG).encode()

    answers = [post(client, body) for _ in range(4)]

    assert [answer.json()["duplicate"] for answer in answers] == [False, True, True, True]
    assert "ingestor_duplicates_seen_total 3.0" in client.get("/metrics").text


def test_health_readiness_and_metrics(client: httpx.Client) -> None:
    post(client, json.dumps(BLOG).encode(), path="/webhooks/sharpapi/shop")

    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}
    metrics = client.get("/metrics").text
    assert 'ingestor_webhooks_total{outcome="accepted",route="shop"} 1.0' in metrics
    assert 'ingestor_webhook_duration_seconds_count{outcome="accepted"} 1.0' in metrics
    assert 'ingestor_kafka_delivery_seconds_count{kind="job"} 1.0' in metrics
    assert 'ingestor_kafka_delivery_seconds_count{kind="raw"} 1.0' in metrics


def test_one_log_line_per_webhook_without_secrets(client: httpx.Client, caplog: pytest.LogCaptureFixture) -> None:
    body = json.dumps({**BLOG, "status": "failed"}).encode()
    caplog.set_level("INFO", logger="ingestor.webhooks")

    answer = post(client, body, path="/webhooks/sharpapi/team-b")

    [record] = [r for r in caplog.records if r.name == "ingestor.webhooks"]
    line = vars(record)
    expected = {
        "job_id": BLOG["id"],
        "type": "content_translate",
        "status": "failed",
        "route": "team-b",
        "outcome": "accepted",
        "status_code": 200,
    }
    assert {key: line[key] for key in expected} == expected
    assert (line["partition"], line["offset"]) == (answer.json()["partition"], answer.json()["offset"])
    assert line["latency_ms"] > 0
    text = repr(line)
    assert SECRET.decode() not in text
    assert signed(body)["X-Signature"] not in text


def test_a_new_job_type_is_dead_lettered_when_auto_creation_is_off(topics: Settings) -> None:
    from tests.conftest import serving, tuned

    settings = tuned(topics, auto_create_job_topics=False)
    body = orjson.dumps({"id": "new-2", "status": "success", "type": "video_transcribe"})

    with serving(settings) as url, httpx.Client(base_url=url) as client:
        answer = post(client, body)

    assert answer.status_code == 200
    assert (answer.json()["outcome"], answer.json()["reason"]) == ("dead_lettered", "no_topic")
    assert answer.json()["detail"] == f"no topic {settings.job_topic('video_transcribe')} and AUTO_CREATE_JOB_TOPICS is off"
    [message] = read_topic(settings.bootstrap_servers, settings.dlq_topic)
    assert DEAD_LETTER.decode(message.value() or b"")["body"] == body
