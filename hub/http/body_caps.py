"""Every request body capped while it is read, before it costs anything.

An ASGI middleware around the whole app: a body declared (``Content-Length``) or
streamed past its route's cap is refused with 413 in the Web API's error format
before the route reads it, so an anonymous client cannot stream gigabytes into a
temporary directory or into memory.  Most routes take at most
:data:`DEFAULT_MAX_BODY_BYTES`; a :class:`LargerBody` rule lets named paths take
more, and only when its ``allowed`` check passes (an upload only for an
administrator's token, checked from the headers before a byte of the body is read).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: What any route may be sent: JSON bodies are far smaller (256 KiB where parsed).
DEFAULT_MAX_BODY_BYTES = 1024 * 1024


class BodyTooLarge(HTTPException):
    """413; an ``HTTPException`` so FastAPI's body reading lets it through as it is."""

    def __init__(self, cap: int) -> None:
        super().__init__(status_code=413, detail=f"The request body is over {_size(cap)}")


@dataclass(frozen=True, slots=True)
class LargerBody:
    """Paths matching ``pattern`` may send up to ``max_bytes`` when ``allowed`` says so."""

    pattern: re.Pattern[str]
    max_bytes: int
    allowed: Callable[[Headers], Awaitable[bool]] | None = None


def _size(n: int) -> str:
    return (
        f"{n // 1024**3} GiB"
        if n >= 1024**3
        else f"{n // 1024**2} MiB"
        if n >= 1024**2
        else f"{n // 1024} KiB"
    )


class BodyCaps:
    def __init__(
        self,
        app: ASGIApp,
        *,
        default_bytes: int = DEFAULT_MAX_BODY_BYTES,
        larger: Sequence[LargerBody] = (),
    ) -> None:
        self.app = app
        self.default_bytes = default_bytes
        self.larger = tuple(larger)

    async def cap_for(self, scope: Scope) -> int:
        headers = Headers(scope=scope)
        for rule in self.larger:
            if rule.pattern.fullmatch(scope.get("path", "")):
                if rule.allowed is None or await rule.allowed(headers):
                    return rule.max_bytes
                break
        return self.default_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cap = await self.cap_for(scope)
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > cap:
            await _refuse(send, cap)
            return
        received = 0
        started = False

        async def capped_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap:
                    raise BodyTooLarge(cap)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, capped_receive, watched_send)
        except BodyTooLarge:
            if started:
                raise
            await _refuse(send, cap)


async def _refuse(send: Send, cap: int) -> None:
    """413 in the Web API's format; the connection closes (the rest is never read)."""
    body = json.dumps({"error": {"status": 413, "message": BodyTooLarge(cap).detail}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
