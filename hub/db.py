"""The hub's SQLite database: schema, migrations, connections.

One file (``hub.db``) in WAL mode so the dashboard's reads never wait for the
relay's writes.  Migrations are a list applied in order and recorded in
``PRAGMA user_version``; a database from a newer hub is refused rather than
damaged.  A connection is opened per unit of work (cheap with SQLite) so
FastAPI's worker threads never share one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hub.errors import DatabaseError

MIGRATIONS: list[str] = [
    # 1: accounts, tokens, device registry, broker users, a minimal catalog
    """
    CREATE TABLE users (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        is_admin INTEGER NOT NULL DEFAULT 0,
        created_ms INTEGER NOT NULL
    );
    CREATE TABLE tokens (
        token_hash TEXT PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        scope TEXT NOT NULL,
        expires_ms INTEGER NOT NULL,
        revoked INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX tokens_user ON tokens(user_id);
    CREATE TABLE devices (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        model TEXT NOT NULL DEFAULT '',
        fw TEXT NOT NULL DEFAULT '',
        online INTEGER NOT NULL DEFAULT 0,
        last_seen_ms INTEGER NOT NULL DEFAULT 0,
        state_json TEXT
    );
    CREATE TABLE broker_users (
        username TEXT PRIMARY KEY,
        role TEXT NOT NULL CHECK (role IN ('hub', 'speaker', 'observer')),
        secret_hash TEXT NOT NULL,
        created_ms INTEGER NOT NULL
    );
    CREATE TABLE tracks (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        artist TEXT NOT NULL,
        album TEXT NOT NULL,
        album_id TEXT NOT NULL,
        track_number INTEGER NOT NULL,
        duration_ms INTEGER NOT NULL CHECK (duration_ms > 0)
    );
    CREATE INDEX tracks_album ON tracks(album_id, track_number);
    """,
    # 2: ingested audio (hub/media/store.py) and album art
    """
    CREATE TABLE media (
        track_id TEXT PRIMARY KEY REFERENCES tracks(id) ON DELETE CASCADE,
        content_hash TEXT NOT NULL UNIQUE,
        source_path TEXT NOT NULL,
        manifest_json TEXT NOT NULL,
        ingested_ms INTEGER NOT NULL
    );
    CREATE TABLE album_art (
        album_id TEXT PRIMARY KEY,
        mime TEXT NOT NULL,
        path TEXT NOT NULL
    );
    """,
]


class Database:
    def __init__(self, path: Path) -> None:
        self.path = path

    def connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA busy_timeout = 10000")
        conn.execute("PRAGMA synchronous = NORMAL")  # safe under WAL; no fsync per commit
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One connection, one transaction: committed on success, rolled back on error."""
        conn = self.connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        finally:
            conn.close()

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        conn = self.connect()
        try:
            yield conn
        finally:
            conn.close()

    def migrate(self) -> int:
        """Bring the schema up to date; returns the version now in force."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.touch(mode=0o600, exist_ok=True)
        conn = self.connect()
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version > len(MIGRATIONS):
                raise DatabaseError(
                    f"{self.path} has schema version {version}, newer than this hub "
                    f"({len(MIGRATIONS)}); upgrade legato"
                )
            for number in range(version, len(MIGRATIONS)):
                conn.executescript(
                    f"BEGIN; {MIGRATIONS[number]}; PRAGMA user_version = {number + 1}; COMMIT;"
                )
            return len(MIGRATIONS)
        except sqlite3.DatabaseError as exc:
            raise DatabaseError(f"cannot open {self.path}: {exc}") from exc
        finally:
            conn.close()

    def ping(self) -> bool:
        try:
            with self.reading() as conn:
                conn.execute("SELECT 1").fetchone()
            return True
        except sqlite3.Error:
            return False
