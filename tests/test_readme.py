"""The README's smallest complete service is real code."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

from consumers.service import JobEvent, Service
from consumers.store import create_tables, engine_for

README = Path(__file__).resolve().parent.parent / "README.md"


def test_the_example_service_stores_a_summary(tmp_path: Path) -> None:
    [code] = re.findall(r"A new service is a module.*?```python\n(.*?)```", README.read_text(), re.DOTALL)
    namespace: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 -- our own README
    service = namespace["SERVICE"]
    assert isinstance(service, Service)
    engine = engine_for(f"sqlite:///{tmp_path / 'example.db'}")
    create_tables(engine, service.tables)

    event = JobEvent(
        id="j-1",
        type="content_summarize",
        status="success",
        result='{"summary": "short"}',
        route=None,
        received_at=datetime(2026, 12, 4, tzinfo=UTC),
        delivery_id="d-1",
    )
    with engine.begin() as connection:
        service.handle(event, connection)

    with engine.connect() as connection:
        assert list(connection.execute(text("SELECT job_id, summary FROM summaries"))) == [("j-1", "short")]
