"""A Connect WebSocket session ends when its token does, on a real hub."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from hub import accounts
from hub.clock import now_ms
from hub.server import Hub, ServeOptions
from tests.brokers import free_port

pytestmark = pytest.mark.integration


async def scenario(tmp_path: Path) -> tuple[list[dict[str, object]], float, int | None]:
    port = free_port()
    hub = Hub(ServeOptions(data_dir=tmp_path, port=port, mqtt_port=free_port(), advertise=False))
    user = await asyncio.to_thread(accounts.add_user, hub.db, "ada", "long enough password")
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
