"""The speaker's own port: ``GET /info`` and a local control WebSocket.

The hub reads ``/info`` to adopt a speaker it found over mDNS; a phone on the
same network can steer the speaker through ``/control`` when the hub is away, and
``/offline`` lists what is downloaded (and plays with the hub away).
The WebSocket speaks the same JSON commands as MQTT, answers each with its ack
and pushes every new state.  One ``websockets`` server serves both.
"""

from __future__ import annotations

import http
import json
import logging
from collections.abc import Callable
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, broadcast, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from connect_protocol.codec import encode
from connect_protocol.messages import MAX_MESSAGE_BYTES, Ack, DeviceInfo, PlayerState

logger = logging.getLogger(__name__)


class LocalApi:
    def __init__(
        self,
        *,
        info: Callable[[], dict[str, Any]],
        state: Callable[[], PlayerState],
        on_command: Callable[[bytes], Ack | None],
        offline: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self._info = info
        self._offline = offline
        self._state = state
        self._on_command = on_command
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

    def _http(self, conn: ServerConnection, request: Request) -> Response | None:
        if request.path == "/control":
            if request.headers.get("Origin") is not None:
                # Only clients that are not web pages: a page on any site a listener
                # visits must not be able to steer the speaker (cross-site WebSocket).
                return _json_response(http.HTTPStatus.FORBIDDEN, "web pages may not connect")
            return None  # go on with the WebSocket handshake
        if request.path == "/info":
            return _json_ok(self._info())
        if request.path == "/offline":  # what is downloaded: playable with the hub away
            if self._offline is None:
                return _json_response(http.HTTPStatus.NOT_FOUND, "this speaker keeps no cache")
            return _json_ok(self._offline())
        return _json_response(
            http.HTTPStatus.NOT_FOUND, "not found: try /info, /offline or /control"
        )

    async def _session(self, ws: ServerConnection) -> None:
        self._clients.add(ws)
        try:
            await ws.send(encode(self._state()).decode())
            async for message in ws:
                data = message.encode() if isinstance(message, str) else message
                ack = self._on_command(data)
                if ack is not None:
                    await ws.send(encode(ack).decode())
        except ConnectionClosed:
            logger.debug("local control client left")
        finally:
            self._clients.discard(ws)


def _json_ok(doc: dict[str, Any]) -> Response:
    body = json.dumps(doc).encode()
    headers = Headers({"Content-Type": "application/json", "Cache-Control": "no-store"})
    return Response(http.HTTPStatus.OK, "OK", headers, body)


def _json_response(status: http.HTTPStatus, message: str) -> Response:
    body = json.dumps({"error": {"status": status.value, "message": message}}).encode()
    return Response(status, status.phrase, Headers({"Content-Type": "application/json"}), body)


def info_document(info: DeviceInfo, *, paired: bool, hub_url: str) -> dict[str, Any]:
    """What ``GET /info`` answers: identity, model and pairing state."""
    return {
        "id": info.id,
        "name": info.name,
        "model": info.model,
        "fw": info.fw,
        "proto": info.proto,
        "paired": paired,
        "hub": hub_url or None,
    }
