from __future__ import annotations

import hashlib
import hmac

import pytest

from ingestor.signatures import InvalidSignature, Secret, sign, verify

CURRENT = Secret("current", b"s3cret")
PREVIOUS = Secret("previous-1", b"old-s3cret")
BODY = b'{"id":"bf683177-3a48-47d1-9c4e-0b4de39517fa","status":"success","type":"content_translate"}'


def test_sign_is_hex_hmac_sha256_of_the_raw_body() -> None:
    assert sign(BODY, b"s3cret") == hmac.new(b"s3cret", BODY, hashlib.sha256).hexdigest()
    assert sign(b"", b"key") == "5d5d139563c95b5967b9bd9a8c9b233a9dedb45072794cd232dc1b74832607d0"


def test_verify_returns_the_secret_that_matched() -> None:
    assert verify(BODY, sign(BODY, b"s3cret"), [CURRENT, PREVIOUS]) is CURRENT
    assert verify(BODY, sign(BODY, b"old-s3cret"), [CURRENT, PREVIOUS]) is PREVIOUS


def test_upper_case_hex_and_surrounding_whitespace_are_accepted() -> None:
    assert verify(BODY, f" {sign(BODY, b's3cret').upper()} ", [CURRENT]) is CURRENT


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "missing"),
        ("", "missing"),
        ("   ", "missing"),
        ("zz" * 32, "malformed"),
        ("ab" * 31, "malformed"),
        ("ab" * 33, "malformed"),
        ("ab " * 32, "malformed"),
        ("sha256=" + "ab" * 32, "malformed"),
        ("ab" * 32, "mismatch"),
    ],
)
def test_every_bad_header_is_one_error_with_a_reason(header: str | None, reason: str) -> None:
    with pytest.raises(InvalidSignature) as raised:
        verify(BODY, header, [CURRENT, PREVIOUS])
    assert raised.value.reason == reason


def test_a_changed_byte_in_the_body_fails() -> None:
    with pytest.raises(InvalidSignature):
        verify(BODY.replace(b'"success"', b'"success" '), sign(BODY, b"s3cret"), [CURRENT])


def test_no_secrets_accept_nothing() -> None:
    with pytest.raises(InvalidSignature):
        verify(BODY, sign(BODY, b"s3cret"), [])


def test_secret_values_stay_out_of_repr() -> None:
    assert "s3cret" not in repr(CURRENT)
