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

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from hub.errors import DatabaseError
from hub.schema import MIGRATIONS

logger = logging.getLogger(__name__)

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


class BackgroundWriter:
    """One thread with one connection that runs writes in the order they were queued.

    For what the event loop must record but must not wait for (the registry,
    speakers' events, plays).  The thread starts with the first write, so a hub
    part that never writes costs no thread; ``close`` runs what is queued first.
    A failed write is logged, never raised into the loop.
    """

    def __init__(self, db: Database, name: str) -> None:
        self.db = db
        self.name = name
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None  # the writer thread's own
        self._lock = threading.Lock()

    def run(self, work: Callable[[sqlite3.Connection], object]) -> None:
        """Queue ``work(conn)``; it owns its transaction (the connection autocommits)."""
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self.name)
            self._executor.submit(self._run, work)

    def execute(self, sql: str, params: Sequence[object] | Mapping[str, object]) -> None:
        """Queue one statement (committed on its own)."""
        self.run(lambda conn: conn.execute(sql, params))

    def close(self) -> None:
        """Run what is queued, then stop the thread and close the connection (blocks)."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is None:
            return
        executor.submit(self._close_conn)
        executor.shutdown(wait=True)

    def _run(self, work: Callable[[sqlite3.Connection], object]) -> None:
        try:
            if self._conn is None:
                self._conn = self.db.connect()
            work(self._conn)
        except sqlite3.Error:
            logger.exception("%s: could not write to the database", self.name)

    def _close_conn(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
