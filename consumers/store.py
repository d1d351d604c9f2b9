"""The services' database: SQLite by default, PostgreSQL for a postgresql:// URL."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, MetaData, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite

METADATA = MetaData()


def engine_for(url: str) -> Engine:
    """An engine for ``url``; SQLite waits for locks and uses WAL so several services can share a file."""
    if url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    engine = create_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _pragmas(connection: Any, _: Any) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=10000")
            cursor.close()

    return engine


def create_tables(engine: Engine, tables: Sequence[Table]) -> None:
    METADATA.create_all(engine, tables=list(tables))


def upsert(connection: Connection, table: Table, row: Mapping[str, Any], *, only_if_newer: str | None = None) -> None:
    """Insert ``row`` or replace the row with its primary key; with ``only_if_newer``, only when that column grew."""
    upsert_many(connection, table, [row], only_if_newer=only_if_newer)


def upsert_many(connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]], *, only_if_newer: str | None = None) -> None:
    """``upsert`` of each row in order, as one statement: per key, only the row that would have won is sent."""
    if not rows:
        return
    keys = [column.name for column in table.primary_key]
    winners: dict[tuple[Any, ...], Mapping[str, Any]] = {}
    for row in rows:
        key = tuple(row[name] for name in keys)
        kept = winners.get(key)
        if kept is None or only_if_newer is None or kept[only_if_newer] <= row[only_if_newer]:
            winners[key] = row
    insert = (postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert)(table)
    changes = {name: insert.excluded[name] for name in rows[0] if name not in keys}
    where = None if only_if_newer is None else table.c[only_if_newer] <= insert.excluded[only_if_newer]
    connection.execute(insert.on_conflict_do_update(index_elements=keys, set_=changes, where=where), list(winners.values()))
