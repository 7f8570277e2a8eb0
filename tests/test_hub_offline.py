"""The hub's side of offline downloads: speakers' keys and signed syncs, listeners'
downloads and limits, licences that verify and unwrap, revocation, the CLI.

A real app under uvicorn on loopback (tests/serving.py), a real SQLite database, real
Ed25519/X25519 keys; the speaker here is a few lines of httpx and cryptography.  The
hub's clock is injected (``ctx.offline.clock``) so renewals need no waiting.  The
licence rules are pure functions, tested directly with hypothesis.
"""

from __future__ import annotations

import base64
import json
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st
from websockets.sync.client import connect

from connect_protocol.media import Loudness, Manifest, Quality, Rendition, Segment
from hub import cli
from hub.accounts import tokens as accounts
from hub.accounts import users
from hub.catalog import library
from hub.catalog.ids import base62_id
from hub.clock import now_ms
from hub.context import HubContext
from hub.db import Database
from hub.fleet import provisioning
from hub.http.app import create_app
from hub.http.routes.audio import AudioAccess
from hub.media import store
from hub.media.signing import KeyRing
from hub.offline import rules as licence_rules
from hub.offline.rules import HeldLicence, ItemState, TrackProgress
from hub.server import open_database
from offline_cache import licence as lic
from tests.catalog_fixtures import populate
from tests.serving import offline_context, serving

pytestmark = pytest.mark.integration

DAY_MS = lic.DAY_MS
PASSWORD = "long enough password"


class Clock:
    """The hub's time, moved only by the test."""

    def __init__(self) -> None:
        self.ms = now_ms()

    def __call__(self) -> int:
        return self.ms


@dataclass
class Speaker:
    """A paired speaker's offline side: its keys, its broker login, its requests."""

    id: str
    secret: str
    url: str
    x25519: X25519PrivateKey = field(default_factory=X25519PrivateKey.generate)
    ed25519: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)

    @property
    def auth(self) -> httpx.BasicAuth:
        return httpx.BasicAuth(self.id, self.secret)

    def keys_body(self) -> dict[str, str]:
        return {
            "x25519": lic.b64(lic.raw_public(self.x25519.public_key())),
            "ed25519": lic.b64(lic.raw_public(self.ed25519.public_key())),
        }

    def register(self, body: dict[str, str] | None = None, path_id: str = "") -> httpx.Response:
        return httpx.put(
            f"{self.url}/v1/devices/{path_id or self.id}/keys",
            json=self.keys_body() if body is None else body,
            auth=self.auth,
        )

    def sync(
        self,
        ts: int,
        progress: list[dict[str, Any]] | None = None,
        *,
        signer: Ed25519PrivateKey | None = None,
        signature: str | None = None,
    ) -> httpx.Response:
        body = json.dumps({"ts": ts, "progress": progress or []}).encode()
        sig = signature if signature is not None else lic.b64((signer or self.ed25519).sign(body))
        return httpx.post(
            f"{self.url}/v1/devices/{self.id}/offline/sync",
            content=body,
            headers={"Content-Type": "application/json", "Legato-Signature": sig},
            auth=self.auth,
        )

    def kek(self, doc: dict[str, str], hub_key: str) -> tuple[lic.Licence, bytes]:
        """Verify a licence against the hub's key and open its KEK, as the speaker does."""
        licence = lic.read(
            lic.SignedLicence.from_json(doc),
            Ed25519PublicKey.from_public_bytes(lic.unb64(hub_key)),
        )
        return licence, lic.unwrap_kek(licence, self.x25519)


@dataclass
class Hub:
    url: str
    data: Path
    db: Database
    ctx: HubContext
    clock: Clock
    ids: dict[str, str]
    tokens: dict[str, str]
    user_ids: dict[str, int]

    def bearer(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def speaker(self, device_id: str, name: str | None = None) -> Speaker:
        secret = provisioning.add_broker_user(self.db, device_id, "speaker")
        if name is not None:
            with self.db.transaction() as conn:
                conn.execute("INSERT INTO devices (id, name) VALUES (?, ?)", (device_id, name))
        return Speaker(device_id, secret, self.url)

    def ready_speaker(self, device_id: str, name: str | None = None) -> Speaker:
        speaker = self.speaker(device_id, name)
        assert speaker.register().status_code == 204
        return speaker

    def put(self, who: str, device_id: str, *uris: str) -> httpx.Response:
        return httpx.put(
            f"{self.url}/v1/devices/{device_id}/downloads",
            json={"uris": list(uris)},
            headers=self.bearer(who),
        )

    def get(self, who: str, device_id: str) -> dict[str, Any]:
        r = httpx.get(f"{self.url}/v1/devices/{device_id}/downloads", headers=self.bearer(who))
        assert r.status_code == 200, r.text
        doc: dict[str, Any] = r.json()
        return doc

    def delete(self, who: str, path: str, **params: str) -> httpx.Response:
        return httpx.delete(f"{self.url}{path}", params=params, headers=self.bearer(who))


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    data = tmp_path / "hub-data"
    db = open_database(data)
    ids = populate(db)
    tokens, user_ids = {}, {}
    for name, admin in (("ann", False), ("bob", False), ("root", True)):
        user = users.add_user(db, name, PASSWORD, admin=admin)
        tokens[name] = accounts.issue_token(db, user).access_token
        user_ids[name] = user.id
    ctx = offline_context(db, data)
    clock = Clock()
    ctx.offline.clock = clock
    # speakers' logins looked up afresh on every request: re-pairing takes effect at once
    access = AudioAccess(
        keys=KeyRing.open(data), speakers=provisioning.BrokerUserCache(db, ttl_s=0.0)
    )
    app = create_app(ctx, manage_relay=False, audio_access=access, rate_limits=None)
    with serving(app) as url:
        yield Hub(url, data, db, ctx, clock, ids, tokens, user_ids)


def album(hub: Hub, name: str) -> str:
    return f"legato:album:{hub.ids[name]}"


def track(hub: Hub, name: str) -> str:
    return f"legato:track:{hub.ids[name]}"


# --- speakers' keys -----------------------------------------------------------------------


def test_a_speaker_registers_its_keys_once_per_pairing(hub: Hub) -> None:
    den = hub.speaker("den")
    assert den.register().status_code == 204
    assert den.register().status_code == 204  # the same keys again: fine

    impostor = Speaker("den", den.secret, hub.url)  # other keys, same login
    r = impostor.register()
    assert r.status_code == 409
    message = r.json()["error"]["message"]
    assert "already registered other keys" in message
    assert "`legato-hub device add den`" in message

    # re-pairing (legato-hub device add den, again) lets the new install register
    fresh = Speaker("den", provisioning.add_broker_user(hub.db, "den", "speaker"), hub.url)
    assert fresh.register().status_code == 204
    assert impostor.register().status_code == 401  # the old secret is gone too


@pytest.mark.parametrize(
    "body",
    [
        {"x25519": "short", "ed25519": "short"},
        {"x25519": lic.b64(bytes(33)), "ed25519": lic.b64(bytes(32))},
        {"x25519": base64.b64encode(bytes(32)).decode(), "ed25519": lic.b64(bytes(32))},  # pad
        {"x25519": lic.b64(bytes(32))},
        {"x25519": lic.b64(bytes(32)), "ed25519": lic.b64(bytes(32)), "extra": 1},
    ],
)
def test_malformed_keys_are_a_400(hub: Hub, body: dict[str, Any]) -> None:
    r = hub.speaker("den").register(body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["status"] == 400


def test_a_speaker_speaks_only_for_itself(hub: Hub) -> None:
    den = hub.speaker("den")
    hub.speaker("attic")
    r = den.register(path_id="attic")
    assert r.status_code == 403
    assert "only register keys and sync for itself" in r.json()["error"]["message"]
    listener = httpx.put(
        f"{hub.url}/v1/devices/den/keys", json=den.keys_body(), headers=hub.bearer("ann")
    )
    assert listener.status_code == 401  # a listener's token is no speaker login
    wrong = Speaker("den", "not-the-secret", hub.url)
    assert wrong.register().status_code == 401


# --- signed syncs and licences ------------------------------------------------------------


def test_a_sync_must_be_signed_by_the_registered_key_and_fresh(hub: Hub) -> None:
    den = hub.speaker("den")
    r = den.sync(hub.clock())
    assert r.status_code == 409  # no keys yet
    assert "no offline keys registered" in r.json()["error"]["message"]
    assert den.register().status_code == 204
    assert den.sync(hub.clock(), signer=Ed25519PrivateKey.generate()).status_code == 401
    assert den.sync(hub.clock(), signature="").status_code == 401
    assert den.sync(hub.clock(), signature="!!not base64!!").status_code == 401
    stale = den.sync(hub.clock() - 11 * 60_000)
    assert stale.status_code == 400
    assert "10 minutes" in stale.json()["error"]["message"]
    assert den.sync(hub.clock() + 11 * 60_000).status_code == 400
    ok = den.sync(hub.clock() - 9 * 60_000)
    assert ok.status_code == 200, ok.text
    assert ok.json() == {
        "hub_key": ok.json()["hub_key"],
        "now_ms": hub.clock(),
        "licences": [],
        "revoked": [],
        "tracks": [],
        "request_sha256": ok.json()["request_sha256"],
    }
    # the answer is the hub's, signed by its licence key over the very bytes sent
    hub_key = Ed25519PublicKey.from_public_bytes(lic.unb64(ok.json()["hub_key"]))
    hub_key.verify(lic.unb64(ok.headers["legato-signature"]), ok.content)
    assert len(ok.json()["request_sha256"]) == 64


def test_licences_verify_unwrap_renew_with_the_same_kek_and_change_after_revoke(hub: Hub) -> None:
    den = hub.ready_speaker("den")
    assert hub.put("ann", "den", track(hub, "Crème")).status_code == 202
    first = den.sync(hub.clock()).json()
    (doc,) = first["licences"]
    licence, kek = den.kek(doc, first["hub_key"])
    assert (licence.device_id, licence.account) == ("den", str(hub.user_ids["ann"]))
    assert licence.expires_ms == hub.clock() + 30 * DAY_MS
    assert licence.max_tracks == 10_000
    lic.check(
        licence,
        device_id="den",
        device_x25519=lic.raw_public(den.x25519.public_key()),
        now_ms=hub.clock(),
        latest_seen_ms=hub.clock(),
    )

    hub.clock.ms += 19 * DAY_MS  # 11 days left: the same licence, byte for byte
    assert den.sync(hub.clock()).json()["licences"] == [doc]

    hub.clock.ms += 2 * DAY_MS  # 9 days left: renewed, 30 days from now, same KEK
    renewed_doc = den.sync(hub.clock()).json()["licences"][0]
    renewed, renewed_kek = den.kek(renewed_doc, first["hub_key"])
    assert renewed.licence_id != licence.licence_id
    assert renewed.expires_ms == hub.clock() + 30 * DAY_MS
    assert renewed_kek == kek

    r = hub.delete("ann", "/v1/devices/den/licence")
    assert r.status_code == 204, r.text
    after = den.sync(hub.clock()).json()
    assert after["revoked"] == [str(hub.user_ids["ann"])]
    assert after["licences"] == after["tracks"] == []
    shown = hub.get("ann", "den")
    assert shown["items"] == []
    assert shown["licence"]["revoked"] is True
    assert hub.delete("ann", "/v1/devices/den/licence").status_code == 404

    assert hub.put("ann", "den", track(hub, "Crème")).status_code == 202
    again = den.sync(hub.clock()).json()
    assert again["revoked"] == []
    _, new_kek = den.kek(again["licences"][0], again["hub_key"])
    assert new_kek != kek


def test_a_licence_is_sealed_to_the_speaker_and_no_other(hub: Hub) -> None:
    den = hub.ready_speaker("den")
    hub.put("ann", "den", track(hub, "Crème"))
    got = den.sync(hub.clock()).json()
    thief = Speaker("den", den.secret, hub.url)  # same id, other private key
    with pytest.raises(lic.WrongDeviceError):
        thief.kek(got["licences"][0], got["hub_key"])
    other_hub_key = lic.b64(lic.raw_public(Ed25519PrivateKey.generate().public_key()))
    with pytest.raises(lic.ForgedLicenceError):
        den.kek(got["licences"][0], other_hub_key)


def test_each_account_gets_its_own_licence_and_kek(hub: Hub) -> None:
    den = hub.ready_speaker("den")
    hub.put("ann", "den", track(hub, "Crème"))
    hub.put("bob", "den", track(hub, "Crème"))
    got = den.sync(hub.clock()).json()
    opened = [den.kek(doc, got["hub_key"]) for doc in got["licences"]]
    accounts_seen = sorted(lic_.account for lic_, _ in opened)
    assert accounts_seen == sorted(str(hub.user_ids[u]) for u in ("ann", "bob"))
    assert opened[0][1] != opened[1][1]
    assert {t["account"] for t in got["tracks"]} == set(accounts_seen)
    assert hub.get("bob", "den")["items"][0]["uri"] == track(hub, "Crème")
    assert len(hub.get("ann", "den")["items"]) == 1  # each sees their own only


# --- what a speaker should hold ---------------------------------------------------------


def test_albums_and_playlists_are_expanded_at_sync_time(hub: Hub) -> None:
    den = hub.ready_speaker("den")
    ann = hub.user_ids["ann"]
    with hub.db.transaction() as conn:
        pid = library.create_playlist(conn, ann, "Road trip", public=False, now_ms=1)
        p = library.get_playlist(conn, pid, ann)
        library.add_items(
            conn,
            p,
            [hub.ids["Déjà Vu"], hub.ids["Harbour Wall"]],
            position=None,
            user_id=ann,
            now_ms=2,
        )
    requested = hub.clock()
    r = hub.put("ann", "den", album(hub, "Copper Skies"), f"spotify:playlist:{pid}")
    assert r.status_code == 202, r.text
    assert [(i["uri"], i["name"], i["state"], i["tracks"]) for i in r.json()["items"]] == [
        (album(hub, "Copper Skies"), "Copper Skies", "queued", 3),
        (f"legato:playlist:{pid}", "Road trip", "queued", 2),
    ]
    tracks = den.sync(hub.clock()).json()["tracks"]
    by_item: dict[str, list[dict[str, Any]]] = {}
    for t in tracks:
        by_item.setdefault(t["item_uri"], []).append(t)
    copper = by_item[album(hub, "Copper Skies")]
    assert [t["name"] for t in copper] == ["Northern Lights", "Slow Burn", "Glass River"]
    slow = copper[1]
    assert slow == {
        "track_id": hub.ids["Slow Burn"],
        "uri": track(hub, "Slow Burn"),
        "account": str(ann),
        "name": "Slow Burn",
        "artists": ["Aurora Vale", "Kito Mensah"],
        "album": "Copper Skies",
        "duration_ms": 182_000,
        "explicit_ms": requested,
        "playlist_position": None,
        "item_uri": album(hub, "Copper Skies"),
    }
    mix = by_item[f"legato:playlist:{pid}"]
    assert [(t["name"], t["playlist_position"], t["explicit_ms"]) for t in mix] == [
        ("Déjà Vu", 0, None),
        ("Harbour Wall", 1, None),
    ]

    with hub.db.transaction() as conn:  # the playlist changes: the next sync follows it
        p = library.get_playlist(conn, pid, ann)
        library.remove_items(conn, p, [(hub.ids["Déjà Vu"], None)])
        p = library.get_playlist(conn, pid, ann)
        library.add_items(conn, p, [hub.ids["Crème"]], position=0, user_id=ann, now_ms=3)
    later = den.sync(hub.clock()).json()["tracks"]
    assert [
        (t["name"], t["playlist_position"])
        for t in later
        if t["item_uri"] == f"legato:playlist:{pid}"
    ] == [("Crème", 0), ("Harbour Wall", 1)]


def test_nobody_downloads_someone_elses_private_playlist_or_unknown_things(hub: Hub) -> None:
    hub.ready_speaker("den")
    with hub.db.transaction() as conn:
        pid = library.create_playlist(conn, hub.user_ids["ann"], "Mine", public=False, now_ms=1)
    missing = f"legato:album:{base62_id('album:none')}"
    for uri in (f"legato:playlist:{pid}", missing, "legato:artist:" + hub.ids["Kito Mensah"]):
        r = hub.put("bob", "den", uri)
        assert r.status_code == 400, r.text
        assert uri.split(":")[2] in r.json()["error"]["message"]
    assert hub.put("bob", "den", "not a uri").status_code == 400
    assert hub.put("bob", "den").status_code == 400  # no uris at all
    assert hub.get("bob", "den")["items"] == []


def test_a_json_body_counts_whatever_its_content_type(hub: Hub) -> None:
    """``curl -d '{"uris": [...]}'`` sends a form type, as the README's example does."""
    hub.ready_speaker("den")
    uri = album(hub, "Copper Skies")
    form = {**hub.bearer("ann"), "Content-Type": "application/x-www-form-urlencoded"}
    url = f"{hub.url}/v1/devices/den/downloads"
    r = httpx.put(url, content=json.dumps({"uris": [uri]}), headers=form)
    assert r.status_code == 202, r.text
    assert [i["uri"] for i in hub.get("ann", "den")["items"]] == [uri]
    for bad in (b"{", b"[1]", b'{"uris": "x"}'):
        r = httpx.put(url, content=bad, headers=form)
        assert r.status_code == 400, r.text


def test_progress_reported_by_the_speaker_becomes_each_items_state(hub: Hub) -> None:
    den = hub.ready_speaker("den")
    hub.put("ann", "den", album(hub, "Copper Skies"), album(hub, "Midnight Ferry"))
    hub.put("ann", "den", album(hub, "Café Rêverie"), track(hub, "Crème"))

    def report(name: str, state: str, done: int, error: str = "") -> dict[str, Any]:
        return {
            "track_id": hub.ids[name],
            "state": state,
            "bytes_done": done,
            "bytes_total": 1000,
            "error": error,
        }

    progress = [
        report("Northern Lights", "ready", 1000),
        report("Slow Burn", "downloading", 400),
        report("Harbour Wall", "ready", 1000),
        report("Salt & Tar", "failed", 10, "the hub refused segment 3: 403"),
        report("Déjà Vu", "ready", 1000),
        report("Crème", "ready", 1000),
    ]
    assert den.sync(hub.clock(), progress).status_code == 200
    items = {i["name"]: i for i in hub.get("ann", "den")["items"]}
    copper = items["Copper Skies"]
    assert (copper["state"], copper["tracks"], copper["tracks_ready"]) == ("downloading", 3, 1)
    assert (copper["bytes_done"], copper["bytes_total"]) == (1400, 2000)
    ferry = items["Midnight Ferry"]
    assert (ferry["state"], ferry["error"]) == ("failed", "the hub refused segment 3: 403")
    assert items["Café Rêverie"]["state"] == "ready"
    assert items["Crème"]["state"] == "ready"

    hub.put("ann", "den", album(hub, "Copper Skies"))  # asked again: nothing changes
    assert len(hub.get("ann", "den")["items"]) == 4


def test_listeners_remove_some_or_all_of_their_downloads(hub: Hub) -> None:
    den = hub.ready_speaker("den")
    hub.put("ann", "den", album(hub, "Copper Skies"), track(hub, "Crème"))
    hub.put("bob", "den", track(hub, "Déjà Vu"))
    r = hub.delete("ann", "/v1/devices/den/downloads", uris=album(hub, "Copper Skies"))
    assert r.status_code == 204, r.text
    assert [i["uri"] for i in hub.get("ann", "den")["items"]] == [track(hub, "Crème")]
    assert hub.get("ann", "den")["licence"]["revoked"] is False
    assert hub.delete("ann", "/v1/devices/den/downloads").status_code == 204
    gone = hub.get("ann", "den")
    assert gone["items"] == []
    assert gone["licence"]["revoked"] is True  # nothing left there: its slot is free
    synced = den.sync(hub.clock()).json()
    assert synced["revoked"] == [str(hub.user_ids["ann"])]
    assert [t["name"] for t in synced["tracks"]] == ["Déjà Vu"]  # bob's stay
    bad = hub.delete("ann", "/v1/devices/den/downloads", uris="legato:nothing")
    assert bad.status_code == 400


# --- limits --------------------------------------------------------------------------------


def test_a_sixth_offline_speaker_is_refused_until_one_is_cleared(hub: Hub) -> None:
    names = ["Attic", "Bath", "Cellar", "Den", "Eaves"]
    for n, name in enumerate(names):
        hub.ready_speaker(f"s{n}", name)
        assert hub.put("ann", f"s{n}", track(hub, "Crème")).status_code == 202
    hub.ready_speaker("s5", "Fifth Floor")
    r = hub.put("ann", "s5", track(hub, "Crème"))
    assert r.status_code == 403
    assert r.json()["error"]["message"] == (
        "you already have offline downloads on 5 speakers (Attic, Bath, Cellar, Den, Eaves), "
        "the most per account; remove the downloads from one of them first"
    )
    assert hub.put("bob", "s5", track(hub, "Crème")).status_code == 202  # per account
    assert hub.put("ann", "s0", album(hub, "Copper Skies")).status_code == 202  # one of the 5

    assert hub.delete("ann", "/v1/devices/s1/downloads").status_code == 204
    assert hub.put("ann", "s5", track(hub, "Crème")).status_code == 202
    hub.ready_speaker("s6", "Garage")
    assert hub.put("ann", "s6", track(hub, "Crème")).status_code == 403
    hub.clock.ms += 31 * DAY_MS  # the licences expired: they hold no slot
    assert hub.put("ann", "s6", track(hub, "Crème")).status_code == 202


def test_more_than_ten_thousand_tracks_on_a_speaker_is_refused(hub: Hub) -> None:
    hub.ready_speaker("den", "Den")
    big = base62_id("album:big")
    with hub.db.transaction() as conn:
        conn.execute("INSERT INTO albums (id, name) VALUES (?, 'Everything')", (big,))
        conn.executemany(
            "INSERT INTO tracks (id, name, artist, album, album_id, track_number, duration_ms)"
            " VALUES (?, ?, 'Many', 'Everything', ?, ?, 1000)",
            [(base62_id(f"track:big:{n}"), f"Track {n}", big, n) for n in range(9_999)],
        )
    assert hub.put("ann", "den", f"legato:album:{big}").status_code == 202
    assert hub.put("bob", "den", track(hub, "Crème")).status_code == 202  # 10,000 exactly
    r = hub.put("bob", "den", track(hub, "Déjà Vu"))
    assert r.status_code == 403
    assert r.json()["error"]["message"] == (
        "speaker Den would hold 10,001 tracks offline; a speaker holds at most 10,000; "
        "remove some downloads first"
    )
    assert hub.put("bob", "den", f"legato:album:{big}").status_code == 202  # no new tracks


# --- estimate --------------------------------------------------------------------------------


def store_media(db: Database, track_id: str, sizes: dict[Quality, list[int]]) -> None:
    renditions = tuple(
        Rendition(
            quality=q.label,
            sample_rate=44_100,
            channels=2,
            bitrate=96_000,
            frames=44_100 * len(b),
            segments=tuple(Segment(frames=44_100, bytes=n) for n in b),
        )
        for q, b in sizes.items()
    )
    manifest = Manifest(
        track_id=track_id,
        uri=f"legato:track:{track_id}",
        album_id="x",
        frames=44_100 * 2,
        sample_rate=44_100,
        channels=2,
        duration_ms=2000,
        loudness=Loudness(track_lufs=-14, track_peak_dbtp=-1, album_lufs=-14, album_peak_dbtp=-1),
        boundaries=(0, 44_100, 88_200),
        renditions=renditions,
    )
    with db.transaction() as conn:
        store.save_manifest(conn, manifest, f"hash:{track_id}", "fixture", 1)


def test_the_estimate_sums_the_stored_manifests(hub: Hub) -> None:
    hub.ready_speaker("den")
    every = {q: [100, 200] for q in Quality}
    store_media(hub.db, hub.ids["Northern Lights"], every)
    store_media(hub.db, hub.ids["Slow Burn"], {Quality.LOW: [5, 5], Quality.NORMAL: [7, 8]})
    uris = f"{album(hub, 'Copper Skies')},{track(hub, 'Slow Burn')}"
    r = httpx.get(
        f"{hub.url}/v1/devices/den/downloads/estimate",
        params={"uris": uris},
        headers=hub.bearer("ann"),
    )
    assert r.status_code == 200, r.text
    assert r.json() == {
        "tracks": 3,  # Slow Burn once; Glass River has no media and counts 0 bytes
        "bytes": {"low": 310, "normal": 315, "high": 300, "very_high": 300},
        "duration_ms": 181_000 + 182_000 + 183_000,
    }
    assert hub.get("ann", "den")["items"] == []  # an estimate downloads nothing


# --- access ----------------------------------------------------------------------------------


def test_unknown_speakers_missing_keys_and_scopes(hub: Hub) -> None:
    r = hub.put("ann", "nowhere", track(hub, "Crème"))
    assert r.status_code == 404
    assert (
        httpx.get(f"{hub.url}/v1/devices/nowhere/downloads", headers=hub.bearer("ann")).status_code
        == 404
    )
    hub.speaker("den", "Den")
    r = hub.put("ann", "den", track(hub, "Crème"))
    assert r.status_code == 409
    assert r.json()["error"]["message"] == (
        "speaker Den has not registered its offline keys yet: "
        "start it once while the hub is reachable"
    )
    ann = users.authenticate(hub.db, "ann", PASSWORD)
    assert ann is not None
    reader = accounts.issue_token(hub.db, ann, scope="user-read-playback-state").access_token
    headers = {"Authorization": f"Bearer {reader}"}
    assert httpx.get(f"{hub.url}/v1/devices/den/downloads", headers=headers).status_code == 200
    put = httpx.put(
        f"{hub.url}/v1/devices/den/downloads", json={"uris": [track(hub, "Crème")]}, headers=headers
    )
    assert put.status_code == 403
    assert httpx.get(f"{hub.url}/v1/devices/den/downloads").status_code == 401


def test_admins_list_licences_and_revoke_anyones(hub: Hub) -> None:
    hub.ready_speaker("den", "Den")
    hub.put("ann", "den", track(hub, "Crème"))
    assert httpx.get(f"{hub.url}/v1/licences", headers=hub.bearer("ann")).status_code == 403
    r = httpx.get(f"{hub.url}/v1/licences", headers=hub.bearer("root"))
    assert r.status_code == 200, r.text
    (row,) = r.json()["licences"]
    assert (row["device_id"], row["device_name"], row["user"]) == ("den", "Den", "ann")
    assert (row["revoked"], row["current"], row["epoch"]) == (False, True, 0)
    assert row["expires"] == lic.day(row["expires_ms"])

    assert hub.delete("bob", "/v1/devices/den/licence", user="ann").status_code == 403
    assert hub.delete("root", "/v1/devices/den/licence", user="nobody").status_code == 404
    assert hub.delete("root", "/v1/devices/den/licence", user="ann").status_code == 204
    (row,) = httpx.get(f"{hub.url}/v1/licences", headers=hub.bearer("root")).json()["licences"]
    assert row["revoked"] is True


def test_downloads_are_connect_commands_too(hub: Hub) -> None:
    hub.ready_speaker("den")
    ws_url = hub.url.replace("http", "ws") + f"/v1/connect/ws?access_token={hub.tokens['ann']}"
    with connect(ws_url) as ws:

        def command(request_id: int, action: str, **params: Any) -> dict[str, Any]:
            ws.send(
                json.dumps(
                    {"type": "command", "request_id": request_id, "action": action, **params}
                )
            )
            while True:
                message: dict[str, Any] = json.loads(ws.recv(timeout=10))
                if message["type"] == "result" and message["request_id"] == request_id:
                    return message

        uris = [album(hub, "Copper Skies"), track(hub, "Crème")]
        assert command(1, "download", device_id="den", uris=uris)["ok"] is True
        assert len(hub.get("ann", "den")["items"]) == 2
        assert command(2, "remove_download", device_id="den", uris=uris[:1])["ok"] is True
        assert [i["uri"] for i in hub.get("ann", "den")["items"]] == uris[1:]
        refused = command(3, "download", device_id="nowhere", uris=uris)
        assert (refused["ok"], refused["error"]["status"]) == (False, 404)
        assert command(4, "download", device_id="den")["error"]["status"] == 400
        assert command(5, "remove_download", device_id="den")["ok"] is True
    assert hub.get("ann", "den")["items"] == []


def test_the_cli_lists_and_revokes_licences(hub: Hub, capsys: pytest.CaptureFixture[str]) -> None:
    den = hub.ready_speaker("den")
    hub.put("ann", "den", track(hub, "Crème"))
    assert cli.main(["licences", "list", "--data", str(hub.data)]) == 0
    out = capsys.readouterr().out
    (row,) = out.splitlines()[1:]
    assert row.split()[:2] == ["den", "ann"]
    assert row.split()[-2:-1] == ["live"]
    assert cli.main(["licences", "revoke", "den", "ann", "--data", str(hub.data)]) == 0
    assert "revoked ann's offline licence on den" in capsys.readouterr().out
    assert cli.main(["licences", "revoke", "den", "ann", "--data", str(hub.data)]) == 2
    assert "no live offline licence" in capsys.readouterr().err
    assert den.sync(hub.clock()).json()["revoked"] == [str(hub.user_ids["ann"])]


def test_licence_keys_are_private_files_made_once(hub: Hub) -> None:
    den = hub.ready_speaker("den")
    hub.put("ann", "den", track(hub, "Crème"))
    keys = hub.data / "keys"
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700
    for name in ("licence-signing.key", "licence-kek.secret"):
        assert stat.S_IMODE((keys / name).stat().st_mode) == 0o600
    assert len((keys / "licence-kek.secret").read_bytes()) == 32
    assert (keys / "licence-signing.key").read_bytes().startswith(b"-----BEGIN PRIVATE KEY")
    hub_key = den.sync(hub.clock()).json()["hub_key"]
    from hub.offline.licences import LicenceKeys

    assert lic.b64(LicenceKeys.open(hub.data).public_raw()) == hub_key  # read, not remade


# --- the rules, pure -----------------------------------------------------------------------


held = st.builds(
    HeldLicence,
    epoch=st.integers(0, 1000),
    expires_ms=st.integers(0, 10**13),
    revoked_ms=st.none() | st.integers(0, 10**13),
    device_x25519=st.sampled_from(["key-a", "key-b"]),
)


@given(latest=st.none() | held)
def test_the_epoch_moves_on_only_after_a_revocation(latest: HeldLicence | None) -> None:
    epoch = licence_rules.next_epoch(latest)
    if latest is None:
        assert epoch == 0
    else:
        assert epoch == latest.epoch + (latest.revoked_ms is not None)


@given(latest=st.none() | held, now=st.integers(0, 10**13))
def test_a_licence_is_reissued_exactly_when_it_cannot_serve_ten_more_days(
    latest: HeldLicence | None, now: int
) -> None:
    reissue = licence_rules.needs_new_licence(latest, device_x25519="key-a", now_ms=now)
    usable = (
        latest is not None
        and latest.revoked_ms is None
        and latest.device_x25519 == "key-a"
        and latest.expires_ms > now + 10 * DAY_MS
    )
    assert reissue is not usable


@given(others=st.lists(st.text(min_size=1, max_size=8), max_size=8))
def test_the_sixth_device_is_refused(others: list[str]) -> None:
    refusal = licence_rules.device_limit_refusal(others)
    assert (refusal is None) is (len(others) < 5)
    if refusal is not None:
        assert all(name in refusal for name in others)


@given(tracks=st.integers(0, 20_000))
def test_ten_thousand_tracks_fit_and_one_more_does_not(tracks: int) -> None:
    refusal = licence_rules.track_limit_refusal("Den", tracks)
    assert (refusal is None) is (tracks <= 10_000)
    if refusal is not None:
        assert f"{tracks:,} tracks" in refusal


@given(ts=st.integers(0, 10**13), now=st.integers(0, 10**13))
def test_a_sync_is_fresh_within_ten_minutes(ts: int, now: int) -> None:
    assert (licence_rules.clock_refusal(ts, now) is None) is (abs(ts - now) <= 600_000)


progress = st.none() | st.builds(
    TrackProgress,
    state=st.sampled_from([ItemState.DOWNLOADING, ItemState.READY, ItemState.FAILED]),
    bytes_done=st.integers(0, 10**6),
    bytes_total=st.integers(0, 10**6),
    error=st.text(max_size=5),
)


@given(tracks=st.lists(progress, max_size=8))
def test_an_items_state_folds_its_tracks(tracks: list[TrackProgress | None]) -> None:
    item = licence_rules.item_progress(tracks)
    reported = [t for t in tracks if t is not None]
    states = [t.state for t in reported]
    assert item.tracks == len(tracks)
    assert item.tracks_ready == states.count(ItemState.READY)
    assert item.bytes_done == sum(t.bytes_done for t in reported)
    if ItemState.FAILED in states:
        first = next(t for t in reported if t.state is ItemState.FAILED)
        assert (item.state, item.error) == (ItemState.FAILED, first.error or "failed")
    elif item.tracks_ready == len(tracks):
        assert item.state is ItemState.READY
    elif reported:
        assert item.state is ItemState.DOWNLOADING
    else:
        assert item.state is ItemState.QUEUED
