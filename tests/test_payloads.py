from __future__ import annotations

import pytest

from ingestor.payloads import InvalidPayload, Job, member_span, parse


def test_a_payload_without_result() -> None:
    body = b'{"id": "bf683177-3a48-47d1-9c4e-0b4de39517fa", "status": "success", "type": "content_translate"}'
    assert parse(body) == Job("bf683177-3a48-47d1-9c4e-0b4de39517fa", "content_translate", "success", None)


@pytest.mark.parametrize(
    "result",
    [
        b'{"content": "ciao", "from_language": "English", "to_language": "Italian"}',
        b'[{"name": "Shoes", "weight": 10}, {"name": "Sport", "weight": "8"}]',
        b'"Corrected text with \\"quotes\\" and \\u00e9 and \\/ slash"',
        b'"{\\"score\\": \\"85\\"}"',
        b"null",
        b"true",
        b"-12.50e+3",
        b"[]",
        b'{"nested": {"deep": [[["]"]]], "brace": "}"}}',
    ],
)
def test_result_is_its_exact_text(result: bytes) -> None:
    body = b'{ "id" : "j", "result" :\n  ' + result + b'  , "status": "success", "type": "content_keywords" }'
    assert parse(body).result == result.decode()


def test_the_last_result_member_wins_as_in_json_parsers() -> None:
    assert parse(b'{"id":"j","status":"s","type":"t","result":1,"result":[2]}').result == "[2]"


def test_keys_with_escapes_are_compared_decoded() -> None:
    assert parse(b'{"id":"j","status":"s","type":"t","res\\u0075lt":{"a":1}}').result == '{"a":1}'


def test_non_ascii_results_survive_as_utf8() -> None:
    body = '{"id":"j","status":"success","type":"content_translate","result":{"content":"Zażółć gęślą jaźń 🐍"}}'.encode()
    assert parse(body).result == '{"content":"Zażółć gęślą jaźń 🐍"}'


def test_unknown_statuses_are_kept() -> None:
    assert parse(b'{"id":"j","status":"pending","type":"t"}').status == "pending"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"\xc3\x28", "not_utf8"),
        (b"", "not_json"),
        (b"{'id': 'single quotes'}", "not_json"),
        (b'{"id":"j","status":"s","type":"t"} trailing', "not_json"),
        (b"[" * 1100 + b"]" * 1100, "too_deep"),
        (b'{"id":"j","status":"s","type":"t","result":' + b"[" * 1100 + b"]" * 1100 + b"}", "too_deep"),
        (b"null", "not_object"),
        (b'"text"', "not_object"),
        (b'{"status":"s","type":"t"}', "missing_field"),
        (b'{"id":"j","type":"t"}', "missing_field"),
        (b'{"id":"j","status":"s"}', "missing_field"),
        (b'{"id":1,"status":"s","type":"t"}', "wrong_type"),
        (b'{"id":"j","status":null,"type":"t"}', "wrong_type"),
        (b'{"id":"j","status":"s","type":["t"]}', "wrong_type"),
        (b'{"id":"","status":"s","type":"t"}', "bad_id"),
        (b'{"id":"a\\nb","status":"s","type":"t"}', "bad_id"),
        (b'{"id":"' + b"x" * 257 + b'","status":"s","type":"t"}', "bad_id"),
        (b'{"id":"j","status":"s","type":""}', "bad_type_name"),
        (b'{"id":"j","status":"s","type":"Content_Translate"}', "bad_type_name"),
        (b'{"id":"j","status":"s","type":"content-translate"}', "bad_type_name"),
        (b'{"id":"j","status":"s","type":"a.b"}', "bad_type_name"),
        (b'{"id":"j","status":"s","type":"' + b"a" * 65 + b'"}', "bad_type_name"),
    ],
)
def test_invalid_bodies_name_their_reason(body: bytes, reason: str) -> None:
    with pytest.raises(InvalidPayload) as raised:
        parse(body)
    assert raised.value.reason == reason
    assert raised.value.detail


def test_a_type_of_64_characters_is_fine() -> None:
    assert parse(b'{"id":"j","status":"s","type":"' + b"a" * 64 + b'"}').type == "a" * 64


def test_member_span_finds_scalars_at_the_end() -> None:
    document = b'{"a": 1, "b": 23}'
    assert document[slice(*member_span(document, "b"))] == b"23"
    with pytest.raises(KeyError):
        member_span(document, "c")
