"""The store's SQLite index: which tracks are held, in which tier, their segments and licences.

Every SQL statement of the store is here, each behind a method named for what
it does; the rest of the store deals in values.  Tables (``index.db``, WAL,
``synchronous=FULL``)::

    tracks    one row per held track: tier, account, wrapped content key, manifest
    segments  one row per sealed blob on disk (track, quality, n, plain size)
    licences  one signed licence per account
    meta      hub_key (the pinned licence key), latest_seen_ms (the clock guard)

One connection, shared between threads under :attr:`Index.lock`; the
connection is in autocommit mode, so a read is its own statement and a write
that must be atomic goes through :meth:`Index.transaction`.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from offline_cache.errors import StoreError
from offline_cache.policy import Cached

STREAM, OFFLINE = "stream", "offline"
#: ``meta`` keys.
HUB_KEY, LATEST_SEEN_MS = "hub_key", "latest_seen_ms"

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

_SELECT_TRACKS = (
    "SELECT t.*, (SELECT count(*) FROM segments s WHERE s.track_id = t.track_id"
    " AND s.quality = t.quality) AS segments_done,"
    " (SELECT coalesce(sum(size), 0) FROM segments s WHERE s.track_id = t.track_id"
    " AND s.quality = t.quality) AS bytes_done FROM tracks t"
)

#: A segment's address: (track id, quality, number).
Address = tuple[str, str, int]


@dataclass(frozen=True, slots=True, kw_only=True)
class TrackRecord:
    """A held track, with how much of its chosen quality is on disk."""

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


#: The index's schema version (``PRAGMA user_version``).  Every release slot shares
#: the cache, so a change to the tables is a forward migration that raises this, and a
#: release never opens an index a newer one has migrated: it would damage it.
SCHEMA_VERSION = 1


def connect(path: Path) -> sqlite3.Connection:
    """The index at ``path``, its tables created if need be; ``StoreError`` for an
    index from a newer release (left untouched)."""
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    found = db.execute("PRAGMA user_version").fetchone()[0]
    if found > SCHEMA_VERSION:
        db.close()
        raise StoreError(
            f"the offline cache at {path.parent} was written by a newer Legato (schema "
            f"{found}; this release knows {SCHEMA_VERSION}): it is left as it is; run the "
            "newer release, or delete the cache to start it afresh"
        )
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA foreign_keys=ON")
    db.executescript(_SCHEMA)
    if found < SCHEMA_VERSION:  # 0: made before the version was kept; the tables are those of 1
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    return db


def _track_record(row: sqlite3.Row) -> TrackRecord:
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


class Index:
    """Queries over one connection opened by :func:`connect`."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        #: Held for every statement; the store's in-memory key caches share it.
        self.lock = threading.RLock()

    def close(self) -> None:
        with self.lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self.lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def rows(self, sql: str, params: tuple[object, ...] = ()) -> list[sqlite3.Row]:
        with self.lock:
            return self._db.execute(sql, params).fetchall()

    # --- meta -----------------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        rows = self.rows("SELECT value FROM meta WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?)"
                " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def raise_latest_seen(self, now_ms: int) -> None:
        """Store ``now_ms`` as the latest time seen, unless a later one is stored."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key)"
                " DO UPDATE SET value = max(CAST(value AS INTEGER), excluded.value)",
                (LATEST_SEEN_MS, str(now_ms)),
            )

    # --- licences -------------------------------------------------------------------

    def put_licence(
        self, *, account: str, licence_id: str, signed_json: str, expires_ms: int
    ) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO licences (account, licence_id, signed_json, expires_ms)"
                " VALUES (?, ?, ?, ?) ON CONFLICT(account) DO UPDATE SET"
                " licence_id = excluded.licence_id, signed_json = excluded.signed_json,"
                " expires_ms = excluded.expires_ms",
                (account, licence_id, signed_json, expires_ms),
            )

    def signed_licence(self, account: str) -> str | None:
        rows = self.rows("SELECT signed_json FROM licences WHERE account = ?", (account,))
        return str(rows[0][0]) if rows else None

    def licence_accounts(self) -> list[str]:
        return [r[0] for r in self.rows("SELECT account FROM licences ORDER BY account")]

    def offline_accounts(self) -> set[str]:
        """Accounts holding a licence or an offline track here."""
        accounts = [r[0] for r in self.rows("SELECT DISTINCT account FROM licences")]
        accounts += [
            r[0] for r in self.rows("SELECT DISTINCT account FROM tracks WHERE tier = 'offline'")
        ]
        return set(accounts)

    def drop_account(self, account: str) -> list[str]:
        """Delete the account's tracks (their keys and segment rows) and licence, in one
        transaction; returns the tracks that went."""
        with self.transaction() as db:
            tracks = [
                r[0]
                for r in db.execute("SELECT track_id FROM tracks WHERE account = ?", (account,))
            ]
            db.execute("DELETE FROM tracks WHERE account = ?", (account,))
            db.execute("DELETE FROM licences WHERE account = ?", (account,))
        return tracks

    # --- tracks ---------------------------------------------------------------------

    def track(self, track_id: str) -> TrackRecord | None:
        rows = self.rows(_SELECT_TRACKS + " WHERE t.track_id = ?", (track_id,))
        return _track_record(rows[0]) if rows else None

    def tracks(self, tier: str | None = None) -> list[TrackRecord]:
        if tier is None:
            rows = self.rows(_SELECT_TRACKS + " ORDER BY t.track_id")
        else:
            rows = self.rows(_SELECT_TRACKS + " WHERE t.tier = ? ORDER BY t.track_id", (tier,))
        return [_track_record(r) for r in rows]

    def tier_of(self, track_id: str) -> tuple[str, str | None] | None:
        rows = self.rows("SELECT tier, account FROM tracks WHERE track_id = ?", (track_id,))
        return (rows[0][0], rows[0][1]) if rows else None

    def has_track(self, track_id: str) -> bool:
        return bool(self.rows("SELECT 1 FROM tracks WHERE track_id = ?", (track_id,)))

    def add_streamed(
        self, track_id: str, *, wrapped_key: bytes, manifest_json: str, now_ms: int
    ) -> None:
        """A streaming-tier row for ``track_id`` unless it is held already."""
        with self.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO tracks (track_id, tier, wrapped_key, manifest_json,"
                " last_used_ms) VALUES (?, 'stream', ?, ?, ?)",
                (track_id, wrapped_key, manifest_json, now_ms),
            )

    def put_offline(
        self,
        track_id: str,
        *,
        account: str,
        wrapped_key: bytes,
        manifest_json: str,
        track_json: str,
        quality: str,
        segments_total: int,
        bytes_total: int,
        now_ms: int,
        explicit_ms: int | None,
        playlist_position: int | None,
        item_uri: str | None,
    ) -> None:
        """``track_id`` in the offline tier for ``account`` (a new row, or the held one moved)."""
        with self.transaction() as db:
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
                    wrapped_key,
                    manifest_json,
                    track_json,
                    quality,
                    segments_total,
                    bytes_total,
                    now_ms,
                    explicit_ms,
                    playlist_position,
                    item_uri,
                ),
            )

    def delete_track(self, track_id: str) -> None:
        """The track's row, and with it (cascade) its segment rows."""
        with self.transaction() as db:
            db.execute("DELETE FROM tracks WHERE track_id = ?", (track_id,))

    def touch(self, track_id: str, now_ms: int) -> None:
        with self.transaction() as db:
            db.execute("UPDATE tracks SET last_used_ms = ? WHERE track_id = ?", (now_ms, track_id))

    def wrapped_key(self, track_id: str) -> bytes | None:
        rows = self.rows("SELECT wrapped_key FROM tracks WHERE track_id = ?", (track_id,))
        return bytes(rows[0][0]) if rows else None

    def track_ids(self) -> set[str]:
        return {r[0] for r in self.rows("SELECT track_id FROM tracks")}

    # --- segments -------------------------------------------------------------------

    def held(self, track_id: str, quality: str) -> set[int]:
        return {
            r[0]
            for r in self.rows(
                "SELECT n FROM segments WHERE track_id = ? AND quality = ?", (track_id, quality)
            )
        }

    def add_segment(self, track_id: str, quality: str, n: int, size: int) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO segments (track_id, quality, n, size) VALUES (?, ?, ?, ?)",
                (track_id, quality, n, size),
            )

    def segment_owner(self, track_id: str, quality: str, n: int) -> tuple[str, str | None] | None:
        """``(tier, account)`` of the track whose segment this is, ``None`` if not held."""
        rows = self.rows(
            "SELECT t.tier, t.account FROM segments s JOIN tracks t USING (track_id)"
            " WHERE s.track_id = ? AND s.quality = ? AND s.n = ?",
            (track_id, quality, n),
        )
        return (rows[0]["tier"], rows[0]["account"]) if rows else None

    def delete_segment(self, track_id: str, quality: str, n: int) -> None:
        self.delete_segments([(track_id, quality, n)])

    def delete_segments(self, addresses: Iterable[Address]) -> None:
        with self.transaction() as db:
            db.executemany(
                "DELETE FROM segments WHERE track_id = ? AND quality = ? AND n = ?", addresses
            )

    def segment_addresses(self) -> set[Address]:
        return {(r[0], r[1], r[2]) for r in self.rows("SELECT track_id, quality, n FROM segments")}

    def stream_bytes(self) -> int:
        rows = self.rows(
            "SELECT coalesce(sum(s.size), 0) FROM segments s JOIN tracks t USING (track_id)"
            " WHERE t.tier = 'stream'"
        )
        return int(rows[0][0])

    def usage(self) -> list[Cached]:
        """Every held track with its size on disk and last use, as the eviction policy sees it."""
        rows = self.rows(
            "SELECT t.track_id, t.last_used_ms, t.tier, coalesce(sum(s.size), 0) AS size"
            " FROM tracks t LEFT JOIN segments s USING (track_id) GROUP BY t.track_id"
        )
        return [
            Cached(
                track_id=r["track_id"],
                size=r["size"],
                last_used_ms=r["last_used_ms"],
                downloaded=r["tier"] == OFFLINE,
            )
            for r in rows
        ]
