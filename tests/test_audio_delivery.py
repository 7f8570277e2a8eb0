"""Signed audio delivery on a real server: manifests, segment URLs, keys and rotation.

The app runs under uvicorn on loopback and is driven with httpx; stored media is
made here (catalog row, manifest, real Ogg Vorbis files) so these tests do not
depend on the ingest pipeline.  Time is a ``FakeClock`` handed to the key ring.
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import logging
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import numpy as np
import pytest
import soundfile as sf
from fastapi import FastAPI

from connect_protocol import codec
from connect_protocol.media import Loudness, Manifest, Quality, Rendition, Segment
from hub.accounts import tokens as accounts
from hub.accounts import users
from hub.catalog.resolve import base62_id
from hub.clock import now_ms
from hub.db import Database
from hub.fleet import provisioning
from hub.http.app import create_app
from hub.http.routes.audio import AudioAccess
from hub.media import signing, store
from hub.media.signing import Key, KeyRing, Verdict
from hub.server import Hub, ServeOptions, open_database
from tests.brokers import free_port
from tests.serving import offline_context, serving
from tests.system import child_env

pytestmark = pytest.mark.integration

TTL_S = signing.URL_TTL_S
SOURCE_RATE = 16_000
SEGMENT_FRAMES = 8_000  # half a second: tiny, but several Ogg pages
URL = re.compile(
    r"^/audio/(?P<id>[0-9A-Za-z]{22})/(?P<q>[a-z_]+)/(?P<n>[0-9]+)\.ogg"
    r"\?exp=(?P<exp>[0-9]+)&kid=(?P<kid>[0-9]+-[0-9a-f]{6})&sig=(?P<sig>[A-Za-z0-9_-]{43})$"
)


class FakeClock:
    """Wall-clock milliseconds that move only when a test says so."""

    def __init__(self) -> None:
        self.ms = now_ms()

    def __call__(self) -> int:
        return self.ms


@dataclass
class Track:
    id: str
    manifest: Manifest
    files: dict[tuple[str, int], Path]


def make_track(db: Database, data: Path, seed: str, segments: int = 2) -> Track:
    """A playable track without ingest: catalog row, stored manifest, real Ogg segments."""
    track_id = base62_id(f"track:{seed}")
    files: dict[tuple[str, int], Path] = {}
    renditions = []
    for quality in (Quality.LOW, Quality.NORMAL):
        rate = SOURCE_RATE // 2 if quality is Quality.LOW else SOURCE_RATE
        channels = 1 if quality is Quality.LOW else 2
        frames = SEGMENT_FRAMES * rate // SOURCE_RATE
        segs = []
        for n in range(segments):
            t = np.arange(frames) / rate
            tone = (0.3 * np.sin(2 * np.pi * (220 + 110 * n) * t)).astype(np.float32)
            path = store.segment_path(data, track_id, quality, n)
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, np.tile(tone[:, None], (1, channels)), rate, "VORBIS", format="OGG")
            files[(quality.label, n)] = path
            segs.append(Segment(frames=frames, bytes=path.stat().st_size))
        renditions.append(
            Rendition(
                quality=quality.label,
                sample_rate=rate,
                channels=channels,
                bitrate=64_000,
                frames=frames * segments,
                segments=tuple(segs),
            )
        )
    total = SEGMENT_FRAMES * segments
    manifest = Manifest(
        track_id=track_id,
        uri=f"legato:track:{track_id}",
        album_id=base62_id(f"album:{seed}"),
        frames=total,
        sample_rate=SOURCE_RATE,
        channels=2,
        duration_ms=total * 1000 // SOURCE_RATE,
        loudness=Loudness(
            track_lufs=-14.0, track_peak_dbtp=-1.0, album_lufs=-14.0, album_peak_dbtp=-1.0
        ),
        boundaries=tuple(range(0, total + 1, SEGMENT_FRAMES)),
        renditions=tuple(renditions),
    )
    with db.transaction() as conn:
        conn.execute(
            "INSERT INTO tracks (id, name, artist, album, album_id, track_number, duration_ms)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (track_id, seed, "Fixture", "Fixtures", manifest.album_id, 1, manifest.duration_ms),
        )
        store.save_manifest(conn, manifest, f"hash:{seed}", "fixture", now_ms())
    return Track(track_id, manifest, files)


@dataclass
class Stage:
    url: str
    data: Path
    db: Database
    keys: KeyRing
    clock: FakeClock
    track: Track
    token: str
    speaker: tuple[str, str]
    observer: tuple[str, str]
    app: FastAPI

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10)

    def manifest(self, auth: dict[str, str] | None = None) -> Manifest:
        with self.client() as c:
            r = c.get(f"/v1/audio/{self.track.id}/manifest", headers=auth or self.bearer)
        assert r.status_code == 200, r.text
        manifest = codec.decode(Manifest, r.content)
        assert isinstance(manifest, Manifest), manifest
        return manifest

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def url_of(self, quality: str = "low", n: int = 0) -> str:
        return self.manifest().rendition(Quality.parse(quality)).segments[n].url


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture
def stage(tmp_path: Path) -> Iterator[Stage]:
    data = tmp_path / "hub-data"
    db = open_database(data)
    user = users.add_user(db, "ada", "long enough password")
    token = accounts.issue_token(db, user).access_token
    speaker = ("den", provisioning.add_broker_user(db, "den", "speaker"))
    observer = ("probe", provisioning.add_broker_user(db, "probe", "observer"))
    track = make_track(db, data, "first")
    clock = FakeClock()
    keys = KeyRing.open(data, clock=clock, refresh_interval_s=0.0)
    ctx = offline_context(db, data)
    access = AudioAccess(keys=keys, speakers=provisioning.BrokerUserCache(db))
    app = create_app(ctx, manage_relay=False, audio_access=access)
    with serving(app) as url:
        yield Stage(url, data, db, keys, clock, track, token, speaker, observer, app)


# --- the manifest ---------------------------------------------------------------------


def test_a_listener_gets_the_manifest_with_every_segment_signed(stage: Stage) -> None:
    with stage.client() as c:
        r = c.get(f"/v1/audio/{stage.track.id}/manifest", headers=stage.bearer)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "private, no-store"
    assert r.headers["content-type"] == "application/json"
    assert r.json()["type"] == "manifest"
    got = codec.decode(Manifest, r.content)
    assert isinstance(got, Manifest)
    stored = stage.track.manifest
    exp_s = (stage.clock.ms + TTL_S * 1000) // 1000
    assert got.expires_ms == exp_s * 1000
    kid = stage.keys.kids[-1]
    for rendition, kept in zip(got.renditions, stored.renditions, strict=True):
        assert len(rendition.segments) == len(kept.segments)
        for n, (seg, plain) in enumerate(zip(rendition.segments, kept.segments, strict=True)):
            assert (seg.frames, seg.bytes) == (plain.frames, plain.bytes)
            m = URL.match(seg.url)
            assert m, seg.url
            assert (m["id"], m["q"], int(m["n"])) == (stored.track_id, rendition.quality, n)
            assert (int(m["exp"]), m["kid"]) == (exp_s, kid)
    assert got.frames == stored.frames
    assert got.boundaries == stored.boundaries


def test_a_speaker_gets_the_manifest_with_its_broker_login(stage: Stage) -> None:
    got = stage.manifest(basic(*stage.speaker))
    assert URL.match(got.renditions[0].segments[0].url)
    again = stage.manifest(basic(*stage.speaker))  # cached lookup, same answer
    assert again.renditions[0].segments[0].url == got.renditions[0].segments[0].url


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Bearer not-a-token"}, 401),
        (basic("den", "wrong-secret"), 401),
        (basic("nobody", "whatever-secret"), 401),
        (basic("../den", "whatever-secret"), 401),
        ({"Authorization": "Basic !!!not-base64"}, 401),
        ({"Authorization": "Basic " + base64.b64encode(b"den-no-colon").decode()}, 401),
        ("observer", 403),
    ],
)
def test_the_manifest_needs_a_listener_or_a_speaker(
    stage: Stage, headers: dict[str, str] | str, status: int
) -> None:
    if headers == "observer":
        headers = basic(*stage.observer)
    assert isinstance(headers, dict)
    with stage.client() as c:
        r = c.get(f"/v1/audio/{stage.track.id}/manifest", headers=headers)
    assert r.status_code == status, r.text
    assert r.json()["error"]["status"] == status
    assert "segments" not in r.text


@pytest.mark.parametrize("track_id", [base62_id("track:never-ingested"), "short", "x" * 23])
def test_an_unknown_track_has_no_manifest(stage: Stage, track_id: str) -> None:
    with stage.client() as c:
        r = c.get(f"/v1/audio/{track_id}/manifest", headers=stage.bearer)
    assert r.status_code == 404
    assert r.json() == {"error": {"status": 404, "message": "Track not found"}}


# --- signed segments ------------------------------------------------------------------


def test_a_signed_url_serves_the_stored_file_byte_for_byte(stage: Stage) -> None:
    manifest = stage.manifest()
    with stage.client() as c:
        for rendition in manifest.renditions:
            for n, seg in enumerate(rendition.segments):
                r = c.get(seg.url)  # no Authorization: the signature is the capability
                assert r.status_code == 200, r.text
                assert r.content == stage.track.files[(rendition.quality, n)].read_bytes()
                assert len(r.content) == seg.bytes == int(r.headers["content-length"])
                assert r.headers["content-type"] == "audio/ogg"
                assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
                assert r.headers["accept-ranges"] == "bytes"
                assert re.fullmatch(r'"[0-9a-f]{32}"', r.headers["etag"])  # strong
    data, rate = sf.read(stage.track.files[("low", 0)])
    assert (len(data), rate) == (SEGMENT_FRAMES // 2, SOURCE_RATE // 2)


def _tampered(url: str, other_kid: str) -> dict[str, str]:
    m = URL.match(url)
    assert m
    path, _query = url.split("?")
    sig = m["sig"]
    flipped = ("A" if sig[5] != "A" else "B").join([sig[:5], sig[6:]])
    other_id = base62_id("track:second")
    return {
        "other segment": url.replace("/0.ogg?", "/1.ogg?"),
        "other quality": url.replace("/low/", "/normal/"),
        "other track": url.replace(m["id"], other_id),
        "later expiry": url.replace(f"exp={m['exp']}", f"exp={int(m['exp']) + 1}"),
        "earlier expiry": url.replace(f"exp={m['exp']}", f"exp={int(m['exp']) - 1}"),
        "other kid": url.replace(f"kid={m['kid']}", f"kid={other_kid}"),
        "flipped sig": url.replace(sig, flipped),
        "truncated sig": url.replace(sig, sig[:-1]),
        "padded sig": url.replace(sig, sig + "="),
        "no sig": f"{path}?exp={m['exp']}&kid={m['kid']}",
        "no exp": f"{path}?kid={m['kid']}&sig={sig}",
        "no kid": f"{path}?exp={m['exp']}&sig={sig}",
        "no query": path,
        "two sigs": f"{url}&sig={flipped}",
        "plus exp": url.replace(f"exp={m['exp']}", f"exp=+{m['exp']}"),
        "zero-padded exp": url.replace(f"exp={m['exp']}", f"exp=0{m['exp']}"),
        "longer kid": url.replace(f"kid={m['kid']}", f"kid={m['kid']}0"),
    }


def test_every_tampered_url_is_refused(stage: Stage) -> None:
    make_track(stage.db, stage.data, "second")
    url = stage.url_of("low", 0)
    # A second, valid key: a signature made with one key must not pass as the other's.
    signing.rotate(stage.data, now_ms=stage.clock.ms)
    other_kid = stage.keys.kids[-1]
    assert other_kid not in url
    with stage.client() as c:
        assert c.get(url).status_code == 200
        for what, bad in _tampered(url, other_kid).items():
            r = c.get(bad)
            assert r.status_code == 403, (what, r.status_code, r.text)
            assert r.json()["error"]["status"] == 403
            assert "audio/ogg" not in r.headers["content-type"]


def test_an_expired_url_is_refused(stage: Stage) -> None:
    url = stage.url_of()
    exp_ms = int(parse_qs(urlsplit(url).query)["exp"][0]) * 1000
    with stage.client() as c:
        stage.clock.ms = exp_ms - 1
        assert c.get(url).status_code == 200
        stage.clock.ms = exp_ms
        r = c.get(url)
    assert r.status_code == 403
    assert r.json()["error"]["message"] == Verdict.EXPIRED.value


def test_an_unknown_kid_is_refused(stage: Stage) -> None:
    url = stage.url_of()
    kid = parse_qs(urlsplit(url).query)["kid"][0]
    path = urlsplit(url).path
    exp = (stage.clock.ms // 1000) + 60
    forged = Key("1700000000-abcdef", b"k" * 32)  # well-formed, never in the ring
    with stage.client() as c:
        signed_by_stranger = signing.UrlSigner(forged, exp).url(path)
        r = c.get(signed_by_stranger)
        assert r.status_code == 403
        assert r.json()["error"]["message"] == Verdict.UNKNOWN_KEY.value
        assert c.get(url.replace(kid, "not-a-kid")).status_code == 403


def test_a_retired_key_verifies_until_its_retention_ends(stage: Stage) -> None:
    old = stage.keys.signer().key
    path = signing.segment_url_path(stage.track.id, Quality.LOW, 0)
    url = signing.UrlSigner(old, stage.clock.ms // 1000 + 100 * TTL_S).url(path)  # long-lived
    signing.rotate(stage.data, now_ms=stage.clock.ms)
    with stage.client() as c:
        assert c.get(url).status_code == 200  # retired just now: within retention
        stage.clock.ms += stage.keys.retention_s * 1000 + 2000
        r = c.get(url)
    assert r.status_code == 403
    assert r.json()["error"]["message"] == Verdict.UNKNOWN_KEY.value
    assert stage.keys.kids == [stage.keys.signer().key.kid]


# --- not found, and never outside the store ------------------------------------------


def test_signed_urls_for_missing_media_are_404(stage: Stage) -> None:
    signer = stage.keys.signer()
    ghost = base62_id("track:ghost")
    paths = [
        signing.segment_url_path(ghost, Quality.LOW, 0),  # unknown track
        signing.segment_url_path(stage.track.id, Quality.HIGH, 0),  # quality not ingested
        signing.segment_url_path(stage.track.id, Quality.LOW, 2),  # past the last segment
        signing.segment_url_path(stage.track.id, Quality.LOW, 999_999),
    ]
    with stage.client() as c:
        for path in paths:
            r = c.get(signer.url(path))
            assert r.status_code == 404, (path, r.text)
            assert r.json() == {"error": {"status": 404, "message": "Segment not found"}}


def raw_get(url: str, target: str) -> tuple[int, bytes]:
    """Send ``target`` exactly as written (httpx would normalise dot segments)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        conn.request("GET", target)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_path_tricks_are_404_and_read_nothing_outside_the_store(stage: Stage) -> None:
    secret_file = stage.data / "hub.db"
    tid = stage.track.id
    query = urlsplit(stage.url_of()).query
    targets = [
        "/audio/../hub.db",
        "/audio/../../hub.db",
        f"/audio/{tid}/low/../../../../hub.db",
        f"/audio/{tid}/low/..%2F..%2F..%2F..%2Fhub.db",
        f"/audio/{tid}%2Flow/0.ogg",
        f"/audio/{tid}/low%2F..%2Flow/0.ogg",
        "/audio/%2e%2e/low/0.ogg",
        f"/audio/{tid}/%2e%2e/0.ogg",
        f"/audio/{tid[:-1]}!/low/0.ogg",
        f"/audio/{tid}x/low/0.ogg",
        f"/audio/{tid}/LOW/0.ogg",
        f"/audio/{tid}/ultra/0.ogg",
        f"/audio/{tid}/low/00.ogg",
        f"/audio/{tid}/low/+1.ogg",
        f"/audio/{tid}/low/-1.ogg",
        f"/audio/{tid}/low/1.0.ogg",
        f"/audio/{tid}/low/%31.ogg",
        f"/audio/{tid}/low/%D9%A1.ogg",  # an Arabic-Indic digit one
        f"/audio/{tid}/low/0.ogg%0A",
        f"/audio/{tid}%0A/low/0.ogg",
        f"/audio/{tid}/low/0.mp3",
        f"/audio/{tid}/low/0.ogg%00",
        f"/audio/{tid}/low/0",
    ]
    for target in targets:
        for suffix in ("", f"?{query}"):
            status, body = raw_get(stage.url, target + suffix)
            assert status == 404, (target, suffix, status, body)
            assert b"SQLite" not in body
            assert secret_file.read_bytes()[:16] not in body


# --- HTTP semantics: ranges, validators, HEAD -----------------------------------------


def test_range_requests(stage: Stage) -> None:
    url = stage.url_of("normal", 1)
    whole = stage.track.files[("normal", 1)].read_bytes()
    size = len(whole)
    with stage.client() as c:
        r = c.get(url, headers={"Range": "bytes=0-9"})
        assert r.status_code == 206
        assert r.headers["content-range"] == f"bytes 0-9/{size}"
        assert r.content == whole[:10]
        r = c.get(url, headers={"Range": "bytes=100-"})
        assert (r.status_code, r.content) == (206, whole[100:])
        assert r.headers["content-range"] == f"bytes 100-{size - 1}/{size}"
        r = c.get(url, headers={"Range": "bytes=-20"})
        assert (r.status_code, r.content) == (206, whole[-20:])
        assert r.headers["content-range"] == f"bytes {size - 20}-{size - 1}/{size}"
        r = c.get(url, headers={"Range": f"bytes=10-{size + 1000}"})  # clamped to the end
        assert (r.status_code, r.content) == (206, whole[10:])
        r = c.get(url, headers={"Range": f"bytes={size}-"})
        assert r.status_code == 416
        assert r.headers["content-range"] == f"bytes */{size}"
        etag = c.get(url).headers["etag"]
        r = c.get(url, headers={"Range": "bytes=0-9", "If-Range": etag})
        assert r.status_code == 206
        r = c.get(url, headers={"Range": "bytes=0-9", "If-Range": '"stale"'})
        assert (r.status_code, r.content) == (200, whole)


def test_etag_revalidation(stage: Stage) -> None:
    url = stage.url_of()
    with stage.client() as c:
        first = c.get(url)
        etag = first.headers["etag"]
        assert c.get(stage.url_of("low", 1)).headers["etag"] != etag
        for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
            r = c.get(url, headers={"If-None-Match": header})
            assert r.status_code == 304, header
            assert r.content == b""
            assert r.headers["etag"] == etag
            assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert c.get(url, headers={"If-None-Match": '"other"'}).status_code == 200
        assert c.head(url, headers={"If-None-Match": etag}).status_code == 304


def test_head(stage: Stage) -> None:
    url = stage.url_of()
    size = stage.track.files[("low", 0)].stat().st_size
    with stage.client() as c:
        r = c.head(url)
        assert r.status_code == 200
        assert r.content == b""
        assert int(r.headers["content-length"]) == size
        assert r.headers["content-type"] == "audio/ogg"
        assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
        r = c.head(url, headers={"Range": "bytes=0-9"})
        assert (r.status_code, r.headers["content-range"]) == (206, f"bytes 0-9/{size}")
        assert c.head(url.replace("sig=", "sig=x")).status_code == 403


# --- keys -----------------------------------------------------------------------------


def test_key_files_are_private(stage: Stage) -> None:
    keys = stage.data / "keys"
    assert keys.stat().st_mode & 0o777 == 0o700
    assert (keys / "audio").stat().st_mode & 0o777 == 0o700
    files = list((keys / "audio").glob("*.key"))
    assert [f.stem for f in files] == stage.keys.kids
    for f in files:
        assert f.stat().st_mode & 0o777 == 0o600
        assert len(base64.urlsafe_b64decode(f.read_text().strip() + "=")) == 32


def test_retention_is_counted_from_the_successor() -> None:
    a, b, c = (
        Key("1000-aaaaaa", b"a" * 32),
        Key("5000-bbbbbb", b"b" * 32),
        Key("9000-cccccc", b"c" * 32),
    )
    keep = [k.kid for k in signing.usable_keys([c, a, b], 9100, 100)]
    assert keep == [c.kid]  # a and b were replaced long enough ago
    keep = [k.kid for k in signing.usable_keys([c, a, b], 9000, 100)]
    assert keep == [b.kid, c.kid]  # b retired only now
    keep = [k.kid for k in signing.usable_keys([c, a, b], 9100, 4100)]
    assert keep == [b.kid, c.kid]  # a retired at 5000, b at 9000
    keep = [k.kid for k in signing.usable_keys([c, a, b], 9000, 4001)]
    assert keep == [a.kid, b.kid, c.kid]


def test_rotate_prunes_keys_retired_longer_than_the_retention(tmp_path: Path) -> None:
    t0 = 1_800_000_000_000
    first = signing.rotate(tmp_path, now_ms=t0)
    second = signing.rotate(tmp_path, now_ms=t0)  # same second: still newer
    assert second.new > first.new
    assert second.pruned == ()
    retention = signing.URL_TTL_S + signing.MARGIN_S
    third = signing.rotate(tmp_path, now_ms=t0 + retention * 1000 - 1000)
    assert third.pruned == ()  # `second` has been retired for no time at all
    fourth = signing.rotate(tmp_path, now_ms=t0 + retention * 1000 + 2000)
    assert fourth.pruned == (first.new,)  # retired when `second` was made, at t0 + 1 s
    fifth = signing.rotate(tmp_path, now_ms=t0 + 2 * retention * 1000 + 10_000)
    assert fifth.pruned == (second.new, third.new)
    kids = sorted(p.stem for p in (tmp_path / "keys" / "audio").glob("*.key"))
    assert kids == [fourth.new, fifth.new]


def test_secrets_never_reach_the_logs(stage: Stage, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    url = stage.url_of()
    signing.rotate(stage.data, now_ms=stage.clock.ms)
    (stage.data / "keys" / "audio" / "1-000000.key").write_text("not a key\n")
    with stage.client() as c:
        c.get(url)
        c.get(url.replace("kid=", "kid=1"))
        c.get(stage.url_of())
    stage.keys.refresh(force=True)
    secrets = [k.secret for k in signing.read_keys(stage.data / "keys" / "audio")]
    assert len(secrets) == 2
    assert "audio signing key" in caplog.text  # it did log, just not the secrets
    for secret in secrets:
        for form in (
            base64.urlsafe_b64encode(secret).rstrip(b"=").decode(),
            base64.b64encode(secret).decode(),
            secret.hex(),
            repr(secret),
        ):
            assert form not in caplog.text
    assert "secret" not in repr(Key("1-abcdef", b"s" * 32))


# --- the whole hub: wiring, rotation with the CLI, speakers' logins ---------------------


async def hub_rotation_scenario(tmp_path: Path) -> None:
    data = tmp_path / "hub"
    port = free_port()
    hub = Hub(ServeOptions(data_dir=data, port=port, mqtt_port=free_port(), advertise=False))
    hub.audio_keys = KeyRing.open(data, refresh_interval_s=0.0)  # see rotations at once
    user = await asyncio.to_thread(users.add_user, hub.db, "ada", "long enough password")
    token = (await asyncio.to_thread(accounts.issue_token, hub.db, user)).access_token
    secret = await asyncio.to_thread(provisioning.add_broker_user, hub.db, "den", "speaker")
    track = await asyncio.to_thread(make_track, hub.db, data, "hub")
    await hub.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as c:
            manifest_path = f"/v1/audio/{track.id}/manifest"
            r = await c.get(manifest_path, headers=basic("den", secret))
            assert r.status_code == 200, r.text
            before = r.json()["renditions"][0]["segments"][0]["url"]
            rotated = await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-m", "hub", "keys", "rotate", "--data", str(data)],
                capture_output=True,
                text=True,
                env=child_env(),
                check=True,
                timeout=60,
            )
            new_kid = rotated.stdout.split()[-1]
            assert signing.KID.fullmatch(new_kid), rotated.stdout
            on_disk = list((data / "keys" / "audio").glob("*.key"))
            for path in on_disk:
                text = path.read_text().strip()
                assert text not in rotated.stdout + rotated.stderr
            r = await c.get(before)
            assert r.status_code == 200  # handed out before the rotation: still good
            assert r.content == track.files[("low", 0)].read_bytes()
            r = await c.get(manifest_path, headers={"Authorization": f"Bearer {token}"})
            after = r.json()["renditions"][0]["segments"][0]["url"]
            assert f"kid={new_kid}&" in after
            assert f"kid={new_kid}&" not in before
            assert (await c.get(after)).status_code == 200
    finally:
        await hub.stop()


def test_a_running_hub_keeps_old_urls_and_signs_with_the_new_key_after_rotate(
    tmp_path: Path,
) -> None:
    asyncio.run(asyncio.wait_for(hub_rotation_scenario(tmp_path), 60))


def test_the_api_description_lists_both_endpoints(stage: Stage) -> None:
    paths = stage.app.openapi()["paths"]  # here, so a duplicate operation id warns, and fails
    assert set(paths["/audio/{track_id}/{quality}/{segment}"]) == {"get"}
    assert "/v1/audio/{track_id}/manifest" in paths
    with stage.client() as c:
        assert c.get("/openapi.json").status_code == 200
