"""Logging set up once at the entry point: JSON lines with the same fields as the ingestor's, or text."""

from __future__ import annotations

import logging

from pythonjsonlogger.json import JsonFormatter

FIELDS = {"asctime": "ts", "levelname": "level", "name": "logger", "message": "msg"}


def configure(level: str, fmt: str) -> None:
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s", rename_fields=FIELDS, json_ensure_ascii=False))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)
