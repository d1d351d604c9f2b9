"""SharpAPI's webhook signature: HMAC-SHA256 of the raw body, as hex, in X-Signature."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

HEADER = "x-signature"
_HEX_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


class InvalidSignature(Exception):
    """The signature is missing, malformed or made with none of the secrets."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Secret:
    """A signing secret; ``label`` (current, previous-1, …) is what logs and metrics show."""

    label: str
    key: bytes = field(repr=False)


def sign(body: bytes, key: bytes) -> str:
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def verify(body: bytes, header: str | None, secrets: Sequence[Secret]) -> Secret:
    """Return the secret that signed ``body``; compare in constant time over the raw bytes."""
    if header is None or not header.strip():
        raise InvalidSignature("missing", "the X-Signature header is missing")
    if not _HEX_SHA256.fullmatch(header.strip()):
        raise InvalidSignature("malformed", "X-Signature is not 64 hex digits (HMAC-SHA256)")
    given = bytes.fromhex(header.strip())
    matched = None
    for secret in secrets:
        if hmac.compare_digest(hmac.digest(secret.key, body, "sha256"), given) and matched is None:
            matched = secret
    if matched is None:
        raise InvalidSignature("mismatch", "X-Signature does not match the body with any configured secret")
    return matched
