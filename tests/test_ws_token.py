"""A Connect WebSocket session ends when its token does, on a real hub."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from hub.accounts import tokens as accounts
from hub.accounts import users
from hub.clock import now_ms
from hub.server import Hub, ServeOptions
from tests.brokers import free_port

pytestmark = pytest.mark.integration


async def scenario(tmp_path: Path) -> tuple[list[dict[str, object]], float, int | None]:
    port = free_port()
    hub = Hub(ServeOptions(data_dir=tmp_path, port=port, mqtt_port=free_port(), advertise=False))
    user = await asyncio.to_thread(users.add_user, hub.db, "ada", "long enough password")
    # A token issued long ago: about a second of life left.
    issued_at = now_ms() - accounts.TOKEN_TTL_MS + 1000
    token = await asyncio.to_thread(accounts.issue_token, hub.db, user, now=issued_at)
    await hub.start()
    try:
        started = time.monotonic()
        messages: list[dict[str, object]] = []
        url = f"ws://127.0.0.1:{port}/v1/connect/ws?access_token={token.access_token}"
        code = None
        async with connect(url) as ws:
            try:
                async for raw in ws:  # ends when the server closes
                    messages.append(json.loads(raw))
            except ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd else None
        return messages, time.monotonic() - started, code
    finally:
        await hub.stop()


def test_session_closes_when_the_token_expires(tmp_path: Path) -> None:
    messages, elapsed, code = asyncio.run(asyncio.wait_for(scenario(tmp_path), 30))
    assert code == 4401
    assert messages[0]["type"] == "devices"  # it worked until then
    assert messages[-1] == {
        "type": "error",
        "error": {"status": 401, "message": "The access token expired"},
    }
    assert elapsed < 5


async def scoped(tmp_path: Path) -> tuple[int | None, dict[str, object]]:
    """A token without playback scopes is refused; one that may read but not control
    gets its commands refused, with the scope named."""
    port = free_port()
    hub = Hub(ServeOptions(data_dir=tmp_path, port=port, mqtt_port=free_port(), advertise=False))
    user = await asyncio.to_thread(users.add_user, hub.db, "ada", "long enough password")
    library = await asyncio.to_thread(
        lambda: accounts.issue_token(hub.db, user, scope="user-library-read")
    )
    reader = await asyncio.to_thread(
        lambda: accounts.issue_token(hub.db, user, scope="user-read-playback-state")
    )
    await hub.start()
    try:
        code = None
        async with connect(
            f"ws://127.0.0.1:{port}/v1/connect/ws?access_token={library.access_token}"
        ) as ws:
            try:
                async for _ in ws:
                    pass
            except ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd else None
            code = code or ws.close_code
        async with connect(
            f"ws://127.0.0.1:{port}/v1/connect/ws?access_token={reader.access_token}"
        ) as ws:
            await ws.send(json.dumps({"type": "command", "request_id": "1", "action": "pause"}))
            while True:
                msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if msg.get("type") == "result":
                    return code, msg
    finally:
        await hub.stop()


def test_the_socket_honours_playback_scopes(tmp_path: Path) -> None:
    code, result = asyncio.run(asyncio.wait_for(scoped(tmp_path), 30))
    assert code == 4403
    assert result["ok"] is False
    assert result["error"] == {
        "status": 403,
        "message": "Insufficient client scope: this needs user-modify-playback-state",
    }
