from __future__ import annotations

import logging

import orjson

from ingestor.logs import JsonFormatter, TextFormatter


def record(**extra: object) -> logging.LogRecord:
    made = logging.makeLogRecord({"name": "ingestor.webhooks", "levelname": "INFO", "levelno": 20, "msg": "webhook", "created": 0.0})
    made.__dict__.update(extra)
    return made


def test_json_lines_carry_every_extra_field() -> None:
    line = orjson.loads(JsonFormatter().format(record(job_id="j-1", partition=0, route=None)))

    assert line == {
        "ts": "1970-01-01T00:00:00.000+00:00",
        "level": "info",
        "logger": "ingestor.webhooks",
        "msg": "webhook",
        "job_id": "j-1",
        "partition": 0,
        "route": None,
    }


def test_text_lines_end_with_the_fields_that_have_values() -> None:
    line = TextFormatter().format(record(job_id="j-1", partition=0, route=None))

    assert line.endswith(" INFO ingestor.webhooks webhook job_id=j-1 partition=0")
