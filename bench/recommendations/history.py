"""A year of listening with planted taste structure, as numpy arrays (no I/O here).

Why: a recommender benchmark measures nothing unless the history has something to
find.  Here every track belongs to one of G tastes (genres); each listener holds 2-3
of them with their own weights; most plays come from those tastes (Zipf popularity
within a taste, repeats of what the listener already played, new releases while they
are fresh), the rest are noise from anywhere by global popularity and are mostly
skipped early.  Audio features are drawn around a per-taste centroid, so content
carries the same signal.  Albums keep being released through the year, so the last
weeks hold tracks with few plays (cold) that their taste's listeners go on to like.

Everything is vectorised: 10M plays take seconds, not minutes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

DAY_MS = 86_400_000
I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
B = npt.NDArray[np.bool_]

_PREFIXES = ("deep", "dark", "indie", "neo", "post", "lo-fi", "acid", "dream", "nu", "free")
_BASES = ("pop", "rock", "jazz", "house", "techno", "folk", "soul", "metal", "punk", "disco")
_BASES2 = ("funk", "dub", "trance", "blues", "country", "ambient", "grime", "ska", "drill")
TASTE_NAMES = tuple(f"{p} {b}" for b in _BASES + _BASES2 for p in _PREFIXES)

#: Continuous audio features (the ``audio_features`` column) and the range drawn in.
FEATURES: tuple[tuple[str, float, float], ...] = (
    ("danceability", 0.0, 1.0),
    ("energy", 0.0, 1.0),
    ("valence", 0.0, 1.0),
    ("acousticness", 0.0, 1.0),
    ("instrumentalness", 0.0, 1.0),
    ("speechiness", 0.0, 1.0),
    ("liveness", 0.0, 1.0),
    ("loudness", -30.0, 0.0),
    ("tempo", 60.0, 200.0),
    ("spectral_centroid", 500.0, 5000.0),
    ("spectral_flatness", 0.0, 1.0),
    ("spectral_rolloff", 1000.0, 12000.0),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Shape:
    """The generated history's parameters (the README describes each)."""

    listeners: int
    tracks: int
    plays: int
    tastes: int = 50
    seed: int = 1
    end_ms: int  # the last play starts before this instant
    days: int = 365
    noise: float = 0.15  # share of plays drawn from anywhere by global popularity
    repeat: float = 0.3  # share of in-taste plays that replay one of the listener's own
    fresh: float = 0.2  # share of in-taste plays going to a new release of the taste
    new_albums: float = 0.12  # share of albums released during the year
    hype_days: float = 30.0  # a new release's plays fall off over about this long
    zipf: float = 1.0  # popularity exponent within a taste (rank ** -zipf)
    feature_sd: float = 0.07  # a track's spread around its taste centroid (unit range)

    @property
    def start_ms(self) -> int:
        return self.end_ms - self.days * DAY_MS

    @property
    def artists(self) -> int:
        return max(4 * self.tastes, self.tracks // 20)

    @property
    def albums(self) -> int:
        return max(self.artists, self.tracks // 10)


@dataclass(frozen=True, slots=True)
class Catalog:
    """Artists, albums and tracks by index; a track's taste is its artist's."""

    artist_taste: I32
    album_artist: I32
    album_release_ms: I64
    album_new: B  # released during the year
    track_album: I32
    track_number: I32
    track_duration_ms: I32
    track_rank: I32  # popularity rank within its taste, 0 = most played
    track_popularity: I32  # 0-100, how the plays are drawn (not written: see load.py)
    features: F64  # tracks x len(FEATURES), in each feature's own unit
    key: I32
    mode: I32
    time_signature: I32

    @property
    def track_taste(self) -> I32:
        return self.artist_taste[self.album_artist[self.track_album]]

    @property
    def track_release_ms(self) -> I64:
        return self.album_release_ms[self.track_album]

    @property
    def track_artist(self) -> I32:
        return self.album_artist[self.track_album]


@dataclass(frozen=True, slots=True)
class Plays:
    """One row per play, in the order they started (the order of ``plays.id``)."""

    user: I32  # listener index
    track: I32
    started_ms: I64
    ms_played: I32
    skipped: B
    finished: B
    noise: B  # drawn outside the listener's tastes (ground truth, not stored)


@dataclass(frozen=True, slots=True)
class History:
    shape: Shape
    catalog: Catalog
    listener_tastes: I32  # listeners x 3, -1 where a listener has only 2
    listener_weights: F64  # listeners x 3, each row sums to 1
    plays: Plays


def generate(shape: Shape) -> History:
    rng = np.random.default_rng(shape.seed)
    catalog = _catalog(shape, rng)
    tastes, weights = _listeners(shape, rng)
    plays = _plays(shape, catalog, tastes, weights, rng)
    return History(shape, catalog, tastes, weights, plays)


def _zipf_popularity(rank: I32, size: I64) -> I32:
    """0-100 from a rank among ``size`` (the search bench's formula: few are popular)."""
    value = 100 * (1 - np.log(rank + 1) / np.log(size + 1))
    return np.clip(np.round(value), 0, 100).astype(np.int32)


def _catalog(shape: Shape, rng: np.random.Generator) -> Catalog:
    g, n_art, n_alb, n_tr = shape.tastes, shape.artists, shape.albums, shape.tracks
    artist_taste = rng.permutation(np.arange(n_art) % g).astype(np.int32)
    album_artist = np.concatenate([np.arange(n_art), rng.integers(0, n_art, n_alb - n_art)])
    album_artist = rng.permutation(album_artist).astype(np.int32)
    album_new = rng.random(n_alb) < shape.new_albums
    back = shape.start_ms - rng.integers(DAY_MS, 40 * 365 * DAY_MS, n_alb)
    during = shape.start_ms + rng.integers(0, shape.days * DAY_MS, n_alb)
    album_release_ms = np.where(album_new, during, back).astype(np.int64)
    # every album gets at least one track (when there are enough tracks)
    first = np.arange(min(n_alb, n_tr))
    track_album = np.sort(np.concatenate([first, rng.integers(0, n_alb, n_tr - first.size)]))
    track_album = track_album.astype(np.int32)
    starts = np.searchsorted(track_album, track_album, side="left")
    track_number = (np.arange(n_tr) - starts + 1).astype(np.int32)
    taste = artist_taste[album_artist[track_album]]
    # a random rank within each taste: order by (taste, random key), then count
    order = np.lexsort((rng.random(n_tr), taste))
    sizes = np.bincount(taste, minlength=g)
    rank = np.empty(n_tr, np.int32)
    rank[order] = np.arange(n_tr) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    centroids = rng.uniform(0.15, 0.85, (g, len(FEATURES)))
    unit = np.clip(centroids[taste] + rng.normal(0, shape.feature_sd, (n_tr, len(FEATURES))), 0, 1)
    low = np.array([f[1] for f in FEATURES])
    high = np.array([f[2] for f in FEATURES])
    minor = rng.uniform(0.1, 0.9, g)
    waltz = rng.uniform(0.0, 0.3, g)
    return Catalog(
        artist_taste=artist_taste,
        album_artist=album_artist,
        album_release_ms=album_release_ms,
        album_new=album_new,
        track_album=track_album,
        track_number=track_number,
        track_duration_ms=rng.integers(120_000, 360_000, n_tr).astype(np.int32),
        track_rank=rank,
        track_popularity=_zipf_popularity(rank, sizes[taste]),
        features=low + unit * (high - low),
        key=rng.integers(0, 12, n_tr).astype(np.int32),
        mode=(rng.random(n_tr) >= minor[taste]).astype(np.int32),
        time_signature=np.where(rng.random(n_tr) < waltz[taste], 3, 4).astype(np.int32),
    )


def _listeners(shape: Shape, rng: np.random.Generator) -> tuple[I32, F64]:
    """2 or 3 tastes each, some tastes more common (Gumbel top-k over Zipf weights)."""
    n, g = shape.listeners, shape.tastes
    taste_p = 1 / np.sqrt(np.arange(1, g + 1))
    keys = np.log(taste_p) + rng.gumbel(size=(n, g))
    tastes = np.argsort(-keys, axis=1)[:, :3].astype(np.int32)
    weights = rng.dirichlet(np.full(3, 2.0), n)
    two = rng.random(n) < 0.5
    tastes[two, 2] = -1
    weights[two, 2] = 0
    weights /= weights.sum(axis=1, keepdims=True)
    return tastes, weights


def _plays_per_listener(shape: Shape, rng: np.random.Generator) -> I64:
    """Heavy-tailed activity (log-normal), at least 5 plays each, summing to ``plays``."""
    n = shape.listeners
    floor = min(5, shape.plays // n)
    share = rng.lognormal(0, 1, n)
    counts = floor + rng.multinomial(shape.plays - floor * n, share / share.sum())
    return counts.astype(np.int64)


def _plays(
    shape: Shape, catalog: Catalog, tastes: I32, weights: F64, rng: np.random.Generator
) -> Plays:
    counts = _plays_per_listener(shape, rng)
    user = np.repeat(np.arange(shape.listeners, dtype=np.int32), counts)
    n = user.size
    started = shape.start_ms + rng.integers(0, shape.days * DAY_MS, n)
    order = np.lexsort((started, user))  # by listener, then time
    started = started[order]
    noise = rng.random(n) < shape.noise
    pick = (rng.random(n)[:, None] > np.cumsum(weights, axis=1)[user]).sum(axis=1)
    taste = tastes[user, np.minimum(pick, 2)]
    taste = np.where(taste < 0, tastes[user, 0], taste)  # rounding past a 2-taste row
    track = _in_taste(shape, catalog, taste, started, rng)
    track[noise] = _by_popularity(shape, catalog, int(noise.sum()), rng)
    track = _repeats(shape, user, counts, noise, track, rng)
    ms_played, skipped, finished = _listening(catalog, track, noise, rng)
    by_time = np.argsort(started, kind="stable")
    return Plays(
        user=user[by_time],
        track=track[by_time],
        started_ms=started[by_time],
        ms_played=ms_played[by_time],
        skipped=skipped[by_time],
        finished=finished[by_time],
        noise=noise[by_time],
    )


def _in_taste(
    shape: Shape, catalog: Catalog, taste: I32, started: I64, rng: np.random.Generator
) -> I32:
    """Back catalog by Zipf rank, or a new release of the taste while it is fresh."""
    track_taste = catalog.track_taste
    release = catalog.track_release_ms
    old = release < shape.start_ms
    out = np.empty(taste.size, np.int32)
    fresh = rng.random(taste.size) < shape.fresh
    for g in range(shape.tastes):
        here = np.flatnonzero(taste == g)
        back = np.flatnonzero((track_taste == g) & old)
        if back.size == 0:  # a tiny catalog: the taste's new releases stand in
            back = np.flatnonzero(track_taste == g)
        cum = np.cumsum((catalog.track_rank[back] + 1.0) ** -shape.zipf)
        draws = np.searchsorted(cum, rng.random(here.size) * cum[-1])
        out[here] = back[np.minimum(draws, back.size - 1)]
        new = np.flatnonzero((track_taste == g) & ~old)
        new = new[np.argsort(release[new], kind="stable")]
        want = here[fresh[here]]
        if new.size == 0 or want.size == 0:
            continue
        # any release of the taste out in the last A days before the play, A drawn
        # exponentially: the fresher a release, the more of these plays it gets
        hi = np.searchsorted(release[new], started[want], side="right")
        age_ms = rng.exponential(shape.hype_days * DAY_MS, want.size).astype(np.int64)
        lo = np.searchsorted(release[new], started[want] - age_ms, side="left")
        # none that fresh (a small catalog): one of the last 10 out before the play
        lo = np.where(hi > lo, lo, np.maximum(0, hi - 10))
        ok = hi > lo
        index = lo + np.floor(rng.random(want.size) * (hi - lo)).astype(np.int64)
        out[want[ok]] = new[index[ok]]
    return out


def _by_popularity(shape: Shape, catalog: Catalog, count: int, rng: np.random.Generator) -> I32:
    """Noise: any back-catalog track, by its popularity within its own taste."""
    back = np.flatnonzero(catalog.track_release_ms < shape.start_ms)
    cum = np.cumsum((catalog.track_rank[back] + 1.0) ** -shape.zipf)
    draws = np.searchsorted(cum, rng.random(count) * cum[-1])
    picked: I32 = back[np.minimum(draws, back.size - 1)].astype(np.int32)
    return picked


def _repeats(
    shape: Shape, user: I32, counts: I64, noise: B, track: I32, rng: np.random.Generator
) -> I32:
    """Some in-taste plays replay one of the listener's earlier in-taste plays.

    Earlier plays are picked uniformly, so what was played often is replayed often.
    A replay of a replay follows the chain (pointer jumping) to the first draw.
    """
    n = user.size
    first = np.repeat(np.cumsum(counts) - counts, counts)
    position = np.arange(n) - first
    source = first + np.floor(rng.random(n) * position).astype(np.int64)
    again = (rng.random(n) < shape.repeat) & ~noise & (position > 0)
    again &= ~noise[source]
    source = np.where(again, source, np.arange(n))
    for _ in range(64):  # log2 of the longest chain; 64 covers any
        nxt = source[source]
        if np.array_equal(nxt, source):
            break
        source = nxt
    replayed: I32 = track[source]
    return replayed


def _listening(
    catalog: Catalog, track: I32, noise: B, rng: np.random.Generator
) -> tuple[I32, B, B]:
    """How long each play lasted: noise mostly skipped in its first seconds, the rest
    mostly finished, some skipped late or stopped part-way."""
    n = track.size
    duration = catalog.track_duration_ms[track]
    roll = rng.random(n)
    skip_early = noise & (roll < 0.8)
    skip_late = ~noise & (roll < 0.06)
    stopped = ~noise & (roll >= 0.06) & (roll < 0.11)
    early_ms = rng.integers(2_000, 30_000, n)
    part = (duration * rng.uniform(0.3, 0.9, n)).astype(np.int64)
    ms = np.where(skip_early, np.minimum(early_ms, duration), duration)
    ms = np.where(skip_late | stopped, part, ms)
    skipped = skip_early | skip_late
    finished = ~skipped & ~stopped
    return ms.astype(np.int32), skipped, finished
