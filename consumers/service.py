"""What a consumer service is: its topics, its tables, and a handler with retry semantics."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypedDict

from sqlalchemy import Connection, Table

from consumers.settings import Settings


class JobEvent(TypedDict):
    id: str
    type: str
    status: str
    result: str | None
    route: str | None
    received_at: datetime
    delivery_id: str


class HandlerError(Exception):
    """A handler could not apply an event; ``retriable`` decides between retrying and dead-lettering."""

    retriable = False


class Permanent(HandlerError):
    """Retrying cannot help (the result is not usable): dead-letter the event and go on."""


class Retriable(HandlerError):
    """Trying again later may succeed (a database briefly away): back off, don't commit."""

    retriable = True


Handler = Callable[[JobEvent, Connection], None]
BatchHandler = Callable[[Sequence[JobEvent], Connection], None]


@dataclass(frozen=True)
class Service:
    """``topics`` turns settings into the subscription: topic names, or one ``^`` pattern.

    ``handle_many``, when given, applies a batch at once (e.g. one multi-row upsert); it must
    leave the same rows as ``handle`` applied to each event in order.
    """

    name: str
    description: str
    topics: Callable[[Settings], Sequence[str]]
    handle: Handler
    tables: Sequence[Table] = field(default_factory=tuple)
    handle_many: BatchHandler | None = None

    def apply(self, events: Sequence[JobEvent], connection: Connection) -> None:
        if self.handle_many is not None:
            self.handle_many(events, connection)
            return
        for event in events:
            self.handle(event, connection)


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def result_of(event: JobEvent, kind: type) -> Any:
    """The event's parsed result, or Permanent when it is absent or not of ``kind``."""
    if event["result"] is None:
        raise Permanent(f"job {event['id']} has no result (is 'Include AI job result' on?)")
    try:
        result = json.loads(event["result"])
    except ValueError as exc:
        raise Permanent(f"job {event['id']} has a result that is not JSON: {exc}") from exc
    if isinstance(result, str) and kind is not str:  # older API versions sent the result JSON-encoded
        with contextlib.suppress(ValueError):
            result = json.loads(result)
    if not isinstance(result, kind):
        raise Permanent(f"job {event['id']} has a {type(result).__name__} result, not a {kind.__name__}")
    return result
