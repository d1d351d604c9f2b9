"""categories: product and travel categories, one row per category of a job."""

from __future__ import annotations

from sqlalchemy import Column, Connection, Float, String, Table, delete, insert

from consumers.service import JobEvent, Permanent, Service, result_of
from consumers.settings import Settings
from consumers.store import METADATA

CATEGORIES = Table(
    "categories",
    METADATA,
    Column("job_id", String(256), primary_key=True),
    Column("name", String(512), primary_key=True),
    Column("weight", Float, nullable=False),
)
JOB_TYPES = ("ecommerce_product_categories", "tth_ta_product_categories", "tth_hospitality_product_categories")


def handle(event: JobEvent, connection: Connection) -> None:
    if event["status"] != "success" or event["result"] is None:
        return
    rows = {}
    for item in result_of(event, list):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise Permanent(f"job {event['id']}: a category is not an object with a string name: {item!r:.80}")
        try:
            weight = float(item["weight"])  # weights are sometimes strings ("8")
        except (KeyError, TypeError, ValueError):
            raise Permanent(f"job {event['id']}: category {item['name']!r} has no numeric weight") from None
        rows[item["name"]] = {"job_id": event["id"], "name": item["name"], "weight": weight}
    # Replace the job's categories as a whole: a replay or a re-run yields the same rows.
    connection.execute(delete(CATEGORIES).where(CATEGORIES.c.job_id == event["id"]))
    if rows:
        connection.execute(insert(CATEGORIES), list(rows.values()))


def topics(settings: Settings) -> list[str]:
    return [settings.job_topic(job_type) for job_type in JOB_TYPES]


SERVICE = Service("categories", f"{', '.join(JOB_TYPES)} -> table categories (a row per category)", topics, handle, (CATEGORIES,))
