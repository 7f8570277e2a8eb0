"""The store itself: tracks kept in two tiers, their segments sealed and read back.

:class:`OfflineStore` joins the parts of the package: the SQLite index
(``index``), the blob files (``blobs``), the key-encryption keys and licences
(``keyring``) and the repair after an unclean stop (``repair``).  What it adds
is the order of things: a blob whole on disk before its row, keys gone before
files on revocation, a tampered blob deleted before the error is raised, and
each track's content key unwrapped once and kept in memory.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from offline_cache import licence as lic
from offline_cache import sealing
from offline_cache.device_keys import DeviceKeys
from offline_cache.errors import StoreError
from offline_cache.policy import evict
from offline_cache.store.blobs import Blobs, check_track_id, is_quality
from offline_cache.store.index import OFFLINE, Index, TrackRecord, connect
from offline_cache.store.keyring import Keyring
from offline_cache.store.repair import Consistency, repair

logger = logging.getLogger(__name__)

#: Written by ``close()``, removed on opening: its absence means the last stop was unclean.
_CLEAN = "clean"


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


class OfflineStore:
    """The speaker's encrypted segment cache under ``root`` (see ``offline_cache.store``)."""

    def __init__(
        self,
        root: Path,
        *,
        device_id: str,
        keys: DeviceKeys,
        now_ms: Callable[[], int] = _wall_ms,
    ) -> None:
        self.root = root
        self.device_id = device_id
        self._now_ms = now_ms
        root.mkdir(parents=True, exist_ok=True)
        self._blobs = Blobs(root)
        os.chmod(root, 0o700)
        self._db = connect(root / "index.db")  # queried through the Index only
        self._index = Index(self._db)
        self._lock = self._index.lock
        self._keyring = Keyring(
            self._index,
            device_id=device_id,
            keys=keys,
            stream_key_path=root / "cache.key",
            now_ms=now_ms,
        )
        #: track -> (account whose licence it needs, or None for the streaming tier; key)
        self._content_keys: dict[str, tuple[str | None, bytes]] = {}
        marker = root / _CLEAN
        if not marker.exists():
            found = self.repair()
            if found != Consistency(0, 0, 0):
                logger.warning("offline cache repaired after an unclean stop: %s", found)
        else:
            marker.unlink()

    # --- life ----------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._index.close()
            (self.root / _CLEAN).touch()

    # --- licences and keys ----------------------------------------------------------

    def hub_key(self) -> bytes | None:
        """The raw Ed25519 key of the hub whose licences this speaker accepts."""
        return self._keyring.hub_key()

    def pin_hub_key(self, raw_b64: str) -> int:
        """Trust the licence key of the hub this speaker syncs with.

        A different key means another hub (re-paired) or one that lost its keys:
        licences of the old key can never be renewed, so their downloads are shredded
        (returns how many tracks went) and the new key is trusted.
        """
        known = self._keyring.hub_key_b64()
        if known == raw_b64:
            return 0
        gone = 0
        if known is not None:
            for account in self._index.offline_accounts():
                gone += self.shred(account)
            logger.warning("the hub's licence key changed: %d offline tracks shredded", gone)
        self._keyring.trust_hub_key(raw_b64)
        return gone

    def accept_licence(self, signed: lic.SignedLicence) -> lic.Licence:
        """Check a licence from the hub (signature, this device) and keep it."""
        licence = self._keyring.accept(signed)
        with self._lock:
            self._content_keys = {
                t: held for t, held in self._content_keys.items() if held[0] != licence.account
            }
        return licence

    def licence(self, account: str) -> lic.Licence | None:
        return self._keyring.licence(account)

    def licences(self) -> list[lic.Licence]:
        return self._keyring.licences()

    def latest_seen_ms(self) -> int:
        return self._keyring.latest_seen_ms()

    def kek(self, account: str) -> bytes:
        """The account's KEK, only through a licence valid for this device now."""
        return self._keyring.kek(account)

    def shred(self, account: str) -> int:
        """Revocation: the licence, the wrapped keys and the blobs of ``account`` go.

        Keys first (one transaction), then files: once the rows are gone the blobs
        are noise even if removing them is interrupted (the next repair takes them).
        """
        tracks = self._index.drop_account(account)
        with self._lock:
            self._keyring.forget(account)
            for t in tracks:
                self._content_keys.pop(t, None)
        for t in tracks:
            self._blobs.delete_track(t)
        return len(tracks)

    # --- tracks ---------------------------------------------------------------------

    def track(self, track_id: str) -> TrackRecord | None:
        return self._index.track(track_id)

    def tier_of(self, track_id: str) -> tuple[str, str | None] | None:
        """``(tier, account)`` of a held track, else ``None``: the per-segment lookup
        (``track`` also counts the segments held, which a write does not need)."""
        return self._index.tier_of(track_id)

    def tracks(self, tier: str | None = None) -> list[TrackRecord]:
        return self._index.tracks(tier)

    def keep_stream(self, track_id: str, manifest_json: str) -> None:
        """Make room for a streamed track's segments (a no-op when it is already held)."""
        check_track_id(track_id)
        if self._index.has_track(track_id):
            return
        key = sealing.new_key()
        wrapped = sealing.wrap_key(self._keyring.stream_kek, track_id, key)
        self._index.add_streamed(
            track_id, wrapped_key=wrapped, manifest_json=manifest_json, now_ms=self._now_ms()
        )

    def pin(
        self,
        track_id: str,
        *,
        account: str,
        manifest_json: str,
        track_json: str,
        quality: str,
        segments_total: int,
        bytes_total: int,
        explicit_ms: int | None,
        playlist_position: int | None,
        item_uri: str | None,
    ) -> None:
        """Hold ``track_id`` offline for ``account`` (re-wrapping a streamed track's key)."""
        check_track_id(track_id)
        if not is_quality(quality):
            raise StoreError(f"bad quality {quality!r}")
        kek = self.kek(account)
        held = self.track(track_id)
        if held is not None and held.tier == OFFLINE and held.account != account:
            # another account's download: it plays for everyone; keep it as it is
            return
        key = (
            self._content_key(track_id, held.tier, held.account)
            if held is not None
            else sealing.new_key()
        )
        self._index.put_offline(
            track_id,
            account=account,
            wrapped_key=sealing.wrap_key(kek, track_id, key),
            manifest_json=manifest_json,
            track_json=track_json,
            quality=quality,
            segments_total=segments_total,
            bytes_total=bytes_total,
            now_ms=self._now_ms(),
            explicit_ms=explicit_ms,
            playlist_position=playlist_position,
            item_uri=item_uri,
        )
        with self._lock:
            self._content_keys[track_id] = (account, key)

    def remove(self, track_id: str) -> None:
        self._index.delete_track(track_id)
        with self._lock:
            self._content_keys.pop(track_id, None)
        self._blobs.delete_track(track_id)

    def touch(self, track_id: str) -> None:
        self._index.touch(track_id, self._now_ms())

    def _content_key(self, track_id: str, tier: str, account: str | None) -> bytes:
        """The track's key; an offline track's only through a licence valid now."""
        account = account if tier == OFFLINE else None
        with self._lock:
            held = self._content_keys.get(track_id)
        if held is not None and held[0] == account:
            if account is not None:
                self.kek(account)  # expiry and clock are checked on every use
            return held[1]
        wrapped = self._index.wrapped_key(track_id)
        if wrapped is None:
            raise StoreError(f"{track_id} is not in the cache")
        kek = self._keyring.stream_kek if account is None else self.kek(account)
        key = sealing.unwrap_key(kek, track_id, wrapped)
        with self._lock:
            self._content_keys[track_id] = (account, key)
        return key

    # --- segments -------------------------------------------------------------------

    def held(self, track_id: str, quality: str) -> set[int]:
        return self._index.held(track_id, quality)

    def put_segment(self, track_id: str, quality: str, n: int, data: bytes) -> None:
        """Seal and store one segment: temp file, fsync, rename, then its index row."""
        check_track_id(track_id)
        if not is_quality(quality) or n < 0:
            raise StoreError(f"bad segment address {quality!r}/{n}")
        held = self.tier_of(track_id)
        if held is None:
            raise StoreError(f"{track_id} must be kept (keep_stream or pin) before its segments")
        key = self._content_key(track_id, *held)
        blob = sealing.seal_segment(key, track_id, quality, n, data)
        self._blobs.write(track_id, quality, n, blob)
        self._index.add_segment(track_id, quality, n, len(data))

    def get_segment(self, track_id: str, quality: str, n: int) -> bytes | None:
        """The segment's plain bytes, ``None`` if not held.

        Raises ``TamperedError`` (after deleting the blob and its row) when the tag
        fails, and ``LicenceError`` for an offline track without a valid licence.
        """
        owner = self._index.segment_owner(track_id, quality, n)
        if owner is None:
            return None
        key = self._content_key(track_id, *owner)
        blob = self._blobs.read(track_id, quality, n)
        if blob is None:
            self._forget_segment(track_id, quality, n)
            return None
        try:
            return sealing.open_segment(key, track_id, quality, n, blob)
        except sealing.TamperedError:
            self._forget_segment(track_id, quality, n)
            raise

    def _forget_segment(self, track_id: str, quality: str, n: int) -> None:
        self._index.delete_segment(track_id, quality, n)
        self._blobs.delete(track_id, quality, n)

    # --- housekeeping ---------------------------------------------------------------

    def stream_bytes(self) -> int:
        return self._index.stream_bytes()

    def evict_streamed(self, cap_bytes: int) -> list[str]:
        """Apply the eviction policy to the streaming tier; offline downloads are pinned."""
        gone = evict(self._index.usage(), now_ms=self._now_ms(), cap_bytes=cap_bytes)
        for track_id in gone:
            self.remove(track_id)
        return gone

    def repair(self) -> Consistency:
        """Make the index and the files agree (after a crash); returns what was removed."""
        return repair(self._index, self._blobs)
