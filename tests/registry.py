"""A stand-in for Confluent Schema Registry: the REST calls its serializers make, in memory.

No registry server can be installed from this project's package sources, so the wire-format
test registers and looks up schemas here; Kafka in that test is real.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


class Registry:
    def __init__(self) -> None:
        self.schemas: list[str] = []
        self.subjects: dict[str, list[int]] = {}
        self.app = Starlette(
            routes=[
                Route("/subjects/{subject}/versions", self.register, methods=["POST"]),
                Route("/schemas/ids/{id:int}", self.schema, methods=["GET"]),
            ]
        )

    async def register(self, request: Request) -> Response:
        text = orjson.loads(await request.body())["schema"]
        if text not in self.schemas:
            self.schemas.append(text)
        schema_id = self.schemas.index(text) + 1
        versions = self.subjects.setdefault(request.path_params["subject"], [])
        if schema_id not in versions:
            versions.append(schema_id)
        return _json({"id": schema_id})

    async def schema(self, request: Request) -> Response:
        schema_id: int = request.path_params["id"]
        if not 0 < schema_id <= len(self.schemas):
            return _json({"error_code": 40403, "message": "Schema not found"}, 404)
        return _json({"schema": self.schemas[schema_id - 1], "schemaType": "AVRO"})


def _json(body: dict[str, Any], status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, media_type="application/vnd.schemaregistry.v1+json")
