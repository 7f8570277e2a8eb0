"""The speaker's download manager in this process, against a real hub on loopback.

It waits while playback needs the network, reports its progress as it goes (state
and events), and a sync request brings removals through at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from connect_protocol.messages import Downloads, EventKind
from device.audio.source import HubMedia
from device.downloads import DownloadManager
from hub.ingest.pipeline import ingest_paths
from offline_cache.device_keys import DeviceKeys
from offline_cache.store import OFFLINE, OfflineStore
from tests.system import System, wait_for
from tests.test_e2e_audio import write_album

pytestmark = pytest.mark.integration


@pytest.fixture
def system(tmp_path: Path) -> Iterator[System]:
    sysm = System(tmp_path)
    write_album(tmp_path / "album")
    assert all(r.status == "added" for r in ingest_paths(sysm.db, sysm.data, [tmp_path / "album"]))
    try:
        sysm.start_broker()
        sysm.start_hub()
        yield sysm
    finally:
        sysm.stop()


def test_downloads_wait_for_playback_report_progress_and_follow_removals(
    system: System, tmp_path: Path
) -> None:
    from hub.fleet import provisioning

    secret = provisioning.add_broker_user(system.db, "den", "speaker")
    keys = DeviceKeys.load_or_create(tmp_path / "keys")
    store = OfflineStore(tmp_path / "cache", device_id="den", keys=keys)
    playing = threading.Event()
    playing.set()  # playback needs the network from the start
    reports: list[Downloads] = []
    events: list[tuple[EventKind, str | None, str]] = []
    manager = DownloadManager(
        store=store,
        hub=HubMedia(system.url, "den", secret),
        device_id="den",
        keys=keys,
        busy=playing.is_set,
        on_report=reports.append,
        on_event=lambda kind, uri, message: events.append((kind, uri, message)),
        retry_s=0.2,
        progress_every_s=0.5,
    )
    token = system.token()
    with system.db.reading() as conn:
        album = conn.execute("SELECT album_id FROM tracks LIMIT 1").fetchone()[0]
    manager.start()
    try:
        # registered and synced once (the hub refuses downloads to a speaker without keys)
        wait_for(lambda: store.hub_key() is not None, 10, "the first sync", system.logs)
        r = httpx.put(
            f"{system.url}/v1/devices/den/downloads",
            json={"uris": [f"legato:album:{album}"]},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.status_code == 202, r.text
        manager.request_sync()  # what the hub's sync_downloads command does
        wait_for(lambda: reports and reports[-1].tracks == 4, 10, "the wanted tracks")
        time.sleep(1.5)
        assert sum(r.segments_done for r in store.tracks(OFFLINE)) == 0  # playback first
        playing.clear()
        wait_for(lambda: reports[-1].ready == 4, 30, "the album downloaded", system.logs)
        done = [r.bytes_done for r in reports]
        assert done == sorted(done)  # progress only grows
        assert reports[-1].bytes_done == reports[-1].bytes_total > 0
        assert reports[-1].licence_expires_ms > time.time() * 1000
        assert len([e for e in events if e[0] is EventKind.DOWNLOAD and e[1]]) == 4
        assert all(r.complete for r in store.tracks(OFFLINE))

        r = httpx.delete(
            f"{system.url}/v1/devices/den/downloads", headers={"Authorization": f"Bearer {token}"}
        )
        assert r.status_code == 204, r.text
        manager.request_sync()
        # rows go before files (a shred drops them all in one transaction, then deletes
        # the blobs track by track): the rows gone, the blobs may still be going
        blobs = tmp_path / "cache" / "blobs"
        wait_for(lambda: not store.tracks(OFFLINE), 10, "the downloads removed")
        wait_for(lambda: not any(blobs.iterdir()), 10, "their blobs deleted")
        # the last download gone, the hub revoked the licence: shredded here too
        wait_for(lambda: not store.licences(), 10, "the licence shredded")
    finally:
        manager.stop()
        store.close()
