"""Keeping the search index in step with the catalog, inside the caller's transaction.

Writers call ``index_*`` after changing an item (``hub.catalog_write`` does for
ingest, the playlist routes for playlists); deleting a catalog row removes its
document by trigger (migration 4).  :func:`rebuild` recomputes everything, for a
bulk load (the benchmark) or after changes made behind the writers' backs (say, a
popularity update in SQL).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from hub.catalog.search.kinds import ALBUM, ARTIST, KINDS, PLAYLIST, TRACK, Kind

REBUILD_CACHE_KIB = 256 * 1024


def _terms(kind: Kind, document: sqlite3.Row | tuple[object, ...]) -> set[str]:
    """The tokens of a document's text columns; ``document`` is (doc, id, *columns)."""
    values = dict(zip(kind.columns, list(document)[2:], strict=True))
    return {t for column in kind.text_columns for t in str(values[column]).split()}


def _count_terms(conn: sqlite3.Connection, terms: Iterable[str], delta: int) -> None:
    """Count how many items use each term (candidates for typo correction)."""
    rows = [(t, delta) for t in terms]
    conn.executemany(
        "INSERT INTO search_terms (term, docs) VALUES (?, ?)"
        " ON CONFLICT (term) DO UPDATE SET docs = docs + excluded.docs",
        rows,
    )
    if delta < 0:
        conn.executemany(
            "DELETE FROM search_terms WHERE term = ? AND docs <= 0", [(t,) for t, _ in rows]
        )


def unindex(conn: sqlite3.Connection, kind: Kind, item_id: str) -> None:
    """Remove an item's document (idempotent)."""
    columns = ", ".join(kind.columns)
    old = conn.execute(
        f"SELECT doc, id, {columns} FROM {kind.docs} WHERE id = ?", (item_id,)
    ).fetchone()
    if old is None:
        return
    marks = ", ".join("?" * len(kind.columns))
    conn.execute(
        f"INSERT INTO {kind.fts} ({kind.fts}, rowid, {columns}) VALUES ('delete', ?, {marks})",
        (old[0], *old[2:]),
    )
    conn.execute(f"DELETE FROM {kind.docs} WHERE doc = ?", (old[0],))
    if kind.in_vocabulary:
        _count_terms(conn, _terms(kind, old), -1)


def index(conn: sqlite3.Connection, kind: Kind, item_id: str) -> None:
    """(Re)index one item from the catalog as it is now; an unknown id is unindexed."""
    unindex(conn, kind, item_id)
    new = conn.execute(f"{kind.select} WHERE item.id = ?", (item_id,)).fetchone()
    if new is None:
        return
    columns = ", ".join(kind.columns)
    marks = ", ".join("?" * len(kind.columns))
    conn.execute(f"INSERT INTO {kind.docs} (doc, id, {columns}) VALUES (?, ?, {marks})", new)
    conn.execute(
        f"INSERT INTO {kind.fts} (rowid, {columns}) VALUES (?, {marks})", (new[0], *new[2:])
    )
    if kind.in_vocabulary:
        _count_terms(conn, _terms(kind, new), +1)


def index_track(conn: sqlite3.Connection, track_id: str) -> None:
    index(conn, TRACK, track_id)


def index_album(conn: sqlite3.Connection, album_id: str) -> None:
    """The album, and its artists (whose ``year:`` tokens come from their albums)."""
    index(conn, ALBUM, album_id)
    for (artist_id,) in conn.execute(
        "SELECT artist_id FROM album_artists WHERE album_id = ?", (album_id,)
    ).fetchall():
        index(conn, ARTIST, artist_id)


def index_artist(conn: sqlite3.Connection, artist_id: str) -> None:
    index(conn, ARTIST, artist_id)


def index_playlist(conn: sqlite3.Connection, playlist_id: str) -> None:
    """After a playlist is created or renamed (its visibility is read at search time)."""
    index(conn, PLAYLIST, playlist_id)


def unindex_playlist(conn: sqlite3.Connection, playlist_id: str) -> None:
    unindex(conn, PLAYLIST, playlist_id)


def rebuild(conn: sqlite3.Connection, *, optimize: bool = True) -> None:
    """Every document again from the catalog, then the vocabulary; in one transaction.

    The page cache is raised for the duration: at 1M tracks the build takes ~35 s with
    256 MiB instead of ~55 s with SQLite's default 2 MiB.
    """
    own = not conn.in_transaction
    cache = conn.execute("PRAGMA cache_size").fetchone()[0]
    conn.execute(f"PRAGMA cache_size = -{REBUILD_CACHE_KIB}")
    if own:
        conn.execute("BEGIN IMMEDIATE")
    try:
        for kind in KINDS.values():
            columns = ", ".join(kind.columns)
            conn.execute(f"INSERT INTO {kind.fts} ({kind.fts}) VALUES ('delete-all')")
            conn.execute(f"DELETE FROM {kind.docs}")
            conn.execute(f"INSERT INTO {kind.docs} (doc, id, {columns}) {kind.select} ORDER BY doc")
            conn.execute(f"INSERT INTO {kind.fts} ({kind.fts}) VALUES ('rebuild')")
            if optimize:
                conn.execute(f"INSERT INTO {kind.fts} ({kind.fts}) VALUES ('optimize')")
        conn.execute("DELETE FROM search_terms")
        parts = [
            f"SELECT term, doc FROM {k.vocab} WHERE col IN ({', '.join(map(repr, k.text_columns))})"
            for k in KINDS.values()
            if k.in_vocabulary
        ]
        conn.execute(
            "INSERT INTO search_terms (term, docs) SELECT term, sum(doc)"
            f" FROM ({' UNION ALL '.join(parts)}) GROUP BY term"
        )
        if own:
            conn.execute("COMMIT")
    except BaseException:
        if own:
            conn.execute("ROLLBACK")
        raise
    finally:
        conn.execute(f"PRAGMA cache_size = {int(cache)}")
