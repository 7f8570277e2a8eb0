"""Writes a generated :class:`History` into a hub data directory's ``hub.db``.

The database is made by the hub's own migrations.  Rows go in with ``executemany`` in
big transactions, with ``synchronous=OFF`` and foreign-key checks off while loading
(the generator only makes consistent rows), and the ``plays`` indexes dropped and
rebuilt from their own SQL afterwards (sorting once beats 10M random index inserts).
One real account is made through ``hub.accounts.users.add_user`` (listener 0, so it
has a planted history too); the others get a hash that can never log in.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hub.accounts import users
from hub.catalog.ids import base62_id
from hub.context import hub_database
from hub.server import open_database

from .history import FEATURES, TASTE_NAMES, History

CHUNK = 500_000
#: An Argon2 verifier rejects it as malformed: no password logs these listeners in.
NO_LOGIN = "!bench-no-login"
ACCOUNT = "bench"
ACCOUNT_PASSWORD = "bench listener password"
PLANTED = "planted.json"


def taste_names(count: int) -> list[str]:
    """The genre each taste's artists carry (``artists.genres``)."""
    return list(TASTE_NAMES[:count])


def write(history: History, data_dir: Path, progress: Callable[[str], None]) -> dict[str, Any]:
    """Fill ``data_dir/hub.db`` (which must not exist yet); the loading figures."""
    if (data_dir / "hub.db").exists():
        raise FileExistsError(f"{data_dir / 'hub.db'} exists: generate into a new directory")
    db = open_database(data_dir)
    account = users.add_user(db, ACCOUNT, ACCOUNT_PASSWORD)
    started = time.monotonic()
    conn = hub_database(data_dir / "hub.db").connect()
    try:
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("PRAGMA foreign_keys = OFF")
        conn.execute("PRAGMA cache_size = -500000")
        conn.execute("BEGIN")
        ids = _catalog(conn, history, progress)
        user_ids = _users(conn, history, account.id)
        conn.execute("COMMIT")
        _plays(conn, history, ids, user_ids, progress)
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    _planted(history, data_dir / PLANTED, user_ids)
    return {"load_seconds": round(time.monotonic() - started, 1), "account": ACCOUNT}


def _rows(*columns: Sequence[Any]) -> Iterator[tuple[Any, ...]]:
    return zip(*columns, strict=True)


def _catalog(
    conn: sqlite3.Connection, history: History, progress: Callable[[str], None]
) -> list[str]:
    cat = history.catalog
    names = taste_names(history.shape.tastes)
    n_art, n_alb, n_tr = cat.artist_taste.size, cat.album_artist.size, cat.track_album.size
    art_ids = [base62_id(f"bench-artist:{i}") for i in range(n_art)]
    alb_ids = [base62_id(f"bench-album:{i}") for i in range(n_alb)]
    tr_ids = [base62_id(f"bench-track:{i}") for i in range(n_tr)]
    art_names = [f"{names[t].title()} Artist {i}" for i, t in enumerate(cat.artist_taste)]
    alb_names = [f"Album {i}" for i in range(n_alb)]
    progress(f"loading: {n_art:,} artists, {n_alb:,} albums, {n_tr:,} tracks")
    conn.executemany(
        "INSERT INTO artists (id, name, popularity, genres) VALUES (?, ?, ?, ?)",
        _rows(art_ids, art_names, [50] * n_art, [names[t] for t in cat.artist_taste]),
    )
    years = [time.gmtime(ms / 1000).tm_year for ms in cat.album_release_ms.tolist()]
    dates = [time.strftime("%Y-%m-%d", time.gmtime(ms / 1000)) for ms in cat.album_release_ms]
    conn.executemany(
        "INSERT INTO albums (id, name, release_date, release_year, popularity, label)"
        " VALUES (?, ?, ?, ?, 50, 'Bench Records')",
        _rows(alb_ids, alb_names, dates, years),
    )
    conn.executemany(
        "INSERT INTO album_artists (album_id, artist_id, position) VALUES (?, ?, 0)",
        _rows(alb_ids, [art_ids[a] for a in cat.album_artist]),
    )
    artist = cat.track_artist.tolist()
    album = cat.track_album.tolist()
    conn.executemany(
        "INSERT INTO tracks (id, name, artist, album, album_id, track_number, duration_ms,"
        " isrc, popularity) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        _rows(
            tr_ids,
            [f"Track {i}" for i in range(n_tr)],
            [art_names[a] for a in artist],
            [alb_names[a] for a in album],
            [alb_ids[a] for a in album],
            cat.track_number.tolist(),
            cat.track_duration_ms.tolist(),
            [f"XXBNC{i:07d}" for i in range(n_tr)],
            # no catalog popularity, as for a listener's own files: the generator's
            # would hand the blend the very distribution the plays are drawn from
            [0] * n_tr,
        ),
    )
    conn.executemany(
        "INSERT INTO track_artists (track_id, artist_id, position) VALUES (?, ?, 0)",
        _rows(tr_ids, [art_ids[a] for a in artist]),
    )
    columns = [f[0] for f in FEATURES]
    conn.executemany(
        f"INSERT INTO audio_features (track_id, {', '.join(columns)}, key, mode,"
        f" time_signature, measured) VALUES ({', '.join('?' * (len(columns) + 4))}, 1)",
        _rows(
            tr_ids,
            *cat.features.T.tolist(),
            cat.key.tolist(),
            cat.mode.tolist(),
            cat.time_signature.tolist(),
        ),
    )
    return tr_ids


def _users(conn: sqlite3.Connection, history: History, account_id: int) -> list[int]:
    """Database ids by listener index: listener 0 is the real account."""
    n = history.shape.listeners
    created = history.shape.start_ms
    conn.executemany(
        "INSERT INTO users (id, name, password_hash, created_ms) VALUES (?, ?, ?, ?)",
        ((account_id + i, f"listener-{i:06d}", NO_LOGIN, created) for i in range(1, n)),
    )
    return [account_id + i for i in range(n)]


def _plays(
    conn: sqlite3.Connection,
    history: History,
    track_ids: list[str],
    user_ids: list[int],
    progress: Callable[[str], None],
) -> None:
    plays = history.plays
    cat = history.catalog
    indexes = [
        (name, sql)
        for name, sql in conn.execute(
            "SELECT name, sql FROM sqlite_master"
            " WHERE type = 'index' AND tbl_name = 'plays' AND sql IS NOT NULL"
        )
    ]
    for name, _ in indexes:
        conn.execute(f"DROP INDEX {name}")
    tracks = np.array(track_ids, dtype=object)
    contexts = np.array(
        [f"legato:album:{base62_id(f'bench-album:{a}')}" for a in range(cat.album_artist.size)],
        dtype=object,
    )[cat.track_album]
    uids = np.array(user_ids, dtype=np.int64)
    devices = np.array([f"bench-speaker-{u}" for u in user_ids], dtype=object)
    total = plays.user.size
    started = time.monotonic()
    for lo in range(0, total, CHUNK):
        hi = min(lo + CHUNK, total)
        user, track = plays.user[lo:hi], plays.track[lo:hi]
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO plays (user_id, track_id, played_ms, ms_played, skipped, finished,"
            " context_uri, device_id, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'speaker')",
            _rows(
                uids[user].tolist(),
                tracks[track].tolist(),
                plays.started_ms[lo:hi].tolist(),
                plays.ms_played[lo:hi].tolist(),
                plays.skipped[lo:hi].astype(np.int8).tolist(),
                plays.finished[lo:hi].astype(np.int8).tolist(),
                contexts[track].tolist(),
                devices[user].tolist(),
            ),
        )
        conn.execute("COMMIT")
        rate = hi / max(1e-9, time.monotonic() - started)
        progress(f"loading: plays {hi:,}/{total:,} ({rate:,.0f}/s)")
    for name, sql in indexes:
        progress(f"loading: index {name}")
        conn.execute(sql)
    conn.execute("ANALYZE")


def _planted(history: History, path: Path, user_ids: list[int]) -> None:
    """The ground truth beside the database: each listener's tastes and weights."""
    names = taste_names(history.shape.tastes)
    listeners = {
        str(uid): {
            "tastes": [names[t] for t in row if t >= 0],
            "weights": [round(w, 3) for w, t in zip(wrow, row, strict=True) if t >= 0],
        }
        for uid, row, wrow in zip(
            user_ids,
            history.listener_tastes.tolist(),
            history.listener_weights.tolist(),
            strict=True,
        )
    }
    shape = history.shape
    doc = {
        "shape": {k: getattr(shape, k) for k in shape.__dataclass_fields__},
        "tastes": names,
        "listeners": listeners,
    }
    path.write_text(json.dumps(doc))
