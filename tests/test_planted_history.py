"""The recommender bench's generated history holds the structure it claims to plant.

If it did not (listeners' plays spread evenly, skips at random, features unrelated to
genre), the bench would compare models on noise and every target would mean nothing.
The generator is run as the bench runs it (``bench/recommend.py --generate-only``) and
what it wrote is read back from the hub database with plain SQL.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hub.schema import MIGRATIONS

REPO = Path(__file__).resolve().parents[1]
LISTENERS, TRACKS, PLAYS, TASTES = 300, 3000, 40_000, 20
DAY_MS = 86_400_000
FEATURES = (
    "danceability, energy, valence, acousticness, instrumentalness, speechiness, liveness,"
    " loudness, tempo, spectral_centroid, spectral_flatness, spectral_rolloff"
)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("planted") / "hub-data"
    args = ["--listeners", str(LISTENERS), "--tracks", str(TRACKS), "--plays", str(PLAYS)]
    args += ["--tastes", str(TASTES), "--data", str(data)]
    subprocess.run(
        [sys.executable, "bench/recommend.py", "--generate-only", *args],
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=90,
    )
    return data


def _read(data: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(data / "hub.db")
    try:
        return list(conn.execute(sql))
    finally:
        conn.close()


def _plays(data: Path) -> list[tuple[int, str, int, int, int]]:
    """(user id, the track's genre, skipped, ms played, started) of every play."""
    rows = _read(
        data,
        "SELECT p.user_id, a.genres, p.skipped, p.ms_played, p.played_ms FROM plays p"
        " JOIN track_artists ta ON ta.track_id = p.track_id AND ta.position = 0"
        " JOIN artists a ON a.id = ta.artist_id",
    )
    return [(int(u), str(g), int(s), int(m), int(t)) for u, g, s, m, t in rows]


def _tastes(data: Path) -> dict[int, set[str]]:
    planted = json.loads((data / "planted.json").read_text())
    return {int(uid): set(doc["tastes"]) for uid, doc in planted["listeners"].items()}


def test_a_hub_database_of_the_asked_size_with_one_real_account(generated: Path) -> None:
    assert _read(generated, "PRAGMA user_version") == [(len(MIGRATIONS),)]
    assert _read(generated, "SELECT count(*) FROM plays") == [(PLAYS,)]
    assert _read(generated, "SELECT count(*) FROM tracks") == [(TRACKS,)]
    assert _read(generated, "SELECT count(*) FROM users") == [(LISTENERS,)]
    hashes = Counter(str(h)[:9] for (h,) in _read(generated, "SELECT password_hash FROM users"))
    assert hashes["$argon2id"] == 1  # the account made by the hub's own add_user
    assert _read(generated, "SELECT count(DISTINCT genres) FROM artists") == [(TASTES,)]
    assert _read(generated, "SELECT min(measured) FROM audio_features") == [(1,)]


def test_each_listener_plays_mostly_their_own_two_or_three_tastes(generated: Path) -> None:
    tastes = _tastes(generated)
    assert {len(t) for t in tastes.values()} == {2, 3}
    mine: dict[int, list[bool]] = defaultdict(list)
    for user, genre, *_ in _plays(generated):
        mine[user].append(genre in tastes[user])
    shares = np.array([np.mean(v) for v in mine.values() if len(v) >= 20])
    assert len(shares) > LISTENERS // 2
    assert np.median(shares) >= 0.8
    assert np.mean(shares >= 0.6) >= 0.95
    # and not everyone the same tastes: every taste is somebody's
    assert len(set().union(*tastes.values())) == TASTES


def test_skips_fall_mostly_on_noise_and_early(generated: Path) -> None:
    tastes = _tastes(generated)
    plays = _plays(generated)
    outside = [p for p in plays if p[1] not in tastes[p[0]]]
    inside = [p for p in plays if p[1] in tastes[p[0]]]
    skip_out = np.mean([p[2] for p in outside])
    skip_in = np.mean([p[2] for p in inside])
    assert skip_out >= 0.6 > 0.15 >= skip_in
    skipped = [p for p in plays if p[2]]
    assert np.mean([p[1] not in tastes[p[0]] for p in skipped]) >= 0.5
    assert np.median([p[3] for p in outside if p[2]]) < 30_000  # skipped in the first seconds


def test_audio_features_cluster_by_taste(generated: Path) -> None:
    """A nearest-centroid guess of a track's genre from its features is nearly always right."""
    rows = _read(
        generated,
        f"SELECT a.genres, {FEATURES} FROM audio_features f"
        " JOIN track_artists ta ON ta.track_id = f.track_id AND ta.position = 0"
        " JOIN artists a ON a.id = ta.artist_id",
    )
    genres = np.array([r[0] for r in rows])
    x = np.array([r[1:] for r in rows], dtype=float)
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    names = sorted(set(genres))
    centroids = np.array([x[genres == g].mean(axis=0) for g in names])
    guess = np.array(names)[((x[:, None, :] - centroids[None]) ** 2).sum(axis=2).argmin(axis=1)]
    assert np.mean(guess == genres) >= 0.9
    # while a shuffled labelling is no better than chance
    shuffled = np.random.default_rng(0).permutation(genres)
    wrong = np.array([x[shuffled == g].mean(axis=0) for g in names])
    guess = np.array(names)[((x[:, None, :] - wrong[None]) ** 2).sum(axis=2).argmin(axis=1)]
    assert np.mean(guess == shuffled) < 0.2


def test_recent_releases_are_cold_yet_played_by_their_tastes(generated: Path) -> None:
    """The last weeks hold tracks out for days only, with few plays, from their genre's
    listeners: what a recommender must find without a play history."""
    cutoff = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 60 * DAY_MS / 1000))
    recent = {
        str(t)
        for (t,) in _read(
            generated,
            "SELECT t.id FROM tracks t JOIN albums al ON al.id = t.album_id"
            f" WHERE al.release_date >= '{cutoff}'",
        )
    }
    assert recent
    counts = Counter(str(t) for (t,) in _read(generated, "SELECT track_id FROM plays"))
    played = [counts[t] for t in recent if counts[t]]
    assert played, "no recent release was played at all"
    assert np.mean(played) < PLAYS / TRACKS  # fewer plays than the average track
    tastes = _tastes(generated)
    by_whom = _read(
        generated,
        "SELECT p.user_id, a.genres FROM plays p"
        " JOIN track_artists ta ON ta.track_id = p.track_id AND ta.position = 0"
        " JOIN artists a ON a.id = ta.artist_id"
        f" WHERE p.track_id IN ({', '.join(repr(t) for t in sorted(recent))})",
    )
    assert np.mean([g in tastes[int(u)] for u, g in by_whom]) >= 0.8
