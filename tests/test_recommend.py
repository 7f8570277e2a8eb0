"""The recommender: confidence and the ranking rules as hypothesis properties, then a
real training run (the CLI's worker process) on a small planted-taste history, the
Weekly Mix it writes, /v1/recommendations over HTTP, and ``recommend evaluate``."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.accounts import tokens as token_issuer
from hub.accounts import users as accounts
from hub.catalog.ids import base62_id
from hub.db import Database
from hub.http.app import create_app
from hub.listening import retention
from hub.recommend.feedback import confidence
from hub.recommend.jobs import Schedule
from hub.recommend.model import prune
from hub.recommend.rank import Candidate, arrange, top
from hub.recommend.service import Ask, Recommender
from hub.server import open_database
from tests.recommend_fixtures import DAY_MS, Planted, planted_history
from tests.serving import offline_context, serving

# --- pure: confidence and the rules -----------------------------------------------------


@given(st.integers(0, 500), st.integers(0, 50))
def test_complete_plays_count_up_saturating_and_early_skips_count_down(
    plays: int, skips: int
) -> None:
    c = confidence(plays, skips)
    assert confidence(plays + 1, skips) > c
    assert confidence(plays, skips + 1) < c
    gain = confidence(plays + 1, skips) - c
    assert confidence(plays + 2, skips) - confidence(plays + 1, skips) < gain  # saturates


candidates = st.lists(
    st.builds(
        Candidate,
        id=st.text("abcdefghij", min_size=1, max_size=3),
        artist=st.sampled_from("ABCDEFG"),
        genre=st.sampled_from(["", "rock", "jazz", "folk"]),
        score=st.floats(-10, 10),
    ),
    max_size=60,
    unique_by=lambda c: c.id,
)


@given(candidates, st.integers(1, 30), st.data())
def test_a_mix_keeps_the_rules(cands: list[Candidate], limit: int, data: st.DataObject) -> None:
    ids = sorted({c.id for c in cands})
    banned = set(data.draw(st.lists(st.sampled_from(ids), max_size=5))) if ids else set()
    recent = set(data.draw(st.lists(st.sampled_from(ids), max_size=5))) if ids else set()
    artist = {c.id: c.artist for c in cands}
    out = arrange(cands, limit=limit, banned=banned, recent=recent)
    assert len(out) <= limit
    assert len(out) == len(set(out))
    assert not set(out) & (banned | recent)  # skipped early or played lately: never
    per_artist = Counter(artist[i] for i in out)
    assert max(per_artist.values(), default=0) <= 2
    assert all(artist[a] != artist[b] for a, b in itertools.pairwise(out))


@given(st.integers(4, 30), st.randoms(use_true_random=False))
def test_no_genre_takes_over_half_a_mix_while_another_can(limit: int, rng: object) -> None:
    import random

    assert isinstance(rng, random.Random)
    cands = [
        Candidate(f"{g}{a}{n}", f"{g}{a}", g, rng.random() + (1.0 if g == "rock" else 0.0))
        for g in ("rock", "jazz")
        for a in range(limit)
        for n in range(2)
    ]
    out = arrange(cands, limit=limit)
    assert len(out) == limit
    assert sum(i.startswith("rock") for i in out) <= -(-limit // 2)  # half, rounded up


@given(
    st.lists(st.floats(-1e6, 1e6, width=32), min_size=1, max_size=300),
    st.data(),
)
def test_top_is_the_best_allowed_best_first(scores: list[float], data: st.DataObject) -> None:
    x = np.array(scores, dtype=np.float32)
    excluded = np.array(data.draw(st.lists(st.booleans(), min_size=len(x), max_size=len(x))))
    n = data.draw(st.integers(1, 20))
    got = top(x, excluded, n)
    allowed = np.flatnonzero(~excluded)
    assert len(got) == min(n, len(allowed))
    assert not excluded[got].any()
    assert list(x[got]) == sorted(x[got], reverse=True)
    if len(got):
        assert x[got[-1]] >= np.sort(x[allowed])[::-1][len(got) - 1]


@pytest.mark.parametrize("seed", range(3))
def test_top_over_a_large_catalog_cuts_at_a_sampled_score_and_still_finds_the_best(
    seed: int,
) -> None:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(200_000).astype(np.float32)
    excluded = rng.random(200_000) < 0.1
    excluded[np.argsort(-x)[:50]] = True  # the very best are ruled out
    got = top(x, excluded, 180)
    exact = np.flatnonzero(~excluded)[np.argsort(-x[~excluded], kind="stable")[:180]]
    assert list(got) == list(exact)


def test_top_finds_the_few_allowed_when_the_sample_holds_none() -> None:
    scores = np.linspace(0, 1, 200_000, dtype=np.float32)
    excluded = np.ones(len(scores), dtype=bool)
    excluded[[7, 123_457]] = False  # a narrow min_/max_ filter: two tracks, off the sample
    assert top(scores, excluded, 20).tolist() == [123_457, 7]


def test_the_best_come_first_when_the_rules_allow() -> None:
    cands = [Candidate(f"t{i}", f"a{i}", "", float(-i)) for i in range(10)]
    assert arrange(cands, limit=5) == ["t0", "t1", "t2", "t3", "t4"]


# --- a trained hub ----------------------------------------------------------------------


@dataclass
class Trained:
    data: Path
    db: Database
    planted: Planted
    figures: dict[str, object]
    ann: str  # access tokens of two listeners with different tastes
    bob: str


def hub_cli(data: Path, *args: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-m", "hub", *args, "--data", str(data), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    data = tmp_path_factory.mktemp("recommend")
    db = open_database(data)
    ann = accounts.add_user(db, "ann", "password-ann")
    bob = accounts.add_user(db, "bob", "password-bob")
    planted = planted_history(db, listeners_n=200, first_id=ann.id)
    assert planted.tastes_of_user[ann.id] != planted.tastes_of_user[bob.id]
    figures = hub_cli(data, "recommend", "train")
    tokens = [token_issuer.issue_token(db, u).access_token for u in (ann, bob)]
    return Trained(data, db, planted, figures, *tokens)


def test_training_reports_its_figures(trained: Trained) -> None:
    f = trained.figures
    assert set(f) >= {"seconds", "listeners", "tracks", "plays", "factors", "iterations",
                      "peak_rss_mib", "weekly_mixes", "model", "train_seconds",
                      "mix_seconds"}  # fmt: skip
    train_s, mix_s, total_s = (
        float(str(f[k])) for k in ("train_seconds", "mix_seconds", "seconds")
    )
    assert 0 < train_s <= total_s
    assert train_s + mix_s <= total_s
    assert f["listeners"] == f["weekly_mixes"] == 200
    assert (trained.data / str(f["model"]) / "item_factors.npy").exists()
    with trained.db.reading() as conn:
        run = conn.execute("SELECT finished_ms, error FROM recommender_runs").fetchone()
    assert run[0] is not None
    assert run[1] is None


def mix_of(db: Database, user_id: int) -> list[str]:
    with db.reading() as conn:
        return [
            r[0]
            for r in conn.execute(
                "SELECT i.track_id FROM playlists p JOIN playlist_items i ON i.playlist_id = p.id"
                " WHERE p.owner_id = ? AND p.generated = 'weekly_mix' AND p.name = 'Weekly Mix'"
                " ORDER BY i.position",
                (user_id,),
            )
        ]


def test_the_weekly_mix_holds_mostly_unheard_tracks_of_the_listeners_taste(
    trained: Trained,
) -> None:
    p = trained.planted
    since = int(time.time() * 1000) - 60 * DAY_MS
    shares: list[float] = []
    for user in list(p.tastes_of_user)[:20]:
        mix = mix_of(trained.db, user)
        with trained.db.reading() as conn:
            plays = conn.execute(
                "SELECT track_id, played_ms, skipped FROM plays WHERE user_id = ?", (user,)
            ).fetchall()
        assert len(mix) == 30
        assert not {t for t, when, _ in plays if when >= since} & set(mix)
        assert not {t for t, _, skipped in plays if skipped} & set(mix)
        heard = {t for t, _, _ in plays}
        unheard_mine = sum(
            t not in heard and p.taste_of_track[t] in p.tastes_of_user[user] for t in mix
        )
        shares.append(unheard_mine / len(mix))
        artists = [p.artist_of_track[t] for t in mix]
        assert max(Counter(artists).values()) <= 2
        assert all(a != b for a, b in itertools.pairwise(artists))
    # a clear majority never played and of the listener's tastes: on average, and for each
    assert sum(shares) / len(shares) >= 0.8, shares
    assert min(shares) >= 0.6, shares


@pytest.fixture
def api(trained: Trained) -> Iterator[str]:
    app = create_app(offline_context(trained.db, trained.data), manage_relay=False)
    with serving(app) as url:
        yield url


def recommendations(api: str, token: str, **params: str | int | float) -> httpx.Response:
    return httpx.get(
        f"{api}/v1/recommendations",
        params=params,
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )


def test_recommendations_are_personal_tuned_and_never_the_seeds(trained: Trained, api: str) -> None:
    p = trained.planted
    taste = p.tastes_of_user[1]  # ann
    seed = p.artists[taste[0]][0]
    r = recommendations(api, trained.ann, seed_artists=seed, limit=20)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["seeds"][0]["id"] == seed
    assert body["seeds"][0]["type"] == "ARTIST"
    ann = [t["id"] for t in body["tracks"]]
    assert len(ann) == 20
    bob = [
        t["id"] for t in recommendations(api, trained.bob, seed_genres="genre0").json()["tracks"]
    ]
    ann_g = [
        t["id"] for t in recommendations(api, trained.ann, seed_genres="genre0").json()["tracks"]
    ]
    assert ann_g != bob  # the same seed, two tastes: two lists
    track_seed = ann[0]
    got = recommendations(api, trained.ann, seed_tracks=track_seed, min_energy=0.5, limit=30)
    ids = [t["id"] for t in got.json()["tracks"]]
    assert ids
    assert track_seed not in ids
    with trained.db.reading() as conn:
        energy = dict(conn.execute("SELECT track_id, energy FROM audio_features").fetchall())
    assert all(energy[i] >= 0.5 for i in ids)
    assert recommendations(api, trained.ann, limit=5).status_code == 400  # no seeds
    mine = httpx.get(
        f"{api}/v1/me/playlists", headers={"Authorization": f"Bearer {trained.ann}"}, timeout=10
    ).json()
    assert [pl["name"] for pl in mine["items"]] == ["Weekly Mix"]
    assert mine["items"][0]["tracks"]["total"] == 30
    assert "Made for you on" in mine["items"][0]["description"]


def test_evaluate_prints_its_figures_and_the_blend_beats_popularity(trained: Trained) -> None:
    result = hub_cli(trained.data, "recommend", "evaluate", "--k", "20")
    assert set(result) == {"k", "split_ms", "listeners", "models", "train_seconds"}
    models = result["models"]
    assert isinstance(models, dict)
    assert set(models) == {"popularity", "content", "als", "blend", "blend_rules"}
    for m in models.values():
        assert set(m) == {"recall", "recall_ci", "ndcg", "ndcg_ci", "coverage", "artist_gini"}
        assert m["recall_ci"][0] <= m["recall"] <= m["recall_ci"][1]
    assert models["blend"]["ndcg"] > 2 * models["popularity"]["ndcg"]
    assert models["blend"]["ndcg"] >= models["als"]["ndcg"] * 0.95


def test_radio_continues_with_the_seeds_taste_and_never_what_just_played(
    trained: Trained,
) -> None:
    p = trained.planted
    ann = 1
    seed = next(t for t, taste in p.taste_of_track.items() if taste == p.tastes_of_user[ann][0])
    just_played = [t for t, taste in p.taste_of_track.items() if taste == p.taste_of_track[seed]][
        :5
    ]
    radio = Recommender(trained.db, trained.data)
    got = radio.radio(ann, f"legato:track:{seed}", limit=20, exclude=just_played)
    assert len(got) == 20
    assert seed not in got
    assert not set(just_played) & set(got)
    with trained.db.reading() as conn:
        skipped = {
            r[0]
            for r in conn.execute(
                "SELECT track_id FROM plays WHERE user_id = ? AND skipped = 1", (ann,)
            )
        }
    assert not skipped & set(got)
    same = sum(p.taste_of_track[t] == p.taste_of_track[seed] for t in got)
    assert same >= 0.5 * len(got)


def test_a_track_nobody_played_yet_is_ranked_through_its_artist(trained: Trained) -> None:
    p = trained.planted
    ann = 1
    liked, other = (
        p.tastes_of_user[ann][0],
        next(t for t in range(10) if t not in p.tastes_of_user[ann]),
    )
    fresh = {}
    with trained.db.transaction() as conn:
        for taste in (liked, other):
            track = base62_id(f"fresh:{taste}")
            fresh[taste] = track
            conn.execute(
                "INSERT INTO tracks (id, name, artist, album, album_id, track_number, duration_ms)"
                " VALUES (?, 'New', '', '', ?, 1, 200000)",
                (track, base62_id(f"album:{taste}:0")),
            )
            conn.execute(
                "INSERT INTO track_artists (track_id, artist_id, position) VALUES (?, ?, 0)",
                (track, p.artists[taste][0]),
            )
    rec = Recommender(trained.db, trained.data)
    s = rec.scoring()
    assert s.model is not None
    scores = s.scores(ann, np.zeros(0, dtype=np.int64))
    assert scores[s.index[fresh[liked]]] > scores[s.index[fresh[other]]]
    with trained.db.transaction() as conn:  # leave the catalog as the other tests know it
        conn.executemany("DELETE FROM tracks WHERE id = ?", [(t,) for t in fresh.values()])


def test_the_schedule_trains_in_a_worker_and_the_hub_picks_up_the_new_model(
    trained: Trained,
) -> None:
    rec = Recommender(trained.db, trained.data)
    rec.refresh()
    before = rec.scoring().model
    schedule = Schedule(rec, every_h=24)
    assert not schedule._due()  # the fixture trained a moment ago

    async def once() -> None:
        await schedule.run_once()
        await schedule.stop()

    asyncio.run(once())
    with trained.db.reading() as conn:
        runs = conn.execute(
            "SELECT trigger, model_path FROM recommender_runs ORDER BY id"
        ).fetchall()
    assert [r[0] for r in runs][-1] == "schedule"
    assert rec.scoring().model is not before
    assert rec.trained


def test_old_models_are_deleted_but_the_two_newest_and_a_run_still_writing(
    tmp_path: Path,
) -> None:
    for n in (1, 2, 3, 10):
        (tmp_path / f"recommender-{n}").mkdir()
    (tmp_path / "recommender-11.tmp").mkdir()  # a run writing now
    dead = tmp_path / "recommender-4.tmp"
    dead.mkdir()
    os.utime(dead, (time.time() - 2 * 86_400, time.time() - 2 * 86_400))
    prune(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "recommender-10",
        "recommender-11.tmp",
        "recommender-3",
    ]


def test_a_listener_who_cleared_their_history_is_forgotten_until_the_next_training(
    trained: Trained,
) -> None:
    rec = Recommender(trained.db, trained.data)
    listener = sorted(trained.planted.tastes_of_user)[-1]  # one the other tests do not ask
    before = rec.recommend(listener, Ask(limit=20))
    stranger = rec.recommend(None, Ask(limit=20))
    assert before != stranger  # trained on their plays: a list of their own
    retention.clear(trained.db, listener, int(time.time() * 1000))
    assert rec.recommend(listener, Ask(limit=20)) == stranger


def test_content_picks_before_any_training_keep_the_rules(trained: Trained) -> None:
    rec = Recommender(trained.db, trained.data)
    with trained.db.reading() as conn:
        user, skipped = conn.execute(
            "SELECT user_id, track_id FROM plays WHERE skipped = 1 AND ms_played < 30000"
            " ORDER BY user_id LIMIT 1"
        ).fetchone()
        ranked = [skipped] + [r[0] for r in conn.execute("SELECT id FROM tracks ORDER BY id")]
        artist_of = dict(conn.execute("SELECT track_id, artist_id FROM track_artists"))
    picked = rec.ruled(user, ranked, 30)
    assert skipped not in picked  # skipped early: never again
    assert 0 < len(picked) <= 30
    artists = [artist_of[t] for t in picked]
    assert max(Counter(artists).values()) <= 2
    assert all(a != b for a, b in itertools.pairwise(artists))
