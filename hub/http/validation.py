"""Request bodies and validation errors in the Web API's terms.

:class:`JsonBodyRoute` lets FastAPI validate a route's body model (so
``/openapi.json`` documents it) while keeping what clients rely on: a body is
JSON whatever its Content-Type (``curl -d '{...}'`` sends a form type), it is
capped, and a body that is not JSON, or nested past the parser's depth, is a plain
400 "Malformed JSON body".  :func:`message_of` turns pydantic's first error into
the one-line message the Web API answers with, for HTTP and the Connect WebSocket
alike.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from pydantic_core import ErrorDetails
from starlette.types import Receive, Scope

from hub.errors import RequestError

#: 100 URIs of a few dozen bytes, or a playlist's details, fit many times over.
MAX_BODY_BYTES = 256 * 1024
_WHERE_PARTS = ("body", "query", "path", "header")
_NOT_AN_OBJECT = ("model_attributes_type", "model_type", "dict_type")


def message_of(errors: Sequence[ErrorDetails], *, skip: int = 0) -> str:
    """The message for the first error: "Missing required field: uri", "volume_percent
    must be between 0 and 100", "Malformed JSON body"; ``skip`` drops leading location
    parts that are not fields (a tagged union's tag)."""
    if not errors:
        return "Invalid request"
    first = errors[0]
    loc = [p for p in first.get("loc", ())[skip:] if p not in _WHERE_PARTS]
    where = ".".join(str(p) for p in loc)
    kind = first.get("type", "")
    if kind == "json_invalid":
        return "Malformed JSON body"
    if kind == "missing":
        return f"Missing required field: {where}" if where else "The request needs a JSON body"
    if kind.startswith("legato_"):
        return f"{where} {first['msg']}".strip()
    if kind in _NOT_AN_OBJECT and not where:
        return "The request body must be a JSON object"
    return f"Invalid request: {where} {first.get('msg', '')}".strip()


async def read_json(request: Request, *, max_bytes: int = MAX_BODY_BYTES) -> Any:
    """The request's JSON body whatever its Content-Type; ``None`` when it is empty."""
    return _parse(await request.body(), max_bytes)


def _parse(raw: bytes, max_bytes: int) -> Any:
    if not raw.strip():
        return None
    if len(raw) > max_bytes:
        raise RequestError(f"The request body is over {max_bytes // 1024} KiB")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise RequestError("Malformed JSON body") from None


class _JsonRequest(Request):
    """The same request, its body already read and declared JSON."""

    def __init__(self, scope: Scope, receive: Receive, body: bytes) -> None:
        super().__init__(scope, receive)
        self._body = body


class JsonBodyRoute(APIRoute):
    """A route whose body, if any, is checked as JSON (see the module) before FastAPI
    validates it against the route's body model."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def checked(request: Request) -> Response:
            raw = await request.body()
            if _parse(raw, MAX_BODY_BYTES) is None:
                raw = b""  # whitespace only: no body, as FastAPI reads an empty one
            scope = request.scope
            scope["headers"] = [
                *(h for h in scope["headers"] if h[0] != b"content-type"),
                *([(b"content-type", b"application/json")] if raw else []),
            ]
            return await handle(_JsonRequest(scope, request.receive, raw))

        return checked
