"""``Recommender``: the one object the faces and the player ask for recommendations.

Radio (a play context ``legato:radio:KIND:ID``, and autoplay when a context ends)
and ``/v1/recommendations`` call it with seeds and the listener; it answers with
catalog track ids in the order to play.  Until a model has been trained it ranks
by content alone (:mod:`hub.catalog.recommend`), so a fresh hub still has radio.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from connect_protocol.uris import split_uri
from hub.catalog import recommend as content
from hub.db import Database
from hub.errors import CatalogError

#: The kinds a radio may start from.
RADIO_SEED_KINDS = ("track", "album", "artist")


class Recommender:
    def __init__(self, db: Database, data_dir: Path) -> None:
        self.db = db
        self.data_dir = data_dir

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
            picked, _ = content.recommend(conn, seed_tracks, seed_artists, [], limit + len(skip))
        return [t for t in picked if t not in skip][:limit]
