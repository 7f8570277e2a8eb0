"""The encrypted segment store: sealed blobs on disk, an SQLite index, and the keys.

Layout under the cache directory::

    index.db                      tracks, segments, licences, meta (WAL)
    cache.key                     the device's key for the streaming tier (0600)
    blobs/<track>/<quality>/<n>.seg   AES-256-GCM sealed segments
    tmp/                          blobs being written

Two tiers share the blobs: the **streaming** tier (whatever played, content keys
wrapped by the device's ``cache.key``, least recently used out first under a
cap) and the **offline** tier (explicit downloads, content keys wrapped by the
account's KEK, which opens only through a valid licence addressed to this
device).  A track moves between tiers by re-wrapping its content key; its blobs
stay where they are.

Crash safety: a blob is written to ``tmp/``, fsynced, renamed into place and its
directory fsynced *before* its index row is inserted (one transaction), so an
index row always names a whole blob.  After an unclean stop (no ``clean``
marker) the store drops leftovers in ``tmp/`` and blobs with no index row, and
index rows whose blob is gone.  A blob that fails its tag when read is deleted
with its row and reported, never handed out: the caller fetches it again.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from offline_cache import licence as lic
from offline_cache import sealing
from offline_cache.device_keys import DeviceKeys
from offline_cache.errors import OfflineCacheError
from offline_cache.policy import Cached, evict
from offline_cache.private_files import write_private_bytes

logger = logging.getLogger(__name__)

_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_QUALITY = re.compile(r"[a-z_]{1,16}")
STREAM, OFFLINE = "stream", "offline"
#: ``latest_seen_ms`` is written at most this often (it guards against a clock set back).
_SEEN_WRITE_MS = 60_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tracks (
    track_id TEXT PRIMARY KEY,
    tier TEXT NOT NULL CHECK (tier IN ('stream', 'offline')),
    account TEXT,
    wrapped_key BLOB NOT NULL,
    manifest_json TEXT NOT NULL,
    track_json TEXT NOT NULL DEFAULT '{}',
    quality TEXT NOT NULL DEFAULT '',
    segments_total INTEGER NOT NULL DEFAULT 0,
    bytes_total INTEGER NOT NULL DEFAULT 0,
    last_used_ms INTEGER NOT NULL,
    explicit_ms INTEGER,
    playlist_position INTEGER,
    item_uri TEXT
);
CREATE TABLE IF NOT EXISTS segments (
    track_id TEXT NOT NULL REFERENCES tracks(track_id) ON DELETE CASCADE,
    quality TEXT NOT NULL,
    n INTEGER NOT NULL,
    size INTEGER NOT NULL,
    PRIMARY KEY (track_id, quality, n)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS licences (
    account TEXT PRIMARY KEY,
    licence_id TEXT NOT NULL,
    signed_json TEXT NOT NULL,
    expires_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class StoreError(OfflineCacheError):
    """The store cannot do what was asked; the message says why."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TrackRecord:
    track_id: str
    tier: str
    account: str | None
    manifest_json: str
    track_json: str
    quality: str
    segments_total: int
    bytes_total: int
    segments_done: int
    bytes_done: int
    last_used_ms: int
    explicit_ms: int | None
    playlist_position: int | None
    item_uri: str | None

    @property
    def complete(self) -> bool:
        return self.segments_total > 0 and self.segments_done >= self.segments_total


@dataclass(frozen=True, slots=True)
class Consistency:
    """What a scan found (and removed): for the crash tests and ``legato-speaker cache check``."""

    rows_without_blob: int
    blobs_without_row: int
    temp_files: int


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


class OfflineStore:
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
        self._keys = keys
        self._x25519_public = keys.x25519_public  # derived once: checked on every read
        self._now_ms = now_ms
        self._blobs = root / "blobs"
        self._tmp = root / "tmp"
        for d in (root, self._blobs, self._tmp):
            d.mkdir(parents=True, exist_ok=True)
        os.chmod(root, 0o700)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(root / "index.db", check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)
        self._stream_kek = self._load_stream_key()
        self._keks: dict[str, tuple[lic.Licence, bytes]] = {}  # account -> licence, its KEK
        #: track -> (account whose licence it needs, or None for the streaming tier; key)
        self._content_keys: dict[str, tuple[str | None, bytes]] = {}
        self._latest_seen = self.latest_seen_ms()
        self._seen_written_ms = self._latest_seen
        marker = root / "clean"
        if not marker.exists():
            found = self.repair()
            if found != Consistency(0, 0, 0):
                logger.warning("offline cache repaired after an unclean stop: %s", found)
        else:
            marker.unlink()

    # --- life ----------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._db.close()
            (self.root / "clean").touch()

    def _load_stream_key(self) -> bytes:
        path = self.root / "cache.key"
        if not path.exists():
            write_private_bytes(path, sealing.new_key())
        key = path.read_bytes()
        if len(key) != 32:
            raise StoreError(f"{path} is not a 32-byte key; delete the cache directory to reset")
        return key

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _rows(self, sql: str, params: tuple[object, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    # --- licences and keys ----------------------------------------------------------

    def hub_key(self) -> bytes | None:
        """The raw Ed25519 key of the hub whose licences this speaker accepts."""
        rows = self._rows("SELECT value FROM meta WHERE key = 'hub_key'")
        return lic.unb64(rows[0][0]) if rows else None

    def pin_hub_key(self, raw_b64: str) -> int:
        """Trust the licence key of the hub this speaker syncs with.

        A different key means another hub (re-paired) or one that lost its keys:
        licences of the old key can never be renewed, so their downloads are shredded
        (returns how many tracks went) and the new key is trusted.
        """
        known = self._rows("SELECT value FROM meta WHERE key = 'hub_key'")
        if known and known[0][0] == raw_b64:
            return 0
        gone = 0
        if known:
            accounts = [r[0] for r in self._rows("SELECT DISTINCT account FROM licences")]
            accounts += [
                r[0]
                for r in self._rows("SELECT DISTINCT account FROM tracks WHERE tier = 'offline'")
            ]
            for account in set(accounts):
                gone += self.shred(account)
            logger.warning("the hub's licence key changed: %d offline tracks shredded", gone)
        with self._transaction() as db:
            db.execute(
                "INSERT INTO meta (key, value) VALUES ('hub_key', ?)"
                " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (raw_b64,),
            )
        return gone

    def accept_licence(self, signed: lic.SignedLicence) -> lic.Licence:
        """Check a licence from the hub (signature, this device) and keep it."""
        hub_key = self.hub_key()
        if hub_key is None:
            raise lic.ForgedLicenceError("no hub key pinned yet: sync with the hub first")
        licence = lic.read(signed, hub_key)
        self._check_device(licence)
        lic.unwrap_kek(licence, self._keys.x25519_private)  # opens here, or WrongDeviceError
        with self._transaction() as db:
            db.execute(
                "INSERT INTO licences (account, licence_id, signed_json, expires_ms)"
                " VALUES (?, ?, ?, ?) ON CONFLICT(account) DO UPDATE SET"
                " licence_id = excluded.licence_id, signed_json = excluded.signed_json,"
                " expires_ms = excluded.expires_ms",
                (
                    licence.account,
                    licence.licence_id,
                    json.dumps(signed.to_json()),
                    licence.expires_ms,
                ),
            )
        with self._lock:
            self._keks.pop(licence.account, None)
            self._content_keys = {
                t: held for t, held in self._content_keys.items() if held[0] != licence.account
            }
        return licence

    def _check_device(self, licence: lic.Licence) -> None:
        if licence.device_id != self.device_id or lic.unb64(licence.device_x25519) != (
            self._x25519_public
        ):
            raise lic.WrongDeviceError(
                f"the licence was issued to speaker {licence.device_id!r}, not this one "
                f"({self.device_id!r}); cached files copied from another speaker cannot play "
                "here — download them on this speaker"
            )

    def licence(self, account: str) -> lic.Licence | None:
        rows = self._rows("SELECT signed_json FROM licences WHERE account = ?", (account,))
        hub_key = self.hub_key()
        if not rows or hub_key is None:
            return None
        return lic.read(lic.SignedLicence.from_json(json.loads(rows[0][0])), hub_key)

    def licences(self) -> list[lic.Licence]:
        accounts = [r[0] for r in self._rows("SELECT account FROM licences ORDER BY account")]
        return [x for a in accounts if (x := self.licence(a)) is not None]

    def latest_seen_ms(self) -> int:
        rows = self._rows("SELECT value FROM meta WHERE key = 'latest_seen_ms'")
        return int(rows[0][0]) if rows else 0

    def _saw(self, now: int) -> None:
        """Remember the latest time seen (a clock set back behind it is refused)."""
        self._latest_seen = max(self._latest_seen, now)
        if now - self._seen_written_ms < _SEEN_WRITE_MS:
            return
        with self._transaction() as db:
            db.execute(
                "INSERT INTO meta (key, value) VALUES ('latest_seen_ms', ?) ON CONFLICT(key)"
                " DO UPDATE SET value = max(CAST(value AS INTEGER), excluded.value)",
                (str(now),),
            )
        self._seen_written_ms = now

    def kek(self, account: str) -> bytes:
        """The account's KEK, only through a licence valid for this device now.

        Checked on every use (expiry, clock set back); the signature check and the
        unwrapping are done once per licence and kept in memory.
        """
        with self._lock:
            held = self._keks.get(account)
        if held is None:
            licence = self.licence(account)
            if licence is None:
                raise lic.LicenceError(
                    "there is no offline licence for this download on this speaker; "
                    f"to get one, {lic.RENEW_HOW}"
                )
            self._check_device(licence)
            held = (licence, lic.unwrap_kek(licence, self._keys.x25519_private))
        now = self._now_ms()
        lic.check(
            held[0],
            device_id=self.device_id,
            device_x25519=self._x25519_public,
            now_ms=now,
            latest_seen_ms=self._latest_seen,
        )
        self._saw(now)
        with self._lock:
            self._keks[account] = held
        return held[1]

    def shred(self, account: str) -> int:
        """Revocation: the licence, the wrapped keys and the blobs of ``account`` go.

        Keys first (one transaction), then files: once the rows are gone the blobs
        are noise even if removing them is interrupted (the next repair takes them).
        """
        with self._transaction() as db:
            tracks = [
                r[0]
                for r in db.execute("SELECT track_id FROM tracks WHERE account = ?", (account,))
            ]
            db.execute("DELETE FROM tracks WHERE account = ?", (account,))
            db.execute("DELETE FROM licences WHERE account = ?", (account,))
        with self._lock:
            self._keks.pop(account, None)
            for t in tracks:
                self._content_keys.pop(t, None)
        for t in tracks:
            shutil.rmtree(self._blobs / t, ignore_errors=True)
        return len(tracks)

    # --- tracks ---------------------------------------------------------------------

    def _record(self, row: sqlite3.Row) -> TrackRecord:
        return TrackRecord(
            track_id=row["track_id"],
            tier=row["tier"],
            account=row["account"],
            manifest_json=row["manifest_json"],
            track_json=row["track_json"],
            quality=row["quality"],
            segments_total=row["segments_total"],
            bytes_total=row["bytes_total"],
            segments_done=row["segments_done"],
            bytes_done=row["bytes_done"],
            last_used_ms=row["last_used_ms"],
            explicit_ms=row["explicit_ms"],
            playlist_position=row["playlist_position"],
            item_uri=row["item_uri"],
        )

    _SELECT = (
        "SELECT t.*, (SELECT count(*) FROM segments s WHERE s.track_id = t.track_id"
        " AND s.quality = t.quality) AS segments_done,"
        " (SELECT coalesce(sum(size), 0) FROM segments s WHERE s.track_id = t.track_id"
        " AND s.quality = t.quality) AS bytes_done FROM tracks t"
    )

    def track(self, track_id: str) -> TrackRecord | None:
        rows = self._rows(self._SELECT + " WHERE t.track_id = ?", (track_id,))
        return self._record(rows[0]) if rows else None

    def tier_of(self, track_id: str) -> tuple[str, str | None] | None:
        """``(tier, account)`` of a held track, else ``None``: the per-segment lookup
        (``track`` also counts the segments held, which a write does not need)."""
        rows = self._rows("SELECT tier, account FROM tracks WHERE track_id = ?", (track_id,))
        return (rows[0][0], rows[0][1]) if rows else None

    def tracks(self, tier: str | None = None) -> list[TrackRecord]:
        if tier is None:
            rows = self._rows(self._SELECT + " ORDER BY t.track_id")
        else:
            rows = self._rows(self._SELECT + " WHERE t.tier = ? ORDER BY t.track_id", (tier,))
        return [self._record(r) for r in rows]

    def keep_stream(self, track_id: str, manifest_json: str) -> None:
        """Make room for a streamed track's segments (a no-op when it is already held)."""
        _valid_id(track_id)
        if self._rows("SELECT 1 FROM tracks WHERE track_id = ?", (track_id,)):
            return
        key = sealing.new_key()
        wrapped = sealing.wrap_key(self._stream_kek, track_id, key)
        with self._transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO tracks (track_id, tier, wrapped_key, manifest_json,"
                " last_used_ms) VALUES (?, 'stream', ?, ?, ?)",
                (track_id, wrapped, manifest_json, self._now_ms()),
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
        _valid_id(track_id)
        if not _QUALITY.fullmatch(quality):
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
        wrapped = sealing.wrap_key(kek, track_id, key)
        with self._transaction() as db:
            db.execute(
                "INSERT INTO tracks (track_id, tier, account, wrapped_key, manifest_json,"
                " track_json, quality, segments_total, bytes_total, last_used_ms, explicit_ms,"
                " playlist_position, item_uri)"
                " VALUES (?, 'offline', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(track_id) DO UPDATE SET tier = 'offline', account = excluded.account,"
                " wrapped_key = excluded.wrapped_key, manifest_json = excluded.manifest_json,"
                " track_json = excluded.track_json, quality = excluded.quality,"
                " segments_total = excluded.segments_total, bytes_total = excluded.bytes_total,"
                " explicit_ms = excluded.explicit_ms,"
                " playlist_position = excluded.playlist_position, item_uri = excluded.item_uri",
                (
                    track_id,
                    account,
                    wrapped,
                    manifest_json,
                    track_json,
                    quality,
                    segments_total,
                    bytes_total,
                    self._now_ms(),
                    explicit_ms,
                    playlist_position,
                    item_uri,
                ),
            )
        with self._lock:
            self._content_keys[track_id] = (account, key)

    def remove(self, track_id: str) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM tracks WHERE track_id = ?", (track_id,))
        with self._lock:
            self._content_keys.pop(track_id, None)
        shutil.rmtree(self._blobs / track_id, ignore_errors=True)

    def touch(self, track_id: str) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE tracks SET last_used_ms = ? WHERE track_id = ?", (self._now_ms(), track_id)
            )

    def _content_key(self, track_id: str, tier: str, account: str | None) -> bytes:
        """The track's key; an offline track's only through a licence valid now."""
        account = account if tier == OFFLINE else None
        with self._lock:
            held = self._content_keys.get(track_id)
        if held is not None and held[0] == account:
            if account is not None:
                self.kek(account)  # expiry and clock are checked on every use
            return held[1]
        rows = self._rows("SELECT wrapped_key FROM tracks WHERE track_id = ?", (track_id,))
        if not rows:
            raise StoreError(f"{track_id} is not in the cache")
        kek = self._stream_kek if account is None else self.kek(account)
        key = sealing.unwrap_key(kek, track_id, bytes(rows[0][0]))
        with self._lock:
            self._content_keys[track_id] = (account, key)
        return key

    # --- segments -------------------------------------------------------------------

    def _blob(self, track_id: str, quality: str, n: int) -> Path:
        return self._blobs / track_id / quality / f"{n}.seg"

    def held(self, track_id: str, quality: str) -> set[int]:
        return {
            r[0]
            for r in self._rows(
                "SELECT n FROM segments WHERE track_id = ? AND quality = ?", (track_id, quality)
            )
        }

    def put_segment(self, track_id: str, quality: str, n: int, data: bytes) -> None:
        """Seal and store one segment: temp file, fsync, rename, then its index row."""
        _valid_id(track_id)
        if not _QUALITY.fullmatch(quality) or n < 0:
            raise StoreError(f"bad segment address {quality!r}/{n}")
        held = self.tier_of(track_id)
        if held is None:
            raise StoreError(f"{track_id} must be kept (keep_stream or pin) before its segments")
        key = self._content_key(track_id, *held)
        blob = sealing.seal_segment(key, track_id, quality, n, data)
        final = self._blob(track_id, quality, n)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._tmp / f"{track_id}.{quality}.{n}.{os.getpid()}.{threading.get_ident()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, blob)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)
        _fsync_dir(final.parent)
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO segments (track_id, quality, n, size) VALUES (?, ?, ?, ?)",
                (track_id, quality, n, len(data)),
            )

    def get_segment(self, track_id: str, quality: str, n: int) -> bytes | None:
        """The segment's plain bytes, ``None`` if not held.

        Raises ``TamperedError`` (after deleting the blob and its row) when the tag
        fails, and ``LicenceError`` for an offline track without a valid licence.
        """
        rows = self._rows(
            "SELECT t.tier, t.account FROM segments s JOIN tracks t USING (track_id)"
            " WHERE s.track_id = ? AND s.quality = ? AND s.n = ?",
            (track_id, quality, n),
        )
        if not rows:
            return None
        key = self._content_key(track_id, rows[0]["tier"], rows[0]["account"])
        try:
            blob = self._blob(track_id, quality, n).read_bytes()
        except FileNotFoundError:
            self._forget_segment(track_id, quality, n)
            return None
        try:
            return sealing.open_segment(key, track_id, quality, n, blob)
        except sealing.TamperedError:
            self._forget_segment(track_id, quality, n)
            raise

    def _forget_segment(self, track_id: str, quality: str, n: int) -> None:
        with self._transaction() as db:
            db.execute(
                "DELETE FROM segments WHERE track_id = ? AND quality = ? AND n = ?",
                (track_id, quality, n),
            )
        self._blob(track_id, quality, n).unlink(missing_ok=True)

    # --- housekeeping ---------------------------------------------------------------

    def stream_bytes(self) -> int:
        rows = self._rows(
            "SELECT coalesce(sum(s.size), 0) FROM segments s JOIN tracks t USING (track_id)"
            " WHERE t.tier = 'stream'"
        )
        return int(rows[0][0])

    def evict_streamed(self, cap_bytes: int) -> list[str]:
        """Apply the eviction policy to the streaming tier; offline downloads are pinned."""
        rows = self._rows(
            "SELECT t.track_id, t.last_used_ms, t.tier, coalesce(sum(s.size), 0) AS size"
            " FROM tracks t LEFT JOIN segments s USING (track_id) GROUP BY t.track_id"
        )
        items = [
            Cached(
                track_id=r["track_id"],
                size=r["size"],
                last_used_ms=r["last_used_ms"],
                downloaded=r["tier"] == OFFLINE,
            )
            for r in rows
        ]
        gone = evict(items, now_ms=self._now_ms(), cap_bytes=cap_bytes)
        for track_id in gone:
            self.remove(track_id)
        return gone

    def repair(self) -> Consistency:
        """Make the index and the files agree (after a crash); returns what was removed."""
        temp = 0
        for leftover in self._tmp.iterdir():
            leftover.unlink(missing_ok=True)
            temp += 1
        indexed = {
            (r[0], r[1], r[2]) for r in self._rows("SELECT track_id, quality, n FROM segments")
        }
        tracks = {r[0] for r in self._rows("SELECT track_id FROM tracks")}
        on_disk: set[tuple[str, str, int]] = set()
        orphans = 0
        for track_dir in self._blobs.iterdir():
            if track_dir.name not in tracks:
                shutil.rmtree(track_dir, ignore_errors=True)
                orphans += 1
                continue
            for quality_dir in track_dir.iterdir():
                for blob in quality_dir.iterdir():
                    address = (track_dir.name, quality_dir.name, int(blob.stem))
                    if address in indexed:
                        on_disk.add(address)
                    else:
                        blob.unlink(missing_ok=True)
                        orphans += 1
        missing = indexed - on_disk
        if missing:
            with self._transaction() as db:
                db.executemany(
                    "DELETE FROM segments WHERE track_id = ? AND quality = ? AND n = ?",
                    sorted(missing),
                )
        return Consistency(
            rows_without_blob=len(missing), blobs_without_row=orphans, temp_files=temp
        )


def _valid_id(track_id: str) -> None:
    if not _ID.fullmatch(track_id):
        raise StoreError(f"bad track id {track_id!r}")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
