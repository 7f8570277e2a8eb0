"""A listener's commands reach real speakers through a real hub and broker.

Mosquitto, the hub (uvicorn) and two speakers run as processes on loopback.
Commands go in through the Web API and the Connect WebSocket; what the speakers
did is checked on the broker by an independent subscriber (mosquitto_sub).
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from connect_protocol.messages import MAX_MESSAGE_BYTES
from hub.demo_music.seed import seed_demo
from tests.system import Api, System, retained_state, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


@pytest.fixture
def system(tmp_path: Any) -> Iterator[System]:
    sysm = System(tmp_path)
    seed_demo(sysm.db)
    with sysm.running("kitchen", "bedroom"):
        yield sysm


@pytest.fixture
def api(system: System) -> Iterator[Api]:
    client = Api(system)
    client.wait_online("kitchen", "bedroom")
    try:
        yield client
    finally:
        client.close()


def album_tracks(system: System) -> list[str]:
    with system.db.reading() as conn:
        album_id = conn.execute("SELECT album_id FROM tracks ORDER BY album_id LIMIT 1").fetchone()[
            0
        ]
        rows = conn.execute(
            "SELECT id FROM tracks WHERE album_id = ? ORDER BY track_number", (album_id,)
        ).fetchall()
    return [f"spotify:track:{r[0]}" for r in rows]


class Ws:
    """The Connect WebSocket, collecting what the hub pushes."""

    def __init__(self, system: System) -> None:
        self.conn: ClientConnection = connect(
            f"ws://127.0.0.1:{system.hub_port}/v1/connect/ws?access_token={system.token()}"
        )
        self.seen: list[dict[str, Any]] = []
        self.backlog: list[dict[str, Any]] = []
        self._n = 0

    def recv_until(self, predicate: Any, timeout_s: float = 10) -> dict[str, Any]:
        """The first message, already received or yet to come, that matches."""
        for i, msg in enumerate(self.backlog):
            if predicate(msg):
                del self.backlog[i]
                return dict(msg)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                msg = json.loads(self.conn.recv(timeout=max(0.01, deadline - time.monotonic())))
            except TimeoutError:
                break
            self.seen.append(msg)
            if predicate(msg):
                return dict(msg)
            self.backlog.append(msg)
        raise AssertionError(f"no matching message; last: {self.seen[-3:]}")

    def command(self, action: str, **params: Any) -> dict[str, Any]:
        self._n += 1
        rid = f"r{self._n}"
        self.conn.send(
            json.dumps({"type": "command", "request_id": rid, "action": action, **params})
        )
        return self.recv_until(lambda m: m.get("type") == "result" and m.get("request_id") == rid)

    def close(self) -> None:
        self.conn.close()


def test_listener_drives_a_speaker_over_http_and_websocket(system: System, api: Api) -> None:
    uris = album_tracks(system)
    r = api.client.put(
        "/v1/me/player/play",
        params={"device_id": "kitchen"},
        json={"uris": uris, "offset": {"position": 1}, "position_ms": 2000},
    )
    assert r.status_code == 204, r.text
    player = api.player()
    assert player is not None
    assert player["device"]["id"] == "kitchen"
    assert player["is_playing"] is True
    assert player["item"]["uri"] == uris[1].replace("spotify:", "legato:")
    assert player["progress_ms"] >= 2000
    retained = retained_state(system, "kitchen")
    assert retained["is_playing"] is True
    assert retained["current"]["uri"] == player["item"]["uri"]
    assert retained["revision"] == player["revision"]

    ws = Ws(system)
    try:
        first = ws.recv_until(lambda m: m["type"] == "devices")
        assert {d["id"] for d in first["devices"]} == {"kitchen", "bedroom"}
        result = ws.command("pause", device_id="kitchen")
        assert result["ok"] is True, result
        paused = ws.recv_until(
            lambda m: (
                m["type"] == "state"
                and m["device_id"] == "kitchen"
                and not m["state"]["is_playing"]
            )
        )
        assert paused["player"]["item"]["uri"] == player["item"]["uri"]
        assert ws.command("volume", volume_percent=35)["ok"]
        assert ws.command("seek", position_ms=10_000)["ok"]
        assert ws.command("repeat", state="context")["ok"]
        assert ws.command("shuffle", state=True)["ok"]
        assert ws.command("queue", uri=uris[0])["ok"]
        assert ws.command("next")["ok"]
    finally:
        ws.close()
    retained = retained_state(system, "kitchen")
    assert retained["volume_percent"] == 35
    assert retained["repeat"] == "context"
    assert retained["shuffle"] is True
    assert retained["current"]["uri"] == uris[0].replace("spotify:", "legato:")  # from the queue
    assert retained["is_playing"] is False  # still paused

    assert api.client.put("/v1/me/player/play").status_code == 204  # resume
    assert api.client.post("/v1/me/player/previous").status_code == 204
    assert api.client.put("/v1/me/player/repeat", params={"state": "off"}).status_code == 204
    assert api.client.put("/v1/me/player/shuffle", params={"state": "false"}).status_code == 204
    assert retained_state(system, "kitchen")["is_playing"] is True


def test_volume_elsewhere_does_not_steal_the_active_device(system: System, api: Api) -> None:
    uris = album_tracks(system)
    api.client.put("/v1/me/player/play", params={"device_id": "kitchen"}, json={"uris": uris})
    r = api.client.put(
        "/v1/me/player/volume", params={"device_id": "bedroom", "volume_percent": 20}
    )
    assert r.status_code == 204
    r = api.client.put("/v1/me/player/pause")  # no device: the active one, still the kitchen
    assert r.status_code == 204, r.text
    assert retained_state(system, "kitchen")["is_playing"] is False
    player = api.player()
    assert player is not None
    assert player["device"]["id"] == "kitchen"


def test_stale_expected_revision_is_a_conflict(system: System, api: Api) -> None:
    uris = album_tracks(system)
    api.client.put("/v1/me/player/play", params={"device_id": "kitchen"}, json={"uris": uris})
    player = api.player()
    assert player is not None
    revision = player["revision"]
    r = api.client.put("/v1/me/player/pause", params={"expected_revision": revision - 1})
    assert r.status_code == 409
    assert "expected revision" in r.json()["error"]["message"]
    r = api.client.put("/v1/me/player/pause", params={"expected_revision": revision})
    assert r.status_code == 204


def test_transfer_moves_playback_between_speakers(system: System, api: Api) -> None:
    uris = album_tracks(system)
    r = api.client.put(
        "/v1/me/player/play",
        params={"device_id": "kitchen"},
        json={"uris": uris, "position_ms": 30_000},
    )
    assert r.status_code == 204
    r = api.client.put("/v1/me/player", json={"device_ids": ["bedroom"], "play": True})
    assert r.status_code == 204, r.text
    bedroom = retained_state(system, "bedroom")
    kitchen = retained_state(system, "kitchen")
    assert bedroom["is_playing"] is True
    assert bedroom["current"]["uri"] == uris[0].replace("spotify:", "legato:")
    assert bedroom["position_ms"] >= 30_000
    assert [t["uri"] for t in bedroom["tracks"]] == [u.replace("spotify:", "legato:") for u in uris]
    assert kitchen["current"] is None
    assert kitchen["is_playing"] is False
    player = api.player()
    assert player is not None
    assert player["device"]["id"] == "bedroom"

    # Transfer carries the whole session: a queued track, the queue, the modes;
    # without "play" it keeps the play/pause state as it was (paused here).
    assert api.client.put("/v1/me/player/shuffle", params={"state": "true"}).status_code == 204
    assert api.client.put("/v1/me/player/repeat", params={"state": "track"}).status_code == 204
    for uri in uris[1:3]:
        assert api.client.post("/v1/me/player/queue", params={"uri": uri}).status_code == 204
    assert api.client.post("/v1/me/player/next").status_code == 204
    assert api.client.put("/v1/me/player/pause").status_code == 204
    before = retained_state(system, "bedroom")
    r = api.client.put("/v1/me/player", json={"device_ids": ["kitchen"]})
    assert r.status_code == 204, r.text
    after = retained_state(system, "kitchen")
    for key in ("tracks", "order", "index", "queue", "current", "from_queue", "shuffle", "repeat"):
        assert after[key] == before[key], key
    assert after["is_playing"] is False
    assert after["from_queue"] is True

    # An offline target is a 404 at once, and nothing moves.
    system.speakers["bedroom"].stop()
    wait_for(lambda: not api.devices()["bedroom"]["is_online"], 10, "bedroom offline")
    r = api.client.put("/v1/me/player", json={"device_ids": ["bedroom"], "play": True})
    assert r.status_code == 404
    assert r.json()["error"]["message"] == "Device is offline: Bedroom"
    assert retained_state(system, "kitchen")["current"] == after["current"]


def test_requests_are_answered_clearly_and_never_hang(system: System, api: Api) -> None:
    anon = httpx.get(f"{system.url}/v1/me/player/devices")
    assert anon.status_code == 401
    assert anon.json() == {"error": {"status": 401, "message": "No token provided"}}
    bad_token = httpx.get(f"{system.url}/v1/me/player", headers={"Authorization": "Bearer nope"})
    assert bad_token.status_code == 401
    assert bad_token.json()["error"]["message"] == "Invalid access token"

    started = time.monotonic()
    r = api.client.put("/v1/me/player/pause", params={"device_id": "no-such-speaker"})
    assert r.status_code == 404
    assert r.json()["error"]["message"] == "Device not found: no-such-speaker"
    assert time.monotonic() - started < 1.0

    cases: list[tuple[str, str, dict[str, Any], Any, str]] = [
        (
            "put",
            "/v1/me/player/volume",
            {"volume_percent": "loud"},
            None,
            "volume_percent must be an integer",
        ),
        (
            "put",
            "/v1/me/player/volume",
            {"volume_percent": 101},
            None,
            "volume_percent must be between 0 and 100",
        ),
        ("put", "/v1/me/player/seek", {}, None, "Missing required field: position_ms"),
        (
            "put",
            "/v1/me/player/repeat",
            {"state": "always"},
            None,
            "state must be track, context or off",
        ),
        (
            "put",
            "/v1/me/player/play",
            {"device_id": "kitchen"},
            {"uris": ["spotify:track:nope"]},
            "Unknown track",
        ),
        (
            "put",
            "/v1/me/player/play",
            {"device_id": "kitchen"},
            {"uris": "x"},
            "uris must be a non-empty list",
        ),
        (
            "put",
            "/v1/me/player",
            {},
            {"device_ids": []},
            "device_ids must be a list with exactly one",
        ),
        (
            "post",
            "/v1/me/player/queue",
            {"device_id": "kitchen"},
            None,
            "Missing required field: uri",
        ),
    ]
    for method, path, params, body, message in cases:
        r = api.client.request(method, path, params=params, json=body)
        assert r.status_code == 400, (path, r.text)
        assert message in r.json()["error"]["message"], (path, r.text)
    r = api.client.put(
        "/v1/me/player/play",
        params={"device_id": "kitchen"},
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 400
    assert r.json()["error"]["message"] == "Malformed JSON body"
    # A refusal by the speaker itself comes back as Spotify's PlayerError.
    r = api.client.put("/v1/me/player/pause", params={"device_id": "bedroom"})
    assert r.status_code == 403
    assert r.json() == {
        "error": {
            "status": 403,
            "message": "nothing is loaded on this speaker",
            "reason": "NOT_PLAYING_TRACK",
        }
    }
    # Input that used to escape as a plain-text 500:
    first = album_tracks(system)[0]
    for text, message in [
        (f'{{"uris": ["{first}"], "position_ms": 1e999}}', "position_ms must be"),
        (f'{{"uris": ["{first}"], "offset": {{"uri": "garbage"}}}}', "offset.uri"),
        (f'{{"uris": ["{first}"], "device_id": 7}}', "device_id must be a string"),
    ]:
        r = api.client.put(
            "/v1/me/player/play", content=text, headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 400, r.text
        assert message in r.json()["error"]["message"]
    r = api.client.put("/v1/me/player/volume", params={"volume_percent": "9" * 25})
    assert r.status_code == 400


def test_websocket_survives_bad_input(system: System, api: Api) -> None:
    ws = Ws(system)
    try:
        ws.recv_until(lambda m: m["type"] == "devices")
        ws.conn.send("{nope")
        err = ws.recv_until(lambda m: m["type"] == "error")
        assert err["error"] == {"status": 400, "message": "Malformed JSON"}
        over_cap = "x" * (MAX_MESSAGE_BYTES + 1)
        ws.conn.send(json.dumps({"type": "command", "request_id": "big", "pad": over_cap}))
        err = ws.recv_until(lambda m: m["type"] == "error")
        assert err["error"] == {"status": 413, "message": f"message over {MAX_MESSAGE_BYTES} bytes"}
        bad = ws.command("explode", device_id="kitchen")
        assert bad["ok"] is False
        assert bad["error"]["message"] == "Unknown player action 'explode'"
        wrong = ws.command("volume", device_id="kitchen", volume_percent=[1])
        assert wrong["error"]["status"] == 400
        ws.conn.send(
            b'{"type": "command", "request_id": "bin", "action": "volume", '
            b'"device_id": "kitchen", "volume_percent": 11}'
        )  # a binary frame
        assert ws.recv_until(lambda m: m.get("request_id") == "bin")["ok"] is True
        ws.conn.send(b"\xff\xfe")
        assert ws.recv_until(lambda m: m["type"] == "error")["error"]["status"] == 400
        ws.conn.send(
            '{"type": "command", "request_id": "inf", "action": "seek", '
            '"device_id": "kitchen", "position_ms": Infinity}'
        )
        inf = ws.recv_until(lambda m: m.get("request_id") == "inf")
        assert inf["error"] == {"status": 400, "message": "position_ms must be an integer"}
        missing = ws.command("pause", device_id="ghost")
        assert missing["error"] == {"status": 404, "message": "Device not found: ghost"}
        # Still usable after all that:
        assert ws.command("volume", device_id="kitchen", volume_percent=10)["ok"]
    finally:
        ws.close()
    # A frame far past the cap is not even buffered: the connection is closed (1009).
    huge = Ws(system)
    huge.conn.send("x" * (3 * MAX_MESSAGE_BYTES))
    with pytest.raises(ConnectionClosed) as closed:
        _drain(huge.conn)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009
    unauth = connect(f"ws://127.0.0.1:{system.hub_port}/v1/connect/ws")
    msg = json.loads(unauth.recv(timeout=5))
    assert msg["error"]["status"] == 401
    unauth.close()


def test_a_speaker_that_stops_answering_or_vanishes(system: System, api: Api) -> None:
    kitchen = system.speakers["kitchen"]
    kitchen.proc.send_signal(signal.SIGSTOP)  # alive on the network, answering nothing
    try:
        started = time.monotonic()
        r = api.client.put(
            "/v1/me/player/volume", params={"device_id": "kitchen", "volume_percent": 5}
        )
        elapsed = time.monotonic() - started
        assert r.status_code == 504
        assert r.json()["error"]["message"] == "Kitchen did not answer within 3 s"
        assert system.command_timeout_s <= elapsed < system.command_timeout_s + 2

        # Now the speaker dies in the middle of a command: the caller hears at once.
        outcome: dict[str, Any] = {}

        def call() -> None:
            t0 = time.monotonic()
            resp = api.client.put(
                "/v1/me/player/volume", params={"device_id": "kitchen", "volume_percent": 6}
            )
            outcome.update(status=resp.status_code, body=resp.json(), elapsed=time.monotonic() - t0)

        caller = threading.Thread(target=call)
        caller.start()
        time.sleep(0.5)
        kitchen.proc.kill()
        caller.join(15)
    finally:
        kitchen.proc.send_signal(signal.SIGCONT)
    assert outcome["status"] == 404, outcome
    assert outcome["body"]["error"]["message"] == "Kitchen went offline"
    assert outcome["elapsed"] < system.command_timeout_s
    wait_for(lambda: api.devices()["kitchen"]["is_online"] is False, 10, "kitchen offline")
    r = api.client.put("/v1/me/player/pause", params={"device_id": "kitchen"})
    assert r.status_code == 404
    assert r.json()["error"]["message"] == "Device is offline: Kitchen"
    # The other speaker and the hub carry on.
    assert (
        api.client.put(
            "/v1/me/player/volume", params={"device_id": "bedroom", "volume_percent": 40}
        ).status_code
        == 204
    )


def _drain(conn: ClientConnection) -> None:
    """Read until the server closes the connection (bounded: 20 messages of 10 s)."""
    for _ in range(20):
        conn.recv(timeout=10)
