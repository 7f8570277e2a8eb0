"""The hub's SQLite database: connections, transactions and the migration runner.

One file (``hub.db``) in WAL mode so the dashboard's reads never wait for the
relay's writes.  Migrations (:mod:`hub.schema`) are applied in order and recorded in
``PRAGMA user_version``; a database from a newer hub is refused rather than
damaged.  A connection is opened per unit of work (cheap with SQLite) so
FastAPI's worker threads never share one.  ``on_connect`` hooks give each
connection the SQL functions the schema needs (the composition root passes the
catalog's), so this module depends on nothing of the hub's domains.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from hub.errors import DatabaseError
from hub.schema import MIGRATIONS

#: Run on every new connection: SQL functions the schema's migrations and queries use.
ConnectionHook = Callable[[sqlite3.Connection], None]


class Database:
    def __init__(self, path: Path, *, on_connect: Sequence[ConnectionHook] = ()) -> None:
        self.path = path
        self.on_connect = tuple(on_connect)

    def connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA busy_timeout = 10000")
        conn.execute("PRAGMA synchronous = NORMAL")  # safe under WAL; no fsync per commit
        for hook in self.on_connect:
            hook(conn)
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
