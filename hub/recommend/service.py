"""``Recommender``: the one object the faces and the player ask for recommendations.

Radio (a play context ``legato:radio:KIND:ID``, and autoplay when a context ends)
and ``/v1/recommendations`` call it with seeds and the listener; it answers with
catalog track ids in the order to play.  With a trained model it ranks by the blend
(:mod:`hub.recommend.rank`) over precomputed factors: one matrix-vector product and a
partial sort per request, one query for the listener's own history.  Until a model
has been trained it ranks by content alone (:mod:`hub.catalog.recommend`), so a fresh
hub still has radio.  ``refresh`` (called off the event loop) picks up the newest
finished training run.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from connect_protocol.uris import RADIO_SEED_KINDS, split_uri
from hub.catalog import recommend as content
from hub.db import Database
from hub.errors import CatalogError
from hub.listening import settings
from hub.recommend import catalog as catalog_arrays
from hub.recommend import model as model_files
from hub.recommend.arrays import POOL, Scoring
from hub.recommend.feedback import EARLY_SKIP
from hub.recommend.rank import DISCOVERY_DAYS, arrange

logger = logging.getLogger(__name__)

DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class History:
    """What a listener's plays rule out: early skips (never again) and recent plays."""

    banned: frozenset[str] = frozenset()
    recent: frozenset[str] = frozenset()


@dataclass(slots=True, kw_only=True)
class Ask:
    """One request: seeds, how many, what to leave out and which tracks may come."""

    seed_tracks: Sequence[str] = ()
    seed_artists: Sequence[str] = ()
    seed_genres: Sequence[str] = ()
    limit: int = 20
    exclude: Collection[str] = ()
    allowed: Collection[str] | None = None  # None: any track
    pull: dict[str, float] = field(default_factory=dict)  # track id -> bonus (targets)
    discovery: bool = False


def history(
    conn: sqlite3.Connection,
    user_id: int,
    now_ms: int,
    *,
    known: tuple[npt.NDArray[np.str_], int] | None = None,
) -> History:
    """What the listener's plays rule out now.  ``known``: the early skips a model holds
    for them and when it was trained; then only plays since then (or since the start of
    the discovery window, if earlier) are read, a short range of the listener's index
    rather than their whole history."""
    since = now_ms - DISCOVERY_DAYS * DAY_MS
    start = min(since, known[1]) if known is not None else 0
    rows = conn.execute(
        f"SELECT p.track_id, MAX({EARLY_SKIP}), MAX(p.played_ms) FROM plays p"
        " JOIN tracks t ON t.id = p.track_id WHERE p.user_id = ? AND p.played_ms >= ?"
        " GROUP BY p.track_id",
        (user_id, start),
    ).fetchall()
    banned = {r[0] for r in rows if r[1]}
    if known is not None:
        banned.update(known[0].tolist())
    return History(
        banned=frozenset(banned),
        recent=frozenset(r[0] for r in rows if r[2] >= since),
    )


def newest_model(conn: sqlite3.Connection) -> str | None:
    row = conn.execute(
        "SELECT model_path FROM recommender_runs WHERE finished_ms IS NOT NULL"
        " AND error IS NULL AND model_path IS NOT NULL ORDER BY id DESC LIMIT 1"
    ).fetchone()
    return row[0] if row else None


class Recommender:
    def __init__(self, db: Database, data_dir: Path) -> None:
        # One BLAS thread in the serving process: a request is one small matrix-vector
        # product, which BLAS threads only slow down (p50 6x here when both cores were
        # busy), and the hub's other requests want the other core.
        threadpool_limits(1, user_api="blas")
        self.db = db
        self.data_dir = data_dir
        self._scoring: Scoring | None = None
        self._loaded: tuple[str | None, int, int] | None = None
        self._lock = threading.Lock()
        self._threads = threading.local()  # each serving thread's own read connection

    def _reader(self) -> sqlite3.Connection:
        """This thread's read connection, kept open: opening one (and its pragmas) cost
        more than the listener's history query it serves.  In WAL mode each query reads
        the latest commit."""
        conn: sqlite3.Connection | None = getattr(self._threads, "conn", None)
        if conn is None:
            conn = self._threads.conn = self.db.connect()
        return conn

    def refresh(self) -> bool:
        """Load the newest model (and the catalog as it is now) if either changed;
        blocking, so callers run it in a thread.  True when something was loaded."""
        with self.db.reading() as conn:
            path = newest_model(conn)
            count, last = conn.execute("SELECT COUNT(*), MAX(rowid) FROM tracks").fetchone()
            key = (path, int(count), int(last or 0))
            if key == self._loaded:
                return False
            with self._lock:
                cat = catalog_arrays.load(conn)
        model = None
        if path is not None:
            try:
                model = model_files.load(self.data_dir / path)
            except OSError:
                logger.exception("recommender model %s unreadable; content only", path)
        self._scoring = Scoring.build(cat, model)
        self._loaded = key
        return True

    @property
    def trained(self) -> bool:
        return self._scoring is not None and self._scoring.model is not None

    def scoring(self) -> Scoring:
        if self._scoring is None:
            self.refresh()
        assert self._scoring is not None
        return self._scoring

    def recommend(self, user_id: int | None, ask: Ask) -> list[str]:
        """Track ids for ``ask``, personalised for ``user_id`` and under the rules."""
        s = self.scoring()
        now = int(time.time() * 1000)
        hist = History()
        taste_of = user_id
        if user_id is not None:
            conn = self._reader()
            known = s.known_skips(user_id)
            cleared = settings.history_cleared_ms(conn, user_id)
            if known is not None and cleared is not None and cleared >= known[1]:
                known, taste_of = None, None  # they cleared it since: the model forgets them
            hist = history(conn, user_id, now, known=known)
        seeds = s.indices(ask.seed_tracks)
        artist_rows = self._artist_tracks(s, ask.seed_artists, ask.seed_genres)
        scores = s.scores(taste_of, np.concatenate([seeds, artist_rows]).astype(np.int64))
        if ask.pull:
            # a track without audio features cannot meet a target: it gets the pull of
            # the farthest one that has features, never more
            bonus = np.full_like(scores, min(ask.pull.values()))
            for tid, value in ask.pull.items():
                if tid in s.index:
                    bonus[s.index[tid]] = value
            scores = scores + bonus
        excluded = np.zeros(s.cat.size, dtype=bool)
        excluded[s.indices([*ask.exclude, *ask.seed_tracks, *hist.banned])] = True
        if ask.allowed is not None:
            allowed = np.zeros(s.cat.size, dtype=bool)
            allowed[s.indices(ask.allowed)] = True
            excluded |= ~allowed
        recent = hist.recent if ask.discovery else frozenset()
        return s.pick(scores, excluded, ask.limit, banned=hist.banned, recent=recent)

    @staticmethod
    def _artist_tracks(
        s: Scoring, artists: Sequence[str], genres: Sequence[str]
    ) -> npt.NDArray[np.int64]:
        cat = s.cat
        wanted_a = np.isin(cat.artist_ids, list(artists)) if artists else None
        rows = np.zeros(0, dtype=np.int64)
        if wanted_a is not None and wanted_a.any():
            rows = np.flatnonzero(np.isin(cat.artist, np.flatnonzero(wanted_a)))[:50]
        if genres:
            g = [cat.genres.index(x.lower()) for x in genres if x.lower() in cat.genres]
            rows = np.concatenate([rows, np.flatnonzero(np.isin(cat.genre, g))[:50]])
        return rows.astype(np.int64)

    def ruled(self, user_id: int | None, ranked: Sequence[str], limit: int) -> list[str]:
        """Picks ranked by content alone (best first, before any model is trained) under
        the blend's rules: none of the listener's early skips, at most two tracks per
        artist and never two in a row, a spread of genres."""
        s = self.scoring()
        banned: frozenset[str] = frozenset()
        if user_id is not None:
            banned = history(self._reader(), user_id, int(time.time() * 1000)).banned
        rows = s.indices(ranked)
        order = -np.arange(len(rows), dtype=np.float32)
        return arrange(s.candidates(rows, order), limit=limit, banned=banned)

    def radio(
        self,
        user_id: int | None,
        seed_uri: str,
        *,
        limit: int = 50,
        exclude: Collection[str] = (),
    ) -> list[str]:
        """Track ids to play after (or instead of) ``seed_uri``: a track, album or artist.

        ``exclude`` holds track ids that must not come back (what just played).
        """
        parsed = split_uri(seed_uri)
        if parsed is None or parsed.kind not in RADIO_SEED_KINDS:
            raise CatalogError(f"A radio starts from a track, album or artist, not {seed_uri!r}")
        with self.db.reading() as conn:
            if parsed.kind == "album":
                seed_tracks = [
                    r[0]
                    for r in conn.execute(
                        "SELECT id FROM tracks WHERE album_id = ? ORDER BY popularity DESC LIMIT 5",
                        (parsed.id,),
                    )
                ]
                seed_artists: list[str] = []
            elif parsed.kind == "track":
                seed_tracks, seed_artists = [parsed.id], []
            else:
                seed_tracks, seed_artists = [], [parsed.id]
            if not seed_tracks and not seed_artists:
                raise CatalogError(f"Unknown radio seed {seed_uri!r}")
            skip = set(exclude) | set(seed_tracks)
            if self.scoring().model is None:  # untrained: content alone, same rules
                picked, _ = content.recommend(
                    conn, seed_tracks, seed_artists, [], (limit + len(skip)) * POOL
                )
                return self.ruled(user_id, [t for t in picked if t not in skip], limit)
        ask = Ask(seed_tracks=seed_tracks, seed_artists=seed_artists, limit=limit, exclude=skip)
        return self.recommend(user_id, ask)
