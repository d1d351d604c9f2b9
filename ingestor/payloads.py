"""What an authentic body must be: a JSON object with string id, status and type.

``result`` may be any JSON value and is kept as its exact text in the body, so escapes,
number spellings and key order survive for the consumers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import orjson

TYPE_NAME = re.compile(r"[a-z0-9_]{1,64}")
MAX_ID_LENGTH = 256


class InvalidPayload(Exception):
    """An authentic body that cannot become a job event; ``reason`` is a stable code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Job:
    id: str
    type: str
    status: str
    result: str | None


def parse(body: bytes) -> Job:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidPayload("not_utf8", f"the body is not UTF-8: {exc.reason} at byte {exc.start}") from exc
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if "depth" in str(exc):
            raise InvalidPayload("too_deep", f"the JSON is nested too deeply to parse: {exc}") from exc
        raise InvalidPayload("not_json", f"the body is not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise InvalidPayload("not_object", f"the body is a JSON {_kind(document)}, not an object")
    for name in ("id", "status", "type"):
        if name not in document:
            raise InvalidPayload("missing_field", f"the field {name!r} is missing")
        if not isinstance(document[name], str):
            raise InvalidPayload("wrong_type", f"the field {name!r} is a JSON {_kind(document[name])}, not a string")
    job_id, job_type = document["id"], document["type"]
    if not 0 < len(job_id) <= MAX_ID_LENGTH or not job_id.isprintable():
        raise InvalidPayload("bad_id", f"the id must be 1 to {MAX_ID_LENGTH} printable characters, not {job_id[:80]!r}")
    if not TYPE_NAME.fullmatch(job_type):
        raise InvalidPayload("bad_type_name", f"the type {job_type[:80]!r} does not match {TYPE_NAME.pattern}")
    result = None
    if "result" in document:
        start, end = member_span(body, "result")
        result = body[start:end].decode("utf-8")
    return Job(id=job_id, type=job_type, status=document["status"], result=result)


def _kind(value: object) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


_WHITESPACE = re.compile(rb"[ \t\r\n]*")
_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
# Everything up to the next bracket outside a string, whole strings included; group 1 is that bracket.
_NEXT_BRACKET = re.compile(rb'(?:[^"{}\[\]]++|"(?:[^"\\]++|\\.)*+")*+([{}\[\]])', re.DOTALL)
_SCALAR_END = re.compile(rb"[ \t\r\n,}\]]")


def member_span(document: bytes, name: str) -> tuple[int, int]:
    """Byte span of the value of top-level member ``name`` (the last one, as parsers keep) in valid JSON."""
    found: tuple[int, int] | None = None
    pos = _skip_whitespace(document, 0) + 1  # past "{"
    pos = _skip_whitespace(document, pos)
    while document[pos : pos + 1] == b'"':
        key_end = _string_end(document, pos)
        key = orjson.loads(document[pos:key_end])
        start = _skip_whitespace(document, _skip_whitespace(document, key_end) + 1)  # past ":"
        end = _value_end(document, start)
        if key == name:
            found = (start, end)
        pos = _skip_whitespace(document, end)
        if document[pos : pos + 1] == b",":
            pos = _skip_whitespace(document, pos + 1)
    if found is None:
        raise KeyError(name)
    return found


def _skip_whitespace(document: bytes, pos: int) -> int:
    match = _WHITESPACE.match(document, pos)
    assert match is not None
    return match.end()


def _string_end(document: bytes, pos: int) -> int:
    match = _STRING.match(document, pos)
    assert match is not None
    return match.end()


def _value_end(document: bytes, pos: int) -> int:
    first = document[pos : pos + 1]
    if first == b'"':
        return _string_end(document, pos)
    if first not in (b"{", b"["):
        match = _SCALAR_END.search(document, pos)
        return len(document) if match is None else match.start()
    depth = 0
    for match in _NEXT_BRACKET.finditer(document, pos):
        depth += 1 if match.group(1) in b"{[" else -1
        if depth == 0:
            return match.end()
    raise AssertionError("unbalanced brackets in JSON that parsed")
