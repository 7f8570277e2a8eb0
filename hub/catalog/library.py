"""Playlists and saved tracks: the listener's own data, as plain functions.

Each function takes an open connection inside the caller's transaction and
returns values; the routes turn them into Spotify's shapes.  Every change to a
playlist bumps its ``version`` (the ``snapshot_id`` clients see), and a change
made against an older snapshot is refused rather than applied to items that
have moved since.  Positions are kept dense (0..n-1) so reorder and remove are
simple renumberings inside one transaction.
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from hub.catalog.ids import ALPHABET, is_base62_id
from hub.catalog.resolve import parse_uri
from hub.errors import CatalogError, Forbidden, NotFound

T = TypeVar("T")
MAX_PLAYLIST_ITEMS = 10_000
MAX_NAME = 200
MAX_DESCRIPTION = 300
MAX_ITEMS_PER_CALL = 100


def snapshot_id(playlist_id: str, version: int) -> str:
    """Changes with every modification; opaque to clients, as Spotify's is."""
    return f"{version}-{playlist_id[:8]}"


@dataclass(frozen=True, slots=True)
class Playlist:
    id: str
    owner_id: int
    public: bool
    collaborative: bool
    version: int

    @property
    def snapshot(self) -> str:
        return snapshot_id(self.id, self.version)


def new_id() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(22))


def track_ids_from(uris: Sequence[str], *, kind: str = "track") -> list[str]:
    """Track ids from URIs (``legato:`` or ``spotify:``) or bare ids, each checked."""
    if len(uris) > MAX_ITEMS_PER_CALL:
        raise CatalogError(f"At most {MAX_ITEMS_PER_CALL} items per request")
    ids = []
    for uri in uris:
        if not isinstance(uri, str):
            raise CatalogError("Items must be URI strings")
        if ":" in uri:
            parsed = parse_uri(uri)
            if parsed.kind != kind:
                raise CatalogError(f"{uri[:100]!r} is not a {kind} URI")
            ids.append(parsed.id)
        elif is_base62_id(uri):
            ids.append(uri)
        else:
            raise CatalogError(f"Invalid {kind} id {uri[:100]!r}")
    return ids


def known_tracks(conn: sqlite3.Connection, ids: Sequence[str]) -> None:
    """Raise naming the first id the catalog does not have."""
    unique = list(dict.fromkeys(ids))
    have = {
        r[0]
        for r in conn.execute(
            f"SELECT id FROM tracks WHERE id IN ({','.join('?' * len(unique))})", unique
        )
    }
    for i in ids:
        if i not in have:
            raise NotFound(f"Unknown track legato:track:{i}")


def create_playlist(
    conn: sqlite3.Connection,
    owner_id: int,
    name: str,
    *,
    description: str = "",
    public: bool = True,
    collaborative: bool = False,
    now_ms: int,
) -> str:
    _check_details(name, description)
    if collaborative and public:
        raise CatalogError("A collaborative playlist cannot be public")
    playlist_id = new_id()
    conn.execute(
        "INSERT INTO playlists (id, owner_id, name, description, public, collaborative,"
        " created_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (playlist_id, owner_id, name, description, int(public), int(collaborative), now_ms),
    )
    return playlist_id


def _check_details(name: str | None, description: str | None) -> None:
    if name is not None and not 0 < len(name.strip()) <= MAX_NAME:
        raise CatalogError(f"A playlist name must be 1-{MAX_NAME} characters")
    if description is not None and len(description) > MAX_DESCRIPTION:
        raise CatalogError(f"A description must be at most {MAX_DESCRIPTION} characters")


def get_playlist(conn: sqlite3.Connection, playlist_id: str, viewer_id: int) -> Playlist:
    """The playlist if the viewer may see it (public, or theirs, or collaborative)."""
    row = conn.execute(
        "SELECT id, owner_id, public, collaborative, version FROM playlists WHERE id = ?",
        (playlist_id,),
    ).fetchone()
    if row is None or not (row["public"] or row["collaborative"] or row["owner_id"] == viewer_id):
        raise NotFound(f"No playlist {playlist_id[:40]!r}")
    return Playlist(
        row["id"], row["owner_id"], bool(row["public"]), bool(row["collaborative"]), row["version"]
    )


def editable(
    conn: sqlite3.Connection, playlist_id: str, user_id: int, *, adding: bool = False
) -> Playlist:
    """The playlist if the user may change it: the owner always; anyone who has a
    collaborative playlist's id may add to it (there is no list of collaborators to
    trust with removing or reordering others' items)."""
    playlist = get_playlist(conn, playlist_id, user_id)
    if playlist.owner_id != user_id and not (playlist.collaborative and adding):
        raise Forbidden("You cannot change a playlist you do not own")
    return playlist


def _check_snapshot(playlist: Playlist, snapshot: str | None) -> None:
    if snapshot is not None and snapshot != playlist.snapshot:
        raise CatalogError(
            f"snapshot_id {snapshot[:40]!r} is not the playlist's current version "
            f"({playlist.snapshot}); fetch it again and retry"
        )


def _bump(conn: sqlite3.Connection, playlist: Playlist) -> str:
    conn.execute("UPDATE playlists SET version = version + 1 WHERE id = ?", (playlist.id,))
    return snapshot_id(playlist.id, playlist.version + 1)


def change_details(
    conn: sqlite3.Connection,
    playlist: Playlist,
    *,
    name: str | None,
    description: str | None,
    public: bool | None,
    collaborative: bool | None,
) -> str:
    _check_details(name, description)
    now_public = playlist.public if public is None else public
    now_collab = playlist.collaborative if collaborative is None else collaborative
    if now_public and now_collab:
        raise CatalogError("A collaborative playlist cannot be public")
    for column, value in (("name", name), ("description", description)):
        if value is not None:
            conn.execute(f"UPDATE playlists SET {column} = ? WHERE id = ?", (value, playlist.id))
    conn.execute(
        "UPDATE playlists SET public = ?, collaborative = ? WHERE id = ?",
        (int(now_public), int(now_collab), playlist.id),
    )
    return _bump(conn, playlist)


def _count(conn: sqlite3.Connection, playlist_id: str) -> int:
    return int(
        conn.execute(
            "SELECT COUNT(*) FROM playlist_items WHERE playlist_id = ?", (playlist_id,)
        ).fetchone()[0]
    )


def _order(conn: sqlite3.Connection, playlist_id: str) -> list[tuple[str, int, int | None]]:
    return [
        (r[0], r[1], r[2])
        for r in conn.execute(
            "SELECT track_id, added_ms, added_by FROM playlist_items WHERE playlist_id = ?"
            " ORDER BY position",
            (playlist_id,),
        )
    ]


def _rewrite(
    conn: sqlite3.Connection, playlist_id: str, items: list[tuple[str, int, int | None]]
) -> None:
    conn.execute("DELETE FROM playlist_items WHERE playlist_id = ?", (playlist_id,))
    conn.executemany(
        "INSERT INTO playlist_items (playlist_id, position, track_id, added_ms, added_by)"
        " VALUES (?, ?, ?, ?, ?)",
        [(playlist_id, n, t, at, by) for n, (t, at, by) in enumerate(items)],
    )


def add_items(
    conn: sqlite3.Connection,
    playlist: Playlist,
    track_ids: Sequence[str],
    *,
    position: int | None,
    user_id: int,
    now_ms: int,
) -> str:
    if not track_ids:
        raise CatalogError("No items to add")
    known_tracks(conn, track_ids)
    items = _order(conn, playlist.id)
    if len(items) + len(track_ids) > MAX_PLAYLIST_ITEMS:
        raise CatalogError(f"A playlist holds at most {MAX_PLAYLIST_ITEMS} items")
    at = len(items) if position is None else position
    if not 0 <= at <= len(items):
        raise CatalogError(f"position must be between 0 and {len(items)}")
    new = [(t, now_ms, user_id) for t in track_ids]
    _rewrite(conn, playlist.id, items[:at] + new + items[at:])
    return _bump(conn, playlist)


def replace_items(
    conn: sqlite3.Connection,
    playlist: Playlist,
    track_ids: Sequence[str],
    *,
    user_id: int,
    now_ms: int,
) -> str:
    if track_ids:
        known_tracks(conn, track_ids)
    _rewrite(conn, playlist.id, [(t, now_ms, user_id) for t in track_ids])
    return _bump(conn, playlist)


def reorder(
    conn: sqlite3.Connection,
    playlist: Playlist,
    *,
    range_start: int,
    insert_before: int,
    range_length: int = 1,
    snapshot: str | None = None,
) -> str:
    """Move ``range_length`` items from ``range_start`` to before ``insert_before``."""
    _check_snapshot(playlist, snapshot)
    items = _order(conn, playlist.id)
    n = len(items)
    if range_length < 1 or not 0 <= range_start < n or range_start + range_length > n:
        raise CatalogError(f"range_start/range_length must lie within the {n} items")
    if not 0 <= insert_before <= n:
        raise CatalogError(f"insert_before must be between 0 and {n}")
    _rewrite(conn, playlist.id, moved(items, range_start, range_length, insert_before))
    return _bump(conn, playlist)


def moved(items: list[T], start: int, length: int, before: int) -> list[T]:
    """Spotify's reorder rule: the block lands before the item that was at ``before``
    (at the end for ``before == len(items)``); a ``before`` inside the block, or just
    after it, leaves the order as it is."""
    if start <= before <= start + length:
        return list(items)
    block = items[start : start + length]
    rest = items[:start] + items[start + length :]
    at = before if before < start else before - length
    return rest[:at] + block + rest[at:]


def remove_items(
    conn: sqlite3.Connection,
    playlist: Playlist,
    removals: Sequence[tuple[str, Sequence[int] | None]],
    *,
    snapshot: str | None = None,
) -> str:
    """Remove every occurrence of each track, or only at the given positions."""
    _check_snapshot(playlist, snapshot)
    items = _order(conn, playlist.id)
    drop: set[int] = set()
    for track_id, positions in removals:
        if positions is None:
            drop.update(n for n, item in enumerate(items) if item[0] == track_id)
            continue
        for p in positions:
            if not 0 <= p < len(items) or items[p][0] != track_id:
                raise CatalogError(f"No legato:track:{track_id} at position {p}")
            drop.add(p)
    _rewrite(conn, playlist.id, [item for n, item in enumerate(items) if n not in drop])
    return _bump(conn, playlist)


def save_tracks(conn: sqlite3.Connection, user_id: int, ids: Sequence[str], now_ms: int) -> None:
    known_tracks(conn, ids)
    conn.executemany(
        "INSERT OR IGNORE INTO saved_tracks (user_id, track_id, added_ms) VALUES (?, ?, ?)",
        [(user_id, i, now_ms + n) for n, i in enumerate(ids)],  # keeps the order given
    )


def unsave_tracks(conn: sqlite3.Connection, user_id: int, ids: Sequence[str]) -> None:
    conn.executemany(
        "DELETE FROM saved_tracks WHERE user_id = ? AND track_id = ?", [(user_id, i) for i in ids]
    )


def saved_contains(conn: sqlite3.Connection, user_id: int, ids: Sequence[str]) -> list[bool]:
    unique = list(dict.fromkeys(ids))
    have = {
        r[0]
        for r in conn.execute(
            f"SELECT track_id FROM saved_tracks WHERE user_id = ? AND track_id IN"
            f" ({','.join('?' * len(unique))})",
            [user_id, *unique],
        )
    }
    return [i in have for i in ids]


@dataclass(frozen=True, slots=True)
class Saved:
    track_id: str
    added_ms: int


def saved_page(
    conn: sqlite3.Connection, user_id: int, limit: int, offset: int
) -> tuple[list[Saved], int]:
    """One page of a listener's saved tracks, newest first, and how many they saved."""
    total = conn.execute("SELECT COUNT(*) FROM saved_tracks WHERE user_id = ?", (user_id,))
    rows = conn.execute(
        "SELECT track_id, added_ms FROM saved_tracks WHERE user_id = ?"
        " ORDER BY added_ms DESC, track_id LIMIT ? OFFSET ?",
        (user_id, limit, offset),
    ).fetchall()
    return [Saved(r[0], r[1]) for r in rows], int(total.fetchone()[0])
