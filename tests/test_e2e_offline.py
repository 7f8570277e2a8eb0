"""Offline downloads end to end: hub, Mosquitto and a native speaker as processes.

An ingested album (the continuous sweep of test_e2e_audio, cut mid-segment) is
downloaded to a speaker through the Web API, then played from the speaker's local
control WebSocket with the hub stopped: sample-exact and gapless from the encrypted
cache.  Around that: a tampered blob is fetched again (never played), kill -9 during
downloads leaves a consistent index that resumes, and ``faketime`` moves a real
speaker process to day 29 (plays), day 31 (refuses, naming the date) and back to
playing once the hub, at day 31 too, renews the licence.
"""

from __future__ import annotations

import json
import random
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from connect_protocol import codec
from connect_protocol.media import Manifest, Quality
from connect_protocol.ogg import check_segment
from hub.ingest.pipeline import ingest_paths
from offline_cache import licence as lic
from offline_cache.device_keys import DeviceKeys
from offline_cache.store import OFFLINE, OfflineStore
from tests.brokers import free_port
from tests.system import Api, System, retained_state, wait_for
from tests.test_e2e_audio import (
    check_continuous,
    expected_frames,
    finished,
    read_raw,
    write_album,
)
from tests.throttle_proxy import ThrottleProxy

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def faketime(offset: str) -> tuple[str, ...]:
    """Run a process ``offset`` (``+31d``) ahead with libfaketime (Debian's ``faketime``).

    Preloaded through ``env`` (which execs) rather than the ``faketime`` program (which
    forks: a signal would stop it and leave the speaker running).  CLOCK_MONOTONIC is
    left alone: timed waits (threads, asyncio) break when it is faked too.
    """
    libs = sorted(Path("/usr/lib").glob("*/faketime/libfaketimeMT.so.1"))
    assert libs, "libfaketime is missing: apt install faketime (make system-deps does)"
    return ("env", f"LD_PRELOAD={libs[0]}", f"FAKETIME={offset}", "FAKETIME_DONT_FAKE_MONOTONIC=1")


@pytest.fixture
def offline_system(tmp_path: Path) -> Iterator[tuple[System, list[tuple[int, int]]]]:
    sysm = System(tmp_path)
    pieces = write_album(tmp_path / "album")
    results = ingest_paths(sysm.db, sysm.data, [tmp_path / "album"], jobs=2)
    assert all(r.status == "added" for r in results), results
    sysm.provision("den", engine="native")
    try:
        sysm.start_broker()
        sysm.start_hub()
        yield sysm, pieces
    finally:
        sysm.stop()


def album_uri(system: System) -> str:
    with system.db.reading() as conn:
        return f"legato:album:{conn.execute('SELECT album_id FROM tracks LIMIT 1').fetchone()[0]}"


def request_album(api: Api) -> None:
    """PUT the album; a speaker just started may not have registered its keys yet (409)."""
    uri = album_uri(api.system)

    def accepted() -> httpx.Response | None:
        r = api.client.put("/v1/devices/den/downloads", json={"uris": [uri]})
        return None if r.status_code == 409 else r

    r = wait_for(accepted, 15, "the speaker's keys registered", api.system.logs)
    assert r.status_code == 202, r.text


def download_album(api: Api, timeout_s: float = 60) -> dict[str, Any]:
    request_album(api)

    def ready() -> dict[str, Any] | None:
        doc: dict[str, Any] = api.client.get("/v1/devices/den/downloads").json()
        items = doc["items"]
        return doc if items and items[0]["state"] == "ready" else None

    return wait_for(ready, timeout_s, "the album to be downloaded", api.system.logs)


def download_then_stop(system: System, out: Path, port: int) -> dict[str, Any]:
    """The album downloaded by a speaker started for it, then stopped; the downloads doc."""
    speaker = system.start_speaker("den", *speaker_args(out, port))
    api = Api(system)
    try:
        api.wait_online("den")
        return download_album(api)
    finally:
        api.close()
        speaker.stop()


def speaker_args(out: Path, port: int, *extra: str) -> list[str]:
    return [
        *("--sink", f"file:{out}", "--normalisation", "off", "--port", str(port)),
        *extra,
    ]


def offline_tracks(port: int, token: str) -> list[dict[str, Any]]:
    doc = httpx.get(f"http://127.0.0.1:{port}/offline", params={"token": token}, timeout=5).json()
    return [t for t in doc["tracks"] if t["state"] == "ready"]


def play_locally(port: int, tracks: list[dict[str, Any]], token: str) -> tuple[dict[str, Any], str]:
    """A phone on the LAN with the hub gone: play through the speaker's own WebSocket.
    Returns the ack and the speaker's session (to tell its state from an older run's)."""
    refs = [{k: t[k] for k in ("uri", "duration_ms", "name", "artists", "album")} for t in tracks]
    with connect(f"ws://127.0.0.1:{port}/control?token={token}") as ws:
        session = str(json.loads(ws.recv(timeout=5))["session"])  # the state comes first
        ws.send(json.dumps({"type": "play", "id": f"p{time.monotonic_ns()}", "tracks": refs}))
        while True:
            msg = json.loads(ws.recv(timeout=10))
            if msg.get("type") == "ack":
                return dict(msg), session


def ended(system: System, session: str) -> bool:
    """The album ended on this run of the speaker (not a retained state of the last run)."""
    return finished(system, "den") and retained_state(system, "den")["session"] == session


def wait_local(port: int) -> None:
    def up() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/info", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(up, 30, "the speaker's local API")


def speaker_store(system: System) -> OfflineStore:
    base = system.root / "speaker-state" / "den"
    return OfflineStore(
        base / "cache", device_id="den", keys=DeviceKeys.load_or_create(base / "keys")
    )


def sorted_by_track_number(tracks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(tracks, key=lambda t: t["name"])  # "Sweep 1".."Sweep 4"


def test_a_downloaded_album_plays_sample_exact_with_the_hub_stopped(
    offline_system: tuple[System, list[tuple[int, int]]], tmp_path: Path
) -> None:
    system, pieces = offline_system
    out, port = tmp_path / "out.raw", free_port()
    system.start_speaker("den", *speaker_args(out, port))
    api = Api(system)
    try:
        api.wait_online("den")
        doc = download_album(api)
        assert doc["items"][0]["tracks"] == doc["items"][0]["tracks_ready"] == 4
        assert doc["licence"]["revoked"] is False
    finally:
        api.close()
    wait_local(port)
    tracks = sorted_by_track_number(offline_tracks(port, system.local_token("den")))
    assert len(tracks) == 4
    assert system.hub is not None
    system.hub.stop()  # the hub is gone; Mosquitto stays for the test to watch the state
    ack, session = play_locally(port, tracks, system.local_token("den"))
    assert ack["ok"], ack
    wait_for(lambda: ended(system, session), 60, "the album to finish offline", system.logs)
    check_continuous(read_raw(out), expected_frames(pieces))
    log = (system.root / "den.log").read_text()
    assert "error: " not in log, log[-3000:]


def test_a_tampered_blob_is_fetched_again_and_never_played(
    offline_system: tuple[System, list[tuple[int, int]]], tmp_path: Path
) -> None:
    system, pieces = offline_system
    out, port = tmp_path / "out.raw", free_port()
    download_then_stop(system, out, port)
    blobs = sorted((system.root / "speaker-state" / "den" / "cache" / "blobs").rglob("*.seg"))
    victim = blobs[len(blobs) // 2]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x40
    victim.write_bytes(bytes(data))
    out.unlink(missing_ok=True)
    system.start_speaker("den", *speaker_args(out, port))
    wait_local(port)
    api = Api(system)
    try:
        api.wait_online("den")
    finally:
        api.close()
    tracks = sorted_by_track_number(offline_tracks(port, system.local_token("den")))
    ack, session = play_locally(port, tracks, system.local_token("den"))
    assert ack["ok"], ack
    wait_for(lambda: ended(system, session), 60, "the album to finish", system.logs)
    check_continuous(read_raw(out), expected_frames(pieces))
    assert "failed its integrity check; fetching it again" in (system.root / "den.log").read_text()


def test_kill_9_during_downloads_leaves_a_consistent_index_that_resumes(
    offline_system: tuple[System, list[tuple[int, int]]], tmp_path: Path
) -> None:
    """Downloads through a slow link, the speaker killed at random moments (bounded):
    afterwards every indexed segment is whole and checks out, and nothing is missing."""
    system, _pieces = offline_system
    out, port = tmp_path / "out.raw", free_port()
    proxy = ThrottleProxy("127.0.0.1", system.hub_port).start()
    rng = random.Random(5)
    kills = 0
    try:
        proxy.throttle(400_000)
        args = speaker_args(out, port, "--hub", proxy.url)
        speaker = system.start_speaker("den", *args)
        api = Api(system)
        try:
            api.wait_online("den")
            request_album(api)
            deadline = time.monotonic() + 60
            while kills < 8 and time.monotonic() < deadline:
                time.sleep(rng.uniform(0.3, 1.5))
                speaker.stop(signal.SIGKILL)
                kills += 1
                speaker = system.start_speaker("den", *args)
            proxy.throttle(None)
            doc = download_album(api)  # the same request again: idempotent, and resumes
            assert doc["items"][0]["tracks_ready"] == 4
        finally:
            api.close()
        speaker.stop()
    finally:
        proxy.stop()
    assert kills >= 3
    store = speaker_store(system)
    try:
        found = store.repair()
        assert (found.rows_without_blob, found.blobs_without_row) == (0, 0)
        records = store.tracks(OFFLINE)
        assert len(records) == 4
        for record in records:
            assert record.complete
            manifest = codec.decode(Manifest, record.manifest_json)
            assert isinstance(manifest, Manifest)
            rendition = manifest.rendition(Quality.parse(record.quality))
            for n, segment in enumerate(rendition.segments):
                data = store.get_segment(record.track_id, record.quality, n)
                assert data is not None
                check_segment(data, segment.frames, rendition)  # whole, pages intact
    finally:
        store.close()


def test_faketime_day_29_plays_day_31_refuses_and_renewal_restores(
    offline_system: tuple[System, list[tuple[int, int]]], tmp_path: Path
) -> None:
    system, pieces = offline_system
    out, port = tmp_path / "out.raw", free_port()
    expires_ms = download_then_stop(system, out, port)["licence"]["expires_ms"]
    assert system.hub is not None
    system.hub.stop()

    def play_at(offset: str) -> tuple[dict[str, Any], str]:
        out.unlink(missing_ok=True)
        proc = system.start_speaker("den", *speaker_args(out, port), wrapper=faketime(offset))
        wait_local(port)
        tracks = sorted_by_track_number(offline_tracks(port, system.local_token("den")))
        ack, session = play_locally(port, tracks, system.local_token("den"))
        wait_for(lambda: ended(system, session), 60, f"the album to end at {offset}", system.logs)
        proc.stop()
        return ack, (system.root / "den.log").read_text()

    ack, _log = play_at("+29d")
    assert ack["ok"]
    check_continuous(read_raw(out), expected_frames(pieces))

    ack, log = play_at("+31d")
    assert f"the offline licence expired on {lic.day(expires_ms)}" in log
    assert "renews by itself" in log
    assert not out.exists() or out.stat().st_size == 0  # not a frame played

    # day 31 for the hub too: the speaker syncs on its own and the licence is renewed
    system.start_hub(wrapper=faketime("+31d"))
    out.unlink(missing_ok=True)
    system.start_speaker("den", *speaker_args(out, port), wrapper=faketime("+31d"))
    wait_local(port)

    def renewed() -> bool:
        doc = httpx.get(
            f"http://127.0.0.1:{port}/offline",
            params={"token": system.local_token("den")},
            timeout=5,
        ).json()
        return any(x["expires_ms"] > expires_ms for x in doc["licences"])

    wait_for(renewed, 30, "the licence to be renewed", system.logs)
    system.hub.stop()  # and it plays with the hub gone again
    tracks = sorted_by_track_number(offline_tracks(port, system.local_token("den")))
    ack, session = play_locally(port, tracks, system.local_token("den"))
    assert ack["ok"], ack
    wait_for(lambda: ended(system, session), 60, "the album after renewal", system.logs)
    check_continuous(read_raw(out), expected_frames(pieces))
