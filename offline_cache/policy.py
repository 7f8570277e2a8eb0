"""What the offline cache downloads first and what it lets go of: pure functions over values.

The store (files, index, keys) asks these two questions and does what they answer, so
the rules live here, tested directly and with hypothesis, with time passed in:

- **Download order**: partial downloads are resumed first (their bytes are already
  paid for), then explicit requests (oldest request first), then recently played
  tracks (most recent first), then tracks by their position in a downloaded
  playlist.  Ties fall back to the track id, so the order is total and stable.
- **Eviction** (:func:`evict`): what has not been played for 90 days goes, then
  what was downloaded for a playlist that no longer holds it, then the least
  recently used until the cache is under its cap.  Explicit downloads (and tracks
  of downloaded playlists) are pinned: never evicted, and never for an expired
  licence alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum

DAY_MS = 24 * 60 * 60 * 1000
STALE_AFTER_MS = 90 * DAY_MS  # not played for this long: first to go


class Reason(IntEnum):
    """Why a track is wanted; lower sorts first."""

    PARTIAL = 0
    EXPLICIT = 1
    RECENTLY_PLAYED = 2
    PLAYLIST = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class Wanted:
    """A track the speaker should have offline, and why."""

    track_id: str
    explicit_at_ms: int | None = None  # when a listener asked for it
    played_at_ms: int | None = None  # when it last played here
    playlist_position: int | None = None  # its place in a downloaded playlist
    bytes_done: int = 0  # of a download begun and not finished
    bytes_total: int = 0

    @property
    def partial(self) -> bool:
        return 0 < self.bytes_done < self.bytes_total

    @property
    def reason(self) -> Reason:
        if self.partial:
            return Reason.PARTIAL
        if self.explicit_at_ms is not None:
            return Reason.EXPLICIT
        if self.played_at_ms is not None:
            return Reason.RECENTLY_PLAYED
        return Reason.PLAYLIST


def _download_key(w: Wanted) -> tuple[int, int, str]:
    reason = w.reason
    if reason is Reason.PARTIAL:
        within = -w.bytes_done  # the nearest to done first
    elif reason is Reason.EXPLICIT:
        within = w.explicit_at_ms or 0
    elif reason is Reason.RECENTLY_PLAYED:
        within = -(w.played_at_ms or 0)
    else:
        within = w.playlist_position if w.playlist_position is not None else 2**62
    return (int(reason), within, w.track_id)


def download_order(wanted: Iterable[Wanted]) -> list[Wanted]:
    """What to fetch next, first first; each track once (its most urgent reason)."""
    best: dict[str, Wanted] = {}
    for w in wanted:
        known = best.get(w.track_id)
        # the whole value breaks ties, so the choice never depends on the input's order
        if known is None or (_download_key(w), repr(w)) < (_download_key(known), repr(known)):
            best[w.track_id] = w
    return sorted(best.values(), key=_download_key)


@dataclass(frozen=True, slots=True, kw_only=True)
class Cached:
    """A track's segments in the cache, as the index knows them."""

    track_id: str
    size: int
    last_used_ms: int  # last played (or fetched, if never played)
    downloaded: bool = False  # an explicit download of the track (or its album)
    via_playlist: bool = False  # downloaded because a downloaded playlist held it
    in_downloaded_playlist: bool = False  # some downloaded playlist holds it now

    @property
    def pinned(self) -> bool:
        """Offline downloads stay until the listener removes them (or a revocation
        shreds them); an expired licence alone removes nothing."""
        return self.downloaded or (self.via_playlist and self.in_downloaded_playlist)


def evict(items: Sequence[Cached], *, now_ms: int, cap_bytes: int) -> list[str]:
    """The track ids to remove, in removal order.

    1. not pinned and not played for 90 days (whatever the cap);
    2. downloaded for a playlist that no longer holds it (whatever the cap);
    3. then the least recently used of the rest that is not pinned, while the cache
       is over ``cap_bytes``.
    Pinned downloads are never chosen, even over the cap (the download manager refuses
    new downloads instead).
    """
    if cap_bytes < 0:
        raise ValueError("cap_bytes must be >= 0")
    lru = sorted(items, key=lambda c: (c.last_used_ms, c.track_id))
    out: list[Cached] = [
        c for c in lru if not c.pinned and now_ms - c.last_used_ms >= STALE_AFTER_MS
    ]
    out += [c for c in lru if c.via_playlist and not c.pinned and c not in out]
    chosen = {c.track_id for c in out}
    total = sum(c.size for c in items) - sum(c.size for c in out)
    for c in lru:
        if total <= cap_bytes:
            break
        if not c.pinned and c.track_id not in chosen:
            out.append(c)
            chosen.add(c.track_id)
            total -= c.size
    return [c.track_id for c in out]
