"""The speaker's own port: ``GET /info``, ``GET /offline`` and a local control WebSocket.

``/info`` says only what the speaker's mDNS record already says (id, name, model,
protocol, firmware); asked with the pairing token, it adds ``diagnostics`` (the
controls' and the front panel's counters, and where the speaker's release stands:
trial, last outcome, an offer being fetched), which say when someone is at the speaker.
``/offline`` (what is downloaded) and ``/control`` (the same JSON commands as MQTT,
each answered with its ack, every new state pushed) need the speaker's pairing
token (``Authorization: Bearer T`` or ``?token=T``), which the hub shows on its
dashboard and hands to a signed-in listener's phone.  Anything whose ``Host`` is not
one of the speaker's own names or addresses is refused, so a web page cannot reach
the port through DNS rebinding; a WebSocket from a web page (``Origin``) is refused
too.  Each control connection may send :data:`COMMAND_BURST` commands at once and
:data:`COMMANDS_PER_S` a second after.
"""

from __future__ import annotations

import hmac
import http
import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, broadcast, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from connect_protocol.codec import encode
from connect_protocol.errors import ErrorCode
from connect_protocol.messages import MAX_MESSAGE_BYTES, Ack, DeviceInfo, PlayerState

logger = logging.getLogger(__name__)

COMMAND_BURST = 40
COMMANDS_PER_S = 20.0


def host_of(header: str | None) -> str:
    """The host part of a ``Host`` header, lower case, without port or brackets."""
    if not header:
        return ""
    return (urlsplit(f"//{header}").hostname or "").lower()


def token_given(path: str, headers: Headers) -> str:
    """The token a request carries, in its header or its query ('' when none)."""
    given = headers.get_all("Authorization")
    scheme, _, value = (given[0] if len(given) == 1 else "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return (parse_qs(urlsplit(path).query).get("token") or [""])[0]


class CommandBudget:
    """A token bucket per connection: a burst, then a steady rate."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tokens = float(COMMAND_BURST)
        self._then = clock()

    def take(self) -> bool:
        now = self._clock()
        self._tokens = min(float(COMMAND_BURST), self._tokens + (now - self._then) * COMMANDS_PER_S)
        self._then = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


class LocalApi:
    def __init__(
        self,
        *,
        info: Callable[[], dict[str, Any]],
        state: Callable[[], PlayerState],
        on_command: Callable[[bytes], Ack | None],
        token: str,
        hosts: Iterable[str],
        offline: Callable[[], dict[str, Any]] | None = None,
        diagnostics: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self._info = info
        self._diagnostics = diagnostics
        self._offline = offline
        self._state = state
        self._on_command = on_command
        self._token = token
        self._hosts = {h.lower() for h in hosts if h}
        self._clients: set[ServerConnection] = set()
        self._server: Server | None = None
        self.port = 0

    async def start(self, host: str, port: int) -> None:
        self._server = await serve(
            self._session,
            host,
            port,
            process_request=self._http,
            max_size=MAX_MESSAGE_BYTES,
        )
        self.port = next(iter(self._server.sockets)).getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def broadcast_state(self, state: PlayerState) -> None:
        broadcast(self._clients, encode(state).decode())

    def _paired(self, request: Request) -> bool:
        given = token_given(request.path, request.headers)
        return bool(self._token) and hmac.compare_digest(given.encode(), self._token.encode())

    def _http(self, _conn: ServerConnection, request: Request) -> Response | None:
        named = request.headers.get_all("Host")
        if len(named) != 1 or host_of(named[0]) not in self._hosts:
            return _json_response(http.HTTPStatus.FORBIDDEN, "not this speaker's address")
        path = urlsplit(request.path).path
        if path == "/info":
            doc = self._info()
            if self._diagnostics is not None and self._paired(request):
                doc = {**doc, "diagnostics": self._diagnostics()}
            return _json_ok(doc)
        if path not in ("/control", "/offline"):
            return _json_response(
                http.HTTPStatus.NOT_FOUND, "not found: try /info, /offline or /control"
            )
        if not self._paired(request):
            return _json_response(
                http.HTTPStatus.UNAUTHORIZED,
                "this needs the speaker's pairing token (see the hub's dashboard)",
            )
        if path == "/control":
            if request.headers.get("Origin") is not None:
                # Only clients that are not web pages: a page on any site a listener
                # visits must not be able to steer the speaker (cross-site WebSocket).
                return _json_response(http.HTTPStatus.FORBIDDEN, "web pages may not connect")
            return None  # go on with the WebSocket handshake
        if self._offline is None:
            return _json_response(http.HTTPStatus.NOT_FOUND, "this speaker keeps no cache")
        return _json_ok(self._offline())

    async def _session(self, ws: ServerConnection) -> None:
        self._clients.add(ws)
        budget = CommandBudget()
        try:
            await ws.send(encode(self._state()).decode())
            async for message in ws:
                data = message.encode() if isinstance(message, str) else message
                ack = self._on_command(data) if budget.take() else _too_many(data)
                if ack is not None:
                    await ws.send(encode(ack).decode())
        except ConnectionClosed:
            logger.debug("local control client left")
        finally:
            self._clients.discard(ws)


def _too_many(data: bytes) -> Ack | None:
    """The refusal of a command over the budget (nothing for what has no id)."""
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        return None
    command_id = doc.get("id") if isinstance(doc, dict) else None
    if not isinstance(command_id, str):
        return None
    message = f"over {COMMANDS_PER_S:g} commands a second; slow down"
    return Ack(
        id=command_id[:64], ok=False, revision=0, error=ErrorCode.RATE_LIMITED, message=message
    )


def _json_ok(doc: dict[str, Any]) -> Response:
    body = json.dumps(doc).encode()
    headers = Headers({"Content-Type": "application/json", "Cache-Control": "no-store"})
    return Response(http.HTTPStatus.OK, "OK", headers, body)


def _json_response(status: http.HTTPStatus, message: str) -> Response:
    body = json.dumps({"error": {"status": status.value, "message": message}}).encode()
    return Response(status, status.phrase, Headers({"Content-Type": "application/json"}), body)


def info_document(info: DeviceInfo) -> dict[str, Any]:
    """What ``GET /info`` answers: exactly what the speaker's mDNS record says."""
    return {
        "id": info.id,
        "name": info.name,
        "model": info.model,
        "fw": info.fw,
        "proto": info.proto,
    }
