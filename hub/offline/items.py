"""Offline download items in the database: what listeners asked a speaker to keep.

An item is a track, album or playlist URI per (device, account).  Items are
expanded to tracks whenever they are read, so a playlist that changes takes its
speaker's copy with it.  Progress is what the speaker last reported per track;
:func:`hub.offline.rules.item_progress` folds it into each item's state.
All functions take an open connection; the caller owns the transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from connect_protocol import codec
from connect_protocol.media import Manifest, Quality
from hub.catalog import library
from hub.catalog.resolve import parse_uri
from hub.errors import CatalogError, HubError
from hub.offline.rules import ItemState, TrackProgress, item_progress

KINDS = ("track", "album", "playlist")
MAX_URIS = 100
MAX_ERROR_CHARS = 500
_BATCH = 500


@dataclass(frozen=True, slots=True, kw_only=True)
class Item:
    user_id: int
    uri: str  # legato:{kind}:{id}
    name: str
    requested_ms: int

    @property
    def kind(self) -> str:
        return self.uri.split(":")[1]

    @property
    def id(self) -> str:
        return self.uri.split(":")[2]


@dataclass(frozen=True, slots=True)
class Entry:
    """One track of an item; ``position`` in the playlist for playlist items."""

    track_id: str
    position: int | None


def canonical(uri: str) -> str:
    """``legato:{kind}:{id}`` for a track, album or playlist URI (``spotify:`` too)."""
    try:
        parsed = parse_uri(uri)
    except CatalogError:
        raise CatalogError(
            f"cannot download {uri[:100]!r}: expected a legato:track:, legato:album: "
            "or legato:playlist: URI"
        ) from None
    if parsed.kind not in KINDS:
        raise CatalogError(f"cannot download {uri[:100]!r}: only tracks, albums and playlists")
    return f"legato:{parsed.kind}:{parsed.id}"


def canonical_list(uris: Sequence[str]) -> list[str]:
    """Up to :data:`MAX_URIS` URIs, canonical, without repeats."""
    if not uris:
        raise CatalogError("uris is empty: give one or more track, album or playlist URIs")
    if len(uris) > MAX_URIS:
        raise CatalogError(f"at most {MAX_URIS} URIs at a time")
    return list(dict.fromkeys(canonical(u) for u in uris))


def split_uris(text: str) -> list[str]:
    """A query's comma-separated URIs (``?uris=a,b``), canonical, without repeats."""
    return canonical_list([u.strip() for u in text.split(",") if u.strip()])


def named(conn: sqlite3.Connection, uri: str, user_id: int) -> str:
    """The name of what ``uri`` (canonical) names, if this listener may see it."""
    kind, item_id = uri.split(":")[1:]
    table = {"track": "tracks", "album": "albums", "playlist": "playlists"}[kind]
    row = conn.execute(f"SELECT name FROM {table} WHERE id = ?", (item_id,)).fetchone()
    if row is not None and kind == "playlist":
        try:
            library.get_playlist(conn, item_id, user_id)
        except HubError:
            row = None
    if row is None:
        raise CatalogError(f"cannot download {uri}: there is no such {kind} on this hub")
    return str(row[0])


def entries(conn: sqlite3.Connection, item: Item) -> list[Entry]:
    """The item's tracks now, in order, each once (a playlist's first occurrence)."""
    match item.kind:
        case "track":
            found = conn.execute("SELECT id FROM tracks WHERE id = ?", (item.id,)).fetchall()
            return [Entry(r[0], None) for r in found]
        case "album":
            rows = conn.execute(
                "SELECT id FROM tracks WHERE album_id = ? ORDER BY disc_number, track_number, id",
                (item.id,),
            )
            return [Entry(r[0], None) for r in rows]
        case _:
            try:
                library.get_playlist(conn, item.id, item.user_id)
            except HubError:
                return []  # gone, or no longer visible to this listener
            rows = conn.execute(
                "SELECT track_id, position FROM playlist_items WHERE playlist_id = ?"
                " ORDER BY position",
                (item.id,),
            )
            seen: dict[str, Entry] = {}
            for track_id, position in rows:
                seen.setdefault(track_id, Entry(track_id, position))
            return list(seen.values())


def items(conn: sqlite3.Connection, device_id: str, user_id: int | None = None) -> list[Item]:
    """The device's items (one account's when ``user_id`` is given), oldest first."""
    sql = "SELECT user_id, uri, name, requested_ms FROM downloads WHERE device_id = ?"
    args: tuple[Any, ...] = (device_id,)
    if user_id is not None:
        sql += " AND user_id = ?"
        args += (user_id,)
    rows = conn.execute(sql + " ORDER BY requested_ms, uri", args)
    return [Item(user_id=r[0], uri=r[1], name=r[2], requested_ms=r[3]) for r in rows]


def add(conn: sqlite3.Connection, device_id: str, new: Iterable[Item]) -> None:
    """Record items; one asked for again keeps its first request time."""
    conn.executemany(
        "INSERT OR IGNORE INTO downloads (device_id, user_id, uri, name, requested_ms)"
        " VALUES (?, ?, ?, ?, ?)",
        [(device_id, i.user_id, i.uri, i.name, i.requested_ms) for i in new],
    )


def remove(
    conn: sqlite3.Connection, device_id: str, user_id: int, uris: Sequence[str] | None
) -> int:
    """Remove these items of the account on the device (all of them when ``uris`` is None)."""
    if uris is None:
        done = conn.execute(
            "DELETE FROM downloads WHERE device_id = ? AND user_id = ?", (device_id, user_id)
        )
        return done.rowcount
    removed = 0
    for uri in uris:
        done = conn.execute(
            "DELETE FROM downloads WHERE device_id = ? AND user_id = ? AND uri = ?",
            (device_id, user_id, uri),
        )
        removed += done.rowcount
    return removed


def track_ids(conn: sqlite3.Connection, of: Iterable[Item]) -> set[str]:
    return {e.track_id for item in of for e in entries(conn, item)}


def _batched(conn: sqlite3.Connection, sql: str, ids: Sequence[str]) -> Iterable[sqlite3.Row]:
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), _BATCH):
        chunk = unique[start : start + _BATCH]
        yield from conn.execute(sql.format(marks=",".join("?" * len(chunk))), chunk)


def track_details(conn: sqlite3.Connection, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Name, artists (credits in order), album and duration of each track."""
    out: dict[str, dict[str, Any]] = {}
    for r in _batched(
        conn,
        "SELECT t.id, t.name, t.artist, coalesce(al.name, t.album) AS album, t.duration_ms"
        " FROM tracks t LEFT JOIN albums al ON al.id = t.album_id WHERE t.id IN ({marks})",
        ids,
    ):
        out[r["id"]] = {
            "name": r["name"],
            "artists": [r["artist"]],
            "album": r["album"],
            "duration_ms": r["duration_ms"],
        }
    credits: dict[str, list[str]] = {}
    for r in _batched(
        conn,
        "SELECT c.track_id, a.name FROM track_artists c JOIN artists a ON a.id = c.artist_id"
        " WHERE c.track_id IN ({marks}) ORDER BY c.track_id, c.position",
        ids,
    ):
        credits.setdefault(r[0], []).append(r[1])
    for track_id, names in credits.items():
        out[track_id]["artists"] = names
    return out


# --- progress ---------------------------------------------------------------------------


def store_progress(
    conn: sqlite3.Connection, device_id: str, reports: Iterable[dict[str, Any]], now_ms: int
) -> None:
    conn.executemany(
        "INSERT INTO download_progress (device_id, track_id, state, bytes_done, bytes_total,"
        " error, updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (device_id, track_id)"
        " DO UPDATE SET state = excluded.state, bytes_done = excluded.bytes_done,"
        " bytes_total = excluded.bytes_total, error = excluded.error,"
        " updated_ms = excluded.updated_ms",
        [
            (
                device_id,
                r["track_id"],
                r["state"],
                r["bytes_done"],
                r["bytes_total"],
                r["error"][:MAX_ERROR_CHARS],
                now_ms,
            )
            for r in reports
        ],
    )


def forget_progress_except(conn: sqlite3.Connection, device_id: str, keep: set[str]) -> None:
    """Drop reports of tracks no item on the device holds any more."""
    stale = [
        r[0]
        for r in conn.execute(
            "SELECT track_id FROM download_progress WHERE device_id = ?", (device_id,)
        )
        if r[0] not in keep
    ]
    conn.executemany(
        "DELETE FROM download_progress WHERE device_id = ? AND track_id = ?",
        [(device_id, t) for t in stale],
    )


def progress(conn: sqlite3.Connection, device_id: str) -> dict[str, TrackProgress]:
    rows = conn.execute(
        "SELECT track_id, state, bytes_done, bytes_total, error FROM download_progress"
        " WHERE device_id = ?",
        (device_id,),
    )
    return {
        r[0]: TrackProgress(state=ItemState(r[1]), bytes_done=r[2], bytes_total=r[3], error=r[4])
        for r in rows
    }


def item_documents(conn: sqlite3.Connection, device_id: str, user_id: int) -> list[dict[str, Any]]:
    """The account's items on the device, each with its state (``GET .../downloads``)."""
    reports = progress(conn, device_id)
    out = []
    for item in items(conn, device_id, user_id):
        folded = item_progress([reports.get(e.track_id) for e in entries(conn, item)])
        out.append(
            {
                "uri": item.uri,
                "name": item.name,
                "requested_ms": item.requested_ms,
                "state": folded.state.value,
                "tracks": folded.tracks,
                "tracks_ready": folded.tracks_ready,
                "bytes_done": folded.bytes_done,
                "bytes_total": folded.bytes_total,
                "error": folded.error,
            }
        )
    return out


# --- size estimate ----------------------------------------------------------------------


def estimate(conn: sqlite3.Connection, ids: Sequence[str]) -> dict[str, Any]:
    """Tracks, bytes per quality (from the stored manifests) and duration of ``ids``."""
    sizes = {q.label: 0 for q in Quality}
    duration = 0
    for r in _batched(conn, "SELECT duration_ms FROM tracks WHERE id IN ({marks})", ids):
        duration += int(r[0])
    for r in _batched(
        conn, "SELECT track_id, manifest_json FROM media WHERE track_id IN ({marks})", ids
    ):
        manifest = codec.decode(Manifest, r[1])
        if isinstance(manifest, codec.DecodeError):
            raise HubError(f"stored manifest of {r[0]} is unreadable: {manifest.message}")
        for rendition in manifest.renditions:
            if rendition.quality in sizes:
                sizes[rendition.quality] += sum(s.bytes for s in rendition.segments)
    return {"tracks": len(set(ids)), "bytes": sizes, "duration_ms": duration}


def forget_all_progress(conn: sqlite3.Connection, device_id: str) -> None:
    """A new install on the speaker: its cache is empty, whatever the old one reported."""
    conn.execute("DELETE FROM download_progress WHERE device_id = ?", (device_id,))
