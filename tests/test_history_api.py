"""Listening history through the Web API, on a real hub app over loopback HTTP and a
real SQLite database: top tracks and artists over Spotify's time ranges (and through
spotipy), recently played counting matched plays only, "clear my history", the
speaker's reports completing a play, and retention."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import spotipy

from connect_protocol.codec import encode
from connect_protocol.messages import DeviceInfo, Event, EventKind
from connect_protocol.mqtt import BrokerAddress
from hub.accounts import tokens as accounts
from hub.accounts import users
from hub.clock import now_ms
from hub.db import Database
from hub.fleet.recorder import FleetRecorder
from hub.fleet.relay import Device, Relay
from hub.http.app import create_app
from hub.listening import imports, retention
from hub.server import keep_history, open_database
from tests.catalog_fixtures import populate
from tests.serving import offline_context, serving
from tests.system import wait_for

DAY_MS = 86_400_000
PAGING_KEYS = {"href", "items", "limit", "next", "offset", "previous", "total"}


@dataclass
class Hub:
    url: str
    data: Path
    db: Database
    ids: dict[str, str]
    user_ids: dict[str, int]

    def token(self, who: str, scope: str | None = None) -> str:
        with self.db.reading() as conn:
            row = conn.execute("SELECT name FROM users WHERE id = ?", (self.user_ids[who],))
            name = row.fetchone()[0]
        user = users.authenticate(self.db, name, f"password-{name}")
        assert user is not None
        return accounts.issue_token(self.db, user, scope=scope).access_token

    def get(self, who: str, path: str, scope: str | None = None, **params: Any) -> httpx.Response:
        auth = {"Authorization": f"Bearer {self.token(who, scope)}"}
        return httpx.get(f"{self.url}{path}", params=params, headers=auth, timeout=10)


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    data = tmp_path / "hub"
    db = open_database(data)
    ids = populate(db)
    user_ids = {n: users.add_user(db, n, f"password-{n}").id for n in ("ann", "bob")}
    app = create_app(offline_context(db, data), manage_relay=False, rate_limits=None)
    with serving(app) as url:
        yield Hub(url, data, db, ids, user_ids)


def iso(ms: int) -> str:
    return datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC).isoformat()


def history(hub: Hub, who: str, plays: list[tuple[str, str, float, int]], tmp: Path) -> None:
    """Import Spotify rows (track, artist, days ago, ms played) for ``who``."""
    now = now_ms()
    rows = [
        {
            "ts": iso(now - int(days * DAY_MS)),
            "ms_played": ms,
            "master_metadata_track_name": track,
            "master_metadata_album_artist_name": artist,
            "master_metadata_album_album_name": "",
            "reason_end": "trackdone" if ms > 30_000 else "fwdbtn",
            "skipped": ms <= 30_000,
        }
        for track, artist, days, ms in plays
    ]
    path = tmp / f"{who}-{len(list(tmp.iterdir()))}.json"
    path.write_text(json.dumps(rows))
    imports.import_files(hub.db, hub.user_ids[who], [path])


ANN = [
    *[("Déjà Vu", "Zoë Ångström", 2 + i, 200_000) for i in range(3)],
    *[("Northern Lights", "Aurora Vale", 100 + i, 200_000) for i in range(5)],
    *[("Glass River", "Aurora Vale", 300 + i, 200_000) for i in range(8)],
    *[("Salt & Tar", "Kito Mensah", 1 + i / 100, 4_000) for i in range(6)],  # early skips
    ("Harbour Wall", "Kito Mensah", 10, 200_000),
    *[("Not In Catalog", "Stranger", 1 + i / 10, 200_000) for i in range(9)],
]


def names(page: dict[str, Any]) -> list[str]:
    return [item["name"] for item in page["items"]]


def test_top_tracks_over_each_time_range(hub: Hub, tmp_path: Path) -> None:
    history(hub, "ann", ANN, tmp_path)
    history(
        hub, "bob", [("Crème", "Zoë Ångström", 1 + i / 10, 200_000) for i in range(20)], tmp_path
    )
    expected = {
        "short_term": ["Déjà Vu", "Harbour Wall"],
        "medium_term": ["Northern Lights", "Déjà Vu", "Harbour Wall"],
        "long_term": ["Glass River", "Northern Lights", "Déjà Vu", "Harbour Wall"],
    }
    for time_range, tracks in expected.items():
        r = hub.get("ann", "/v1/me/top/tracks", time_range=time_range)
        assert r.status_code == 200, r.text
        page = r.json()
        assert set(page) == PAGING_KEYS
        assert names(page) == tracks
        assert page["total"] == len(tracks)
        assert page["items"][0]["type"] == "track"
    default = hub.get("ann", "/v1/me/top/tracks").json()
    assert names(default) == expected["medium_term"]  # Spotify's default range


def test_top_tracks_page_like_spotify(hub: Hub, tmp_path: Path) -> None:
    history(hub, "ann", ANN, tmp_path)
    page = hub.get("ann", "/v1/me/top/tracks", time_range="long_term", limit=2, offset=1).json()
    assert names(page) == ["Northern Lights", "Déjà Vu"]
    assert (page["limit"], page["offset"], page["total"]) == (2, 1, 4)
    assert "time_range=long_term" in page["next"]
    assert "offset=3" in page["next"]
    assert "offset=0" in page["previous"]
    last = httpx.get(
        page["next"], headers={"Authorization": f"Bearer {hub.token('ann')}"}, timeout=10
    ).json()
    assert names(last) == ["Harbour Wall"]
    assert last["next"] is None


def test_top_artists_count_every_play_of_their_tracks(hub: Hub, tmp_path: Path) -> None:
    history(hub, "ann", ANN, tmp_path)
    page = hub.get("ann", "/v1/me/top/artists", time_range="long_term").json()
    assert set(page) == PAGING_KEYS
    assert names(page) == ["Aurora Vale", "Zoë Ångström", "Kito Mensah"]
    assert page["items"][0]["type"] == "artist"
    short = hub.get("ann", "/v1/me/top/artists", time_range="short_term").json()
    assert names(short) == ["Zoë Ångström", "Kito Mensah"]


def test_top_needs_its_scope_and_valid_parameters(hub: Hub, tmp_path: Path) -> None:
    history(hub, "ann", ANN, tmp_path)
    narrow = hub.get("ann", "/v1/me/top/tracks", scope="user-read-recently-played")
    assert narrow.status_code == 403
    assert hub.get("ann", "/v1/me/top/artists", scope="user-top-read").status_code == 200
    bad_range = hub.get("ann", "/v1/me/top/tracks", time_range="forever")
    assert bad_range.status_code == 400
    assert "time_range" in bad_range.json()["error"]["message"]
    assert hub.get("ann", "/v1/me/top/tracks", limit=51).status_code == 400
    assert hub.get("ann", "/v1/me/top/tracks", limit=0).status_code == 400


def test_recently_played_shows_matched_plays_only(hub: Hub, tmp_path: Path) -> None:
    history(hub, "ann", ANN, tmp_path)
    items = hub.get("ann", "/v1/me/player/recently-played", limit=50).json()["items"]
    assert len(items) == 3 + 5 + 8 + 6 + 1  # the 9 unmatched plays are not shown
    assert all(item["track"] is not None for item in items)
    assert items[0]["track"]["name"] == "Salt & Tar"


def test_clearing_history_leaves_other_listeners_alone(hub: Hub, tmp_path: Path) -> None:
    history(hub, "ann", ANN, tmp_path)
    history(hub, "bob", [("Crème", "Zoë Ångström", 1, 200_000)], tmp_path)
    url = f"{hub.url}/v1/me/player/recently-played"
    for scope in ("user-read-recently-played", "user-modify-playback-state"):
        # reading history, or a remote-control app's playback scope, erases nothing
        other = {"Authorization": f"Bearer {hub.token('ann', scope)}"}
        assert httpx.delete(url, headers=other, timeout=10).status_code == 403
    with hub.db.transaction() as conn:  # a Weekly Mix made from what she played
        conn.execute(
            "INSERT INTO playlists (id, owner_id, name, created_ms, generated)"
            " VALUES ('mix0000000000000000000', ?, 'Weekly Mix', 0, 'weekly_mix')",
            (hub.user_ids["ann"],),
        )
    allowed = {"Authorization": f"Bearer {hub.token('ann', 'legato-history-modify')}"}
    r = httpx.delete(url, headers=allowed, timeout=10)
    assert r.status_code == 204
    assert r.content == b""
    assert hub.get("ann", "/v1/me/player/recently-played").json()["items"] == []
    assert hub.get("ann", "/v1/me/top/tracks", time_range="long_term").json()["total"] == 0
    with hub.db.reading() as conn:
        left = conn.execute("SELECT COUNT(*) FROM plays WHERE user_id = ?", (hub.user_ids["ann"],))
        assert left.fetchone()[0] == 0  # unmatched rows too
        mixes = conn.execute("SELECT COUNT(*) FROM playlists WHERE generated IS NOT NULL")
        assert mixes.fetchone()[0] == 0  # what was made from it goes with it
        cleared = conn.execute(
            "SELECT history_cleared_ms FROM listener_settings WHERE user_id = ?",
            (hub.user_ids["ann"],),
        ).fetchone()[0]
        assert cleared is not None  # the recommender forgets her until it trains again
    assert len(hub.get("bob", "/v1/me/player/recently-played").json()["items"]) == 1


def test_spotipy_reads_top_tracks_and_artists(hub: Hub, tmp_path: Path) -> None:
    history(hub, "ann", ANN, tmp_path)
    sp = spotipy.Spotify(auth=hub.token("ann"), requests_timeout=10, retries=0, status_retries=0)
    sp.prefix = f"{hub.url}/v1/"
    logging.getLogger("spotipy").setLevel(logging.CRITICAL)
    tracks = sp.current_user_top_tracks(limit=3, time_range="long_term")
    assert names(tracks) == ["Glass River", "Northern Lights", "Déjà Vu"]
    rest = sp.next(tracks)
    assert names(rest) == ["Harbour Wall"]
    artists = sp.current_user_top_artists(limit=1, offset=1, time_range="long_term")
    assert names(artists) == ["Zoë Ångström"]
    assert artists["total"] == 3
    assert names(sp.current_user_top_tracks(time_range="short_term")) == ["Déjà Vu", "Harbour Wall"]


def _event(kind: EventKind, track_id: str, at_ms: int, played_ms: int = 0) -> Event:
    return Event(
        kind=kind, timestamp_ms=at_ms, track_uri=f"legato:track:{track_id}", played_ms=played_ms
    )


def test_a_speakers_reports_complete_its_plays(hub: Hub) -> None:
    """The relay's event path with real Event payloads: started, then finished or skipped
    for the same speaker and track, fill in how long it played and how it ended; a skip
    caused by another listener taking the speaker says nothing of how it ended."""
    relay = Relay(hub.db, BrokerAddress(host="127.0.0.1", port=1, username="hub", password="-"))
    for device_id in ("kitchen", "den"):
        info = DeviceInfo(id=device_id, name=device_id, model="test", fw="0")
        relay.devices[device_id] = Device(info, True, now_ms())
    ann, bob = hub.user_ids["ann"], hub.user_ids["bob"]
    listener = {"kitchen": ann, "den": ann}
    recorder = FleetRecorder(hub.db, relay, listener_of=listener.get)
    first, second, third = hub.ids["Northern Lights"], hub.ids["Slow Burn"], hub.ids["Crème"]
    t = now_ms() - 600_000
    reports = [
        ("kitchen", _event(EventKind.STARTED, first, t)),
        ("den", _event(EventKind.STARTED, first, t + 1000)),  # the same track elsewhere
        ("kitchen", _event(EventKind.FINISHED, first, t + 181_000, played_ms=181_000)),
        ("kitchen", _event(EventKind.STARTED, second, t + 181_000)),
        ("kitchen", _event(EventKind.SKIPPED, second, t + 193_000, played_ms=12_000)),
        ("kitchen", _event(EventKind.STARTED, third, t + 193_000)),
        ("kitchen", _event(EventKind.SKIPPED, "0" * 22, t + 194_000, played_ms=1)),  # unknown
        ("den", _event(EventKind.SKIPPED, first, t + 6000, played_ms=5000)),  # bob took over
    ]
    try:
        for device_id, event in reports:
            if event.timestamp_ms == t + 6000:
                listener["den"] = bob  # he started something else there: not ann's skip
            relay._on_event(device_id, encode(event))
    finally:
        recorder.close()
    with hub.db.reading() as conn:
        rows = [
            dict(r)
            for r in conn.execute(
                "SELECT track_id, device_id, played_ms, ms_played, skipped, finished, source,"
                " track_name FROM plays ORDER BY played_ms"
            )
        ]
    assert rows == [
        _row(first, "kitchen", t, 181_000, 0, 1, "Northern Lights"),
        _row(first, "den", t + 1000, 5000, None, None, "Northern Lights"),  # ended by bob
        _row(second, "kitchen", t + 181_000, 12_000, 1, 0, "Slow Burn"),
        _row(third, "kitchen", t + 193_000, None, None, None, "Crème"),
    ]


def _row(
    track_id: str,
    device: str,
    at: int,
    ms: int | None,
    skipped: int | None,
    finished: int | None,
    name: str,
) -> dict[str, Any]:
    return {
        "track_id": track_id,
        "device_id": device,
        "played_ms": at,
        "ms_played": ms,
        "skipped": skipped,
        "finished": finished,
        "source": "speaker",
        "track_name": name,
    }


def test_retention_deletes_old_plays_at_start(hub: Hub, tmp_path: Path) -> None:
    history(
        hub,
        "ann",
        [("Déjà Vu", "Zoë Ångström", days, 200_000) for days in (1, 29, 31, 400, 2000)],
        tmp_path,
    )
    assert retention.prune(hub.db, retention.cutoff_ms(now_ms(), 1095), batch=1) == 1

    async def first_round() -> None:
        task = asyncio.create_task(keep_history(hub.db, 30))
        await asyncio.to_thread(
            wait_for, lambda: _count(hub.db) == 2, 10, "plays older than 30 days deleted"
        )
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(first_round())
    items = hub.get("ann", "/v1/me/player/recently-played").json()["items"]
    assert len(items) == 2


def _count(db: Database) -> int:
    with db.reading() as conn:
        return int(conn.execute("SELECT COUNT(*) FROM plays").fetchone()[0])
