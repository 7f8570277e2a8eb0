"""spotipy, pointed at the hub, gets what the Spotify Web API documentation promises.

A real hub process, its broker and two speakers on loopback; spotipy's ``prefix``
set to the hub and a token from ``POST /api/token``.  Each test is a listener's
task done through spotipy's own calls, checked against the documented shapes.
"""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import spotipy
from PIL import Image

from hub.demo_music.seed import seed_demo
from tests.catalog_fixtures import populate
from tests.system import System, wait_for

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.integration,
    # spotipy marks calls Spotify deprecated for its own apps; the issue asks for them
    pytest.mark.filterwarnings("ignore:You're using:DeprecationWarning"),
]


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    sysm = System(tmp_path_factory.mktemp("spotipy"), embedded=True)
    seed_demo(sysm.db)
    sysm.ids = populate(sysm.db, art_dir=sysm.data)  # type: ignore[attr-defined]
    with sysm.running("kitchen", "bedroom"):
        yield sysm


@pytest.fixture(scope="module")
def ids(system: System) -> dict[str, str]:
    return system.ids  # type: ignore[attr-defined, no-any-return]


@pytest.fixture(scope="module")
def sp(system: System) -> spotipy.Spotify:
    client = spotipy.Spotify(auth=system.token(), requests_timeout=10, retries=0, status_retries=0)
    client.prefix = f"{system.url}/v1/"
    logging.getLogger("spotipy").setLevel(logging.CRITICAL)  # errors are asserted on
    return client


PAGING_KEYS = {"href", "items", "limit", "next", "offset", "previous", "total"}


def test_track_and_tracks(sp: spotipy.Spotify, ids: dict[str, str]) -> None:
    track = sp.track(ids["Slow Burn"])
    assert track["type"] == "track"
    assert track["id"] == ids["Slow Burn"]
    assert [a["name"] for a in track["artists"]] == ["Aurora Vale", "Kito Mensah"]
    assert track["album"]["name"] == "Copper Skies"
    assert track["explicit"] is True
    assert track["external_ids"]["isrc"].startswith("XXLEG")
    assert track["popularity"] == 64
    # Spotify URIs work as an alias, as clients build them
    again = sp.track(f"spotify:track:{ids['Slow Burn']}")
    assert again["id"] == track["id"]
    several = sp.tracks([ids["Northern Lights"], ids["Déjà Vu"]])["tracks"]
    assert [t["name"] for t in several] == ["Northern Lights", "Déjà Vu"]


def test_unknown_and_malformed_ids_are_clear_errors(sp: spotipy.Spotify) -> None:
    with pytest.raises(spotipy.SpotifyException) as missing:
        sp.track("0" * 22)
    assert missing.value.http_status == 404
    assert "Non existing track id" in missing.value.msg
    with pytest.raises(spotipy.SpotifyException) as bad:
        sp._get("tracks/tooShort")
    assert bad.value.http_status == 400
    assert "Invalid track id" in bad.value.msg


def test_album_and_its_tracks(sp: spotipy.Spotify, ids: dict[str, str]) -> None:
    album = sp.album(ids["Copper Skies"])
    assert album["name"] == "Copper Skies"
    assert album["release_date"] == "2019"
    assert album["release_date_precision"] == "year"
    assert album["total_tracks"] == 3
    assert set(album["tracks"]) == PAGING_KEYS
    page = sp.album_tracks(ids["Copper Skies"], limit=2)
    assert [t["track_number"] for t in page["items"]] == [1, 2]
    assert page["total"] == 3
    rest = sp.next(page)
    assert [t["name"] for t in rest["items"]] == ["Glass River"]
    assert rest["next"] is None


def test_album_art_is_served_resized_and_cacheable(
    sp: spotipy.Spotify, ids: dict[str, str], system: System
) -> None:
    album = sp.album(ids["Copper Skies"])
    sizes = [(i["width"], i["height"]) for i in album["images"]]
    assert sizes == [(640, 640), (300, 300), (64, 64)]
    assert sp.album(ids["Midnight Ferry"])["images"] == []  # no art: none claimed
    artist = sp.artist(ids["Aurora Vale"])
    assert artist["images"][0]["url"] == album["images"][0]["url"]
    with httpx.Client(timeout=10) as client:
        for image in album["images"]:
            got = client.get(image["url"])
            assert got.status_code == 200
            assert got.headers["content-type"] == "image/png"
            with Image.open(io.BytesIO(got.content)) as picture:
                assert picture.size == (image["width"], image["height"])
            again = client.get(image["url"], headers={"If-None-Match": got.headers["etag"]})
            assert again.status_code == 304
        assert client.get(album["images"][0]["url"].replace("/640", "/999")).status_code == 404


def test_artist_and_top_tracks(sp: spotipy.Spotify, ids: dict[str, str]) -> None:
    artist = sp.artist(ids["Kito Mensah"])
    assert artist["name"] == "Kito Mensah"
    assert artist["type"] == "artist"
    top = sp.artist_top_tracks(ids["Kito Mensah"], country="GB")["tracks"]
    # the guest appearance counts; most popular first
    assert [t["name"] for t in top] == ["Salt & Tar", "Slow Burn", "Harbour Wall"]
    # Midnight Ferry is licensed in GB and DE only
    top_us = sp.artist_top_tracks(ids["Kito Mensah"], country="US")["tracks"]
    assert [t["name"] for t in top_us] == ["Slow Burn"]
    albums = sp.artist_albums(ids["Kito Mensah"], include_groups="album,appears_on")
    assert {a["name"] for a in albums["items"]} == {"Midnight Ferry", "Copper Skies"}


def test_current_user(sp: spotipy.Spotify) -> None:
    me = sp.current_user()
    assert me["id"] == "listener"
    assert me["type"] == "user"
    assert me["display_name"] == "listener"


def test_playlists_create_add_read_reorder(sp: spotipy.Spotify, ids: dict[str, str]) -> None:
    created = sp.user_playlist_create("listener", "Road trip", public=False, description="go")
    assert created["name"] == "Road trip"
    assert created["public"] is False
    pid = created["id"]
    songs = ["Northern Lights", "Harbour Wall", "Déjà Vu", "Crème"]
    added = sp.playlist_add_items(pid, [ids[s] for s in songs])
    assert added["snapshot_id"]
    got = sp.playlist(pid)
    assert got["owner"]["id"] == "listener"
    assert [i["track"]["name"] for i in got["tracks"]["items"]] == songs
    assert got["snapshot_id"] == added["snapshot_id"]
    # move the last two before the first
    moved = sp.playlist_reorder_items(
        pid, range_start=2, insert_before=0, range_length=2, snapshot_id=added["snapshot_id"]
    )
    assert moved["snapshot_id"] != added["snapshot_id"]
    items = sp.playlist_items(pid, limit=3)
    assert [i["track"]["name"] for i in items["items"]] == ["Déjà Vu", "Crème", "Northern Lights"]
    assert items["total"] == 4
    assert [i["track"]["name"] for i in sp.next(items)["items"]] == ["Harbour Wall"]
    # a change against an old snapshot is refused, not applied to moved items
    with pytest.raises(spotipy.SpotifyException) as stale:
        sp.playlist_reorder_items(pid, 0, 3, snapshot_id=added["snapshot_id"])
    assert stale.value.http_status == 400
    assert "snapshot_id" in stale.value.msg
    mine = sp.current_user_playlists()
    assert pid in [p["id"] for p in mine["items"]]
    assert next(p for p in mine["items"] if p["id"] == pid)["tracks"]["total"] == 4


def test_saved_tracks(sp: spotipy.Spotify, ids: dict[str, str]) -> None:
    first, second = ids["Glass River"], ids["Salt & Tar"]
    assert sp.current_user_saved_tracks_contains([first, second]) == [False, False]
    sp.current_user_saved_tracks_add([first])
    time.sleep(0.01)
    sp.current_user_saved_tracks_add([second])
    assert sp.current_user_saved_tracks_contains([first, second]) == [True, True]
    saved = sp.current_user_saved_tracks()
    assert [i["track"]["id"] for i in saved["items"][:2]] == [second, first]  # newest first
    assert saved["items"][0]["added_at"].endswith("Z")
    sp.current_user_saved_tracks_delete([first])
    assert sp.current_user_saved_tracks_contains([first, second]) == [False, True]


def test_search_with_paging(sp: spotipy.Spotify, ids: dict[str, str]) -> None:
    found = sp.search("northern", type="track", limit=5)
    assert set(found["tracks"]) == PAGING_KEYS
    assert found["tracks"]["items"][0]["id"] == ids["Northern Lights"]
    everything: list[str] = []
    page = sp.search("a", type="track", limit=2)["tracks"]
    total = page["total"]
    while page:
        everything += [t["id"] for t in page["items"]]
        nxt = sp.next(page)
        page = nxt["tracks"] if nxt else None
    assert len(everything) == total == len(set(everything))
    assert total > 2


def test_recommendations_from_seeds(sp: spotipy.Spotify, ids: dict[str, str]) -> None:
    recs = sp.recommendations(seed_tracks=[ids["Northern Lights"]], limit=5)
    assert recs["seeds"][0]["id"] == ids["Northern Lights"]
    got = [t["id"] for t in recs["tracks"]]
    assert got
    assert ids["Northern Lights"] not in got


def _state(sp: spotipy.Spotify, check: Any, what: str, system: System) -> dict[str, Any]:
    return wait_for(lambda: (s := sp.current_playback()) and check(s) and s, 15, what, system.logs)


def _completed_plays(system: System, *, at_least: int) -> list[dict[str, Any]] | None:
    """Plays a speaker's report completed (how long, how it ended), once there are enough."""
    with system.db.reading() as conn:
        rows = conn.execute(
            "SELECT track_id, device_id, ms_played, skipped, finished, source FROM plays"
            " WHERE ms_played IS NOT NULL ORDER BY played_ms, id"
        ).fetchall()
    return [dict(r) for r in rows] if len(rows) >= at_least else None


def test_player_through_spotipy(sp: spotipy.Spotify, system: System, ids: dict[str, str]) -> None:
    wait_for(
        lambda: (
            {d["id"] for d in sp.devices()["devices"] if d["is_online"]} >= {"kitchen", "bedroom"}
        ),
        30,
        "both speakers online",
        system.logs,
    )
    wait_for(
        lambda: (
            {d["id"] for d in sp.devices()["devices"] if d["is_online"]} >= {"kitchen", "bedroom"}
        ),
        30,
        "both speakers online",
        system.logs,
    )
    with system.db.reading() as conn:
        album_id = conn.execute("SELECT album_id FROM tracks ORDER BY album_id LIMIT 1").fetchone()
    sp.start_playback(device_id="kitchen", context_uri=f"spotify:album:{album_id[0]}")
    state = _state(sp, lambda s: s["is_playing"], "playing in the kitchen", system)
    assert state["device"]["id"] == "kitchen"
    first = state["item"]["id"]
    sp.next_track()
    _state(sp, lambda s: s["item"]["id"] != first, "the next track", system)
    sp.previous_track()
    _state(sp, lambda s: s["item"]["id"] == first, "back to the first track", system)
    sp.seek_track(30_000)
    _state(sp, lambda s: s["progress_ms"] >= 30_000, "the seek", system)
    sp.volume(35)
    _state(sp, lambda s: s["device"]["volume_percent"] == 35, "volume 35", system)
    sp.shuffle(True)
    _state(sp, lambda s: s["shuffle_state"] is True, "shuffle on", system)
    sp.repeat("context")
    _state(sp, lambda s: s["repeat_state"] == "context", "repeat context", system)
    sp.add_to_queue(f"spotify:track:{ids['Déjà Vu']}")
    wait_for(
        lambda: ids["Déjà Vu"] in [t["id"] for t in sp.queue()["queue"]],
        15,
        "the queued track",
        system.logs,
    )
    sp.pause_playback()
    _state(sp, lambda s: not s["is_playing"], "paused", system)
    sp.transfer_playback("bedroom", force_play=True)
    moved = _state(
        sp, lambda s: s["device"]["id"] == "bedroom" and s["is_playing"], "moved", system
    )
    assert moved["item"]["id"] == first
    json.dumps(moved)  # plain JSON all the way down
    # every track that started for this listener is in their history, newest first
    history = wait_for(
        lambda: (h := sp.current_user_recently_played(limit=10)["items"]) and len(h) >= 2 and h,
        15,
        "plays in recently played",
        system.logs,
    )
    assert history[0]["track"]["id"] == first
    assert history[0]["context"]["uri"].endswith(album_id[0])
    assert history[0]["played_at"] >= history[1]["played_at"]
    # the speaker's reports completed those plays: how long each played, how it ended
    ended = wait_for(
        lambda: _completed_plays(system, at_least=2),
        15,
        "plays completed by the speaker's reports",
        system.logs,
    )
    assert (ended[0]["track_id"], ended[0]["device_id"]) == (first, "kitchen")
    assert (ended[0]["skipped"], ended[0]["finished"]) == (1, 0)  # next_track skipped it
    assert all(r["ms_played"] is not None and r["source"] == "speaker" for r in ended)
