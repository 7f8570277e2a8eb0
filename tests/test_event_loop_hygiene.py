"""Neither the hub nor the speaker blocks its event loop.

Both run in this process on one loop in asyncio debug mode, which logs every
callback that holds the loop longer than ``slow_callback_duration``.  Password
hashing (Argon2, ~150 ms here) or a stray synchronous network call in a handler
would show up as such a callback and fail the test.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from connect_protocol.mqtt import BrokerAddress
from device.config import SpeakerConfig
from device.service import SpeakerService
from hub.accounts import users
from hub.demo_music.seed import seed_demo
from hub.fleet import provisioning
from hub.server import Hub, ServeOptions
from tests.brokers import free_port

pytestmark = pytest.mark.integration
SLOW_S = 0.1


def listener_session(address: str, album: str) -> None:
    """What a listener's client does: log in, wait for the speaker, play, skip."""
    with httpx.Client(base_url=f"http://{address}", timeout=10) as client:
        r = client.post(
            "/api/token",
            data={"grant_type": "password", "username": "ada", "password": "long enough password"},
        )
        token = r.json()["access_token"]
        wrong = client.post(
            "/api/token", data={"grant_type": "password", "username": "ada", "password": "x"}
        )
        assert wrong.status_code == 400
        client.headers["Authorization"] = f"Bearer {token}"
        for _ in range(100):
            devices = client.get("/v1/me/player/devices").json()["devices"]
            if devices and devices[0]["is_online"]:
                break
            time.sleep(0.05)
        r = client.put("/v1/me/player/play", json={"context_uri": f"legato:album:{album}"})
        assert r.status_code == 204, r.text
        assert client.get("/healthz").status_code == 200
    with connect(f"ws://{address}/v1/connect/ws?access_token={token}") as ws:
        ws.send(json.dumps({"type": "command", "request_id": "1", "action": "next"}))
        while True:
            msg = json.loads(ws.recv(timeout=10))
            if msg["type"] == "result":
                assert msg["ok"] is True, msg
                break


async def scenario(tmp_path: Path) -> None:
    asyncio.get_running_loop().slow_callback_duration = SLOW_S
    port, mqtt_port, tls_port = free_port(), free_port(), free_port()
    opts = ServeOptions(
        data_dir=tmp_path, port=port, mqtt_port=mqtt_port, tls_port=tls_port, advertise=False
    )
    hub = await asyncio.to_thread(Hub, opts)  # opening the database and keys: start-up work
    await asyncio.to_thread(users.add_user, hub.db, "ada", "long enough password")
    await asyncio.to_thread(seed_demo, hub.db)
    secret = await asyncio.to_thread(provisioning.add_broker_user, hub.db, "den", "speaker")
    await hub.start()
    speaker = SpeakerService(
        SpeakerConfig(id="den", name="Den", http_host="127.0.0.1", password=secret),
        BrokerAddress(
            host="127.0.0.1",
            port=mqtt_port,
            username="den",
            password=secret,
            tls=True,
            ca_pem=hub.tls.ca_pem,
        ),
    )
    try:
        await speaker.start()
        with hub.db.reading() as conn:
            album = conn.execute("SELECT album_id FROM tracks LIMIT 1").fetchone()[0]
        # The client runs in a thread of its own so that only the hub's and the
        # speaker's callbacks are timed on this loop, not the test's own.
        await asyncio.to_thread(listener_session, f"127.0.0.1:{port}", album)
    finally:
        await speaker.stop()
        await hub.stop()


def test_no_callback_holds_the_loop(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="asyncio"):
        asyncio.run(scenario(tmp_path), debug=True)
    slow = [
        r.getMessage() for r in caplog.records if r.name == "asyncio" and " took " in r.getMessage()
    ]
    assert slow == []
