"""The ceiling of our own stack: a bare Starlette endpoint on the same uvicorn that reads the body and answers 200."""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


async def receive(request: Request) -> Response:
    await request.body()
    return Response(b'{"outcome":"accepted"}', media_type="application/json")


app = Starlette(routes=[Route("/webhooks/sharpapi", receive, methods=["POST"])])
