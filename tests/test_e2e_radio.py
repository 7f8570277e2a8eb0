"""Radio and autoplay on a real hub, broker and speaker process (clock engine).

A listener starts a radio from an album over the Web API and the Connect
WebSocket; a speaker that plays an album to its end goes on with a radio seeded
from it when its listener has autoplay on, and stops when it is off.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from hub.demo_music import catalog_extras
from hub.demo_music.seed import seed_demo
from tests.system import Api, System, wait_for
from tests.test_e2e_control import Ws

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


@pytest.fixture
def system(tmp_path: Any) -> Iterator[System]:
    sysm = System(tmp_path)
    seed_demo(sysm.db)
    with sysm.db.transaction() as conn:
        catalog_extras.apply(conn)  # audio features: what a radio ranks by
    with sysm.running("kitchen"):
        yield sysm


@pytest.fixture
def api(system: System) -> Iterator[Api]:
    client = Api(system)
    client.wait_online("kitchen")
    try:
        yield client
    finally:
        client.close()


def an_album(system: System) -> tuple[str, list[tuple[str, int]]]:
    """The first demo album's id and its (track id, duration ms) in order."""
    with system.db.reading() as conn:
        album_id = conn.execute("SELECT album_id FROM tracks ORDER BY album_id LIMIT 1").fetchone()[
            0
        ]
        rows = conn.execute(
            "SELECT id, duration_ms FROM tracks WHERE album_id = ? ORDER BY track_number",
            (album_id,),
        ).fetchall()
    return album_id, [(r[0], r[1]) for r in rows]


def track_id(player: dict[str, Any]) -> str:
    return str(player["item"]["uri"]).rsplit(":", 1)[-1]


def test_a_radio_started_from_an_album_plays_other_tracks_like_it(system: System, api: Api) -> None:
    album_id, tracks = an_album(system)
    radio = f"legato:radio:album:{album_id}"
    r = api.client.put(
        "/v1/me/player/play", params={"device_id": "kitchen"}, json={"context_uri": radio}
    )
    assert r.status_code == 204, r.text
    player = api.player()
    assert player is not None
    assert player["is_playing"] is True
    assert player["context"]["uri"] == radio
    assert player["context"]["type"] == "radio"
    assert track_id(player) not in {t for t, _ in tracks}

    for bad in (f"legato:radio:album:{'x' * 22}", "legato:radio:playlist:abc", "legato:radio:"):
        r = api.client.put("/v1/me/player/play", json={"context_uri": bad})
        assert r.status_code == 400, (bad, r.text)
        assert r.json()["error"]["message"]
    after = api.player()
    assert after is not None
    assert after["context"]["uri"] == radio  # a refused radio changed nothing

    # a track of the radio (as the remote's queue offers them) plays with the radio after it
    picked = f"legato:track:{tracks[1][0]}"
    r = api.client.put("/v1/me/player/play", json={"context_uri": radio, "offset": {"uri": picked}})
    assert r.status_code == 204, r.text
    player = api.player()
    assert player is not None
    assert player["item"]["uri"] == picked
    assert player["context"]["uri"] == radio

    ws = Ws(system)
    try:
        track_radio = f"legato:radio:track:{tracks[0][0]}"
        result = ws.command("play", context_uri=track_radio, device_id="kitchen")
        assert result.get("ok") is True, result
    finally:
        ws.close()
    player = api.player()
    assert player is not None
    assert player["context"]["uri"] == track_radio
    assert track_id(player) != tracks[0][0]


def test_autoplay_is_on_by_default_and_each_listener_can_turn_it_off(api: Api) -> None:
    assert api.client.get("/v1/me/player/autoplay").json() == {"autoplay": True}
    assert api.client.put("/v1/me/player/autoplay", params={"state": "false"}).status_code == 204
    assert api.client.get("/v1/me/player/autoplay").json() == {"autoplay": False}
    r = api.client.put("/v1/me/player/autoplay", params={"state": "maybe"})
    assert r.status_code == 400
    assert api.client.get("/v1/me/player/autoplay").json() == {"autoplay": False}
    assert api.client.put("/v1/me/player/autoplay", params={"state": "true"}).status_code == 204
    assert api.client.get("/v1/me/player/autoplay").json() == {"autoplay": True}
    anonymous = api.client.get("/v1/me/player/autoplay", headers={"Authorization": ""})
    assert anonymous.status_code == 401


def play_to_the_end(api: Api, album_id: str, tracks: list[tuple[str, int]]) -> None:
    """Start the album's last track 1.5 s before its end."""
    r = api.client.put(
        "/v1/me/player/play",
        params={"device_id": "kitchen"},
        json={
            "context_uri": f"legato:album:{album_id}",
            "offset": {"position": len(tracks) - 1},
            "position_ms": tracks[-1][1] - 1500,
        },
    )
    assert r.status_code == 204, r.text


def test_an_album_that_ends_goes_on_with_a_radio_unless_autoplay_is_off(
    system: System, api: Api
) -> None:
    album_id, tracks = an_album(system)
    album_tracks = {t for t, _ in tracks}
    play_to_the_end(api, album_id, tracks)

    def on_radio() -> dict[str, Any] | None:
        player = api.player()
        if player and player["context"] and player["context"]["uri"].startswith("legato:radio:"):
            return player
        return None

    player = wait_for(on_radio, 15, "the speaker to go on with a radio", system.logs)
    assert player["context"]["uri"] == f"legato:radio:album:{album_id}"
    assert player["is_playing"] is True
    assert track_id(player) not in album_tracks

    assert api.client.put("/v1/me/player/autoplay", params={"state": "false"}).status_code == 204
    play_to_the_end(api, album_id, tracks)

    def stopped() -> dict[str, Any] | None:
        player = api.player()
        return player if player and not player["is_playing"] else None

    wait_for(stopped, 15, "the album to end", system.logs)
    time.sleep(1.5)  # autoplay, were it on, would have started by now
    final = api.player()
    assert final is not None
    assert final["is_playing"] is False
    assert final["context"]["uri"] == f"legato:album:{album_id}"
    assert track_id(final) == tracks[0][0]  # rewound to the album's start, as before


def test_with_nothing_like_it_in_the_catalog_the_album_just_ends(tmp_path: Any) -> None:
    # The bare demo catalog has no audio features: an album's radio has nothing
    # that is not the album itself, so autoplay must stop rather than loop.
    system = System(tmp_path)
    seed_demo(system.db)
    with system.running("kitchen"):
        api = Api(system)
        try:
            api.wait_online("kitchen")
            album_id, tracks = an_album(system)
            play_to_the_end(api, album_id, tracks)

            def stopped() -> dict[str, Any] | None:
                player = api.player()
                return player if player and not player["is_playing"] else None

            wait_for(stopped, 15, "the album to end", system.logs)
            time.sleep(1.5)
            final = api.player()
            assert final is not None
            assert final["is_playing"] is False
            assert final["context"]["uri"] == f"legato:album:{album_id}"
            r = api.client.put(
                "/v1/me/player/play", json={"context_uri": f"legato:radio:album:{album_id}"}
            )
            assert r.status_code == 400
            assert "Nothing to play" in r.json()["error"]["message"]
        finally:
            api.close()
    assert "autoplay on kitchen stopped" in (tmp_path / "hub.log").read_text()
