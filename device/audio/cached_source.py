"""Segments from the encrypted cache first, the hub second: a ``SegmentSource``.

- An offline download (complete, licence valid now) plays from its stored manifest
  and blobs without asking the hub: it plays with the hub gone.  With the licence
  expired (or the clock set back) it streams from the hub if the hub answers, and
  otherwise refuses with the licence's message (the expiry date and how to renew).
- Anything else takes its manifest from the hub (that is the permission to play);
  its segments come from the cache when held, else from the hub and are then
  sealed into the streaming tier, which is kept under its cap.
- A blob that fails its tag is dropped by the store and fetched again, never played.
  Segments are page-checked before they are sealed, so what the cache hands out is
  ``Authenticated``: the tag proves them whole and the engine skips its page check.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from connect_protocol import codec
from connect_protocol.media import Manifest, Quality
from connect_protocol.ogg import BadSegmentError, check_segment
from device.audio.source import Authenticated, HubMedia, SourceError
from offline_cache.licence import LicenceError
from offline_cache.sealing import TamperedError
from offline_cache.store import OFFLINE, OfflineStore, StoreError

logger = logging.getLogger(__name__)

#: The streaming tier is trimmed to its cap after this many new segments.
_EVICT_EVERY = 32


class CachedMedia:
    def __init__(
        self,
        hub: HubMedia,
        store: OfflineStore,
        *,
        stream_cap_bytes: int,
        on_problem: Callable[[str, str], None] = lambda _uri, _message: None,
    ) -> None:
        self._hub = hub
        self._store = store
        self._cap = stream_cap_bytes
        self._on_problem = on_problem  # (track uri, message): a tampered blob, a licence
        self._offline: dict[str, Quality] = {}  # track id -> the quality held offline
        self._puts = 0

    def manifest(self, track_id: str) -> Manifest:
        record = self._store.track(track_id)
        if record is not None and record.tier == OFFLINE and record.complete:
            try:
                assert record.account is not None
                self._store.kek(record.account)
            except LicenceError as refused:
                try:
                    manifest = self._hub.manifest(track_id)
                except SourceError:
                    raise SourceError(str(refused), retryable=False) from refused
                self._offline.pop(track_id, None)
                return manifest
            stored = codec.decode(Manifest, record.manifest_json)
            if not isinstance(stored, codec.DecodeError):
                self._offline[track_id] = Quality.parse(record.quality)
                self._store.touch(track_id)
                return stored
            logger.warning("stored manifest of %s unreadable: %s", track_id, stored.message)
        self._offline.pop(track_id, None)
        manifest = self._hub.manifest(track_id)
        if record is None and self._cap > 0:
            self._store.keep_stream(track_id, codec.encode(manifest).decode())
        elif record is not None:
            self._store.touch(track_id)
        return manifest

    def held_quality(self, manifest: Manifest) -> Quality | None:
        """The quality to play: the one downloaded, for a track playing from its download."""
        return self._offline.get(manifest.track_id)

    def segment(
        self, manifest: Manifest, quality: Quality, n: int, *, deadline_s: float | None = None
    ) -> bytes:
        track_id = manifest.track_id
        try:
            data = self._store.get_segment(track_id, quality.label, n)
        except TamperedError as exc:
            logger.warning("%s; fetching it again", exc)
            self._on_problem(manifest.uri, f"{exc}; fetched again")
            data = None
        except LicenceError as exc:
            raise SourceError(str(exc), retryable=False) from exc
        if data is not None:
            return Authenticated(data)
        source = manifest
        if not manifest.rendition(quality).segments[n].url:
            source = self._hub.manifest(track_id)  # a stored manifest keeps no signed URLs
        data = self._hub.segment(source, quality, n, deadline_s=deadline_s)
        rendition = manifest.rendition(quality)
        try:  # checked before it is sealed: what the cache hands out later is whole
            check_segment(data, rendition.segments[n].frames, rendition)
        except BadSegmentError:
            return data  # not kept; the engine's own check deals with it
        self._keep(manifest, quality, n, data)
        return Authenticated(data)

    def _keep(self, manifest: Manifest, quality: Quality, n: int, data: bytes) -> None:
        if self._cap <= 0 and manifest.track_id not in self._offline:
            return
        try:
            if self._store.tier_of(manifest.track_id) is None:
                if self._cap <= 0:
                    return
                self._store.keep_stream(manifest.track_id, codec.encode(manifest).decode())
            self._store.put_segment(manifest.track_id, quality.label, n, data)
        except (OSError, StoreError, LicenceError) as exc:  # a full disk must not stop playback
            logger.warning("not cached: segment %d of %s: %s", n, manifest.track_id, exc)
            return
        self._puts += 1
        if self._puts % _EVICT_EVERY == 0:
            gone = self._store.evict_streamed(self._cap)
            if gone:
                logger.info("streaming cache over its cap: %d tracks let go", len(gone))

    def throughput_bps(self) -> float | None:
        return self._hub.throughput_bps()

    def forget(self, track_id: str) -> None:
        self._hub.forget(track_id)

    def close(self) -> None:
        self._hub.close()
