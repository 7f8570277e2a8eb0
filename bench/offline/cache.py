"""The store under test: the audio bench's library held offline in an ``OfflineStore``.

What a speaker holds after its download manager has finished (``device/downloads.py``):
the bench plays the hub's part with its own Ed25519 key (pinned as the hub's licence
key) and issues a licence for the account to this store's device keys; every track is
pinned offline at ``very_high`` with its manifest without URLs (``without_urls``), and
each segment, checked as the download manager checks it (``check_segment``), is sealed
into the store with ``put_segment``.  The plain segment files are the ones the hub's
ingest wrote, in the cached library.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from audio.material import Library, Track
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from connect_protocol import codec
from connect_protocol.media import Rendition
from connect_protocol.ogg import check_segment
from device.downloads import without_urls
from hub.media import store as media_store
from offline_cache import licence as lic
from offline_cache import sealing
from offline_cache.device_keys import DeviceKeys
from offline_cache.store import OfflineStore

from .common import QUALITY, BenchError, Progress

DEVICE_ID = "bench-offline"
ACCOUNT = "bench-account"


@dataclass(frozen=True, slots=True)
class Segment:
    """One very_high segment, as a plain file and as a sealed blob."""

    track_id: str
    n: int
    plain: Path  # the hub's .ogg
    blob: Path  # the store's sealed blob of the same bytes
    frames: int
    rendition: Rendition

    @property
    def seconds(self) -> float:
        return self.frames / self.rendition.sample_rate


@dataclass(slots=True)
class Offline:
    store: OfflineStore
    root: Path
    tracks: tuple[Track, ...]
    segments: tuple[Segment, ...]  # every segment of every track, in album order
    plain_bytes: int
    blob_bytes: int
    build_s: float
    same_filesystem: bool  # the blobs and the plain files are on one filesystem

    def close(self) -> None:
        self.store.close()


def plain_path(library: Library, track_id: str, n: int) -> Path:
    return media_store.segment_path(library.dir, track_id, QUALITY, n)


def blob_path(store: OfflineStore, track_id: str, n: int) -> Path:
    # the store's own layout (a private helper: the bench evicts and sizes these files)
    return store._blobs.path(track_id, QUALITY.label, n)


def _settle(path: Path) -> None:
    """Write the file's dirty pages out (a library ingested just now has some): eviction
    drops only clean pages, and the cold reads must be cold for both ways."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def build(root: Path, library: Library, progress: Progress) -> Offline:
    """A fresh store under ``root`` holding every track of ``library`` offline."""
    t0 = time.perf_counter()
    keys = DeviceKeys.load_or_create(root / "keys")
    store = OfflineStore(root / "cache", device_id=DEVICE_ID, keys=keys)
    signer = Ed25519PrivateKey.generate()  # the bench is the hub here
    store.pin_hub_key(lic.b64(lic.raw_public(signer.public_key())))
    store.accept_licence(
        lic.issue(
            signer=signer,
            licence_id="bench-licence",
            device_id=DEVICE_ID,
            account=ACCOUNT,
            device_x25519=keys.x25519_public,
            kek=sealing.new_key(),
            issued_ms=time.time_ns() // 1_000_000,
        )
    )
    segments: list[Segment] = []
    plain_bytes = blob_bytes = 0
    total = sum(len(t.manifest.rendition(QUALITY).segments) for t in library.tracks)
    for track in library.tracks:
        manifest = without_urls(track.manifest)
        rendition = manifest.rendition(QUALITY)
        store.pin(
            track.id,
            account=ACCOUNT,
            manifest_json=codec.encode(manifest).decode(),
            track_json=json.dumps(
                {
                    "uri": track.uri,
                    "duration_ms": track.duration_ms,
                    "name": track.name,
                    "artists": [track.artist],
                    "album": track.album,
                }
            ),
            quality=QUALITY.label,
            segments_total=len(rendition.segments),
            bytes_total=sum(s.bytes for s in rendition.segments),
            explicit_ms=time.time_ns() // 1_000_000,
            playlist_position=None,
            item_uri=None,
        )
        for n, seg in enumerate(rendition.segments):
            plain = plain_path(library, track.id, n)
            data = plain.read_bytes()
            check_segment(data, seg.frames, rendition)  # as the download manager does
            _settle(plain)
            store.put_segment(track.id, QUALITY.label, n, data)
            blob = blob_path(store, track.id, n)
            if not blob.is_file():
                raise BenchError(f"the store wrote no blob at {blob}")
            plain_bytes += len(data)
            blob_bytes += blob.stat().st_size
            segments.append(Segment(track.id, n, plain, blob, seg.frames, rendition))
            progress.show(f"offline store: {len(segments)}/{total} segments sealed")
        record = store.track(track.id)
        if record is None or not record.complete or record.tier != "offline":
            raise BenchError(f"{track.name} is not held offline and complete: {record}")
    progress.finish(f"offline store: {len(library.tracks)} tracks, {len(segments)} segments")
    first = segments[0]
    return Offline(
        store=store,
        root=root,
        tracks=library.tracks,
        segments=tuple(segments),
        plain_bytes=plain_bytes,
        blob_bytes=blob_bytes,
        build_s=time.perf_counter() - t0,
        same_filesystem=os.stat(first.plain).st_dev == os.stat(first.blob).st_dev,
    )
