"""Playlists and saved tracks as plain functions over a real SQLite catalog; the
reorder rule, paging and recommendations ranking as pure functions, with hypothesis."""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.accounts import users as accounts
from hub.catalog import library, recommend
from hub.context import hub_database
from hub.db import Database
from hub.errors import CatalogError, Forbidden, NotFound
from hub.http import objects
from tests.catalog_fixtures import populate


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = hub_database(tmp_path / "hub.db")
    database.migrate()
    return database


@pytest.fixture
def ids(db: Database) -> dict[str, str]:
    return populate(db)


def users(db: Database) -> tuple[int, int]:
    a = accounts.add_user(db, "ann", "password-ann")
    b = accounts.add_user(db, "bob", "password-bob")
    return a.id, b.id


@given(
    items=st.lists(st.integers(), min_size=1, max_size=12, unique=True),
    data=st.data(),
)
def test_moving_a_block_keeps_every_item_and_lands_it_before_the_target(
    items: list[int], data: st.DataObject
) -> None:
    n = len(items)
    start = data.draw(st.integers(0, n - 1))
    length = data.draw(st.integers(1, n - start))
    before = data.draw(st.integers(0, n))
    out = library.moved(items, start, length, before)
    block = items[start : start + length]
    assert sorted(out) == sorted(items)
    at = out.index(block[0])
    assert out[at : at + length] == block
    if start <= before <= start + length:
        assert out == items  # inside or just after the block: nothing moves
    elif before < n:
        assert out.index(items[before]) == at + length  # right before the old target
    else:
        assert out[-length:] == block


def test_a_playlist_is_edited_in_order_and_each_change_is_a_new_snapshot(
    db: Database, ids: dict[str, str]
) -> None:
    ann, _ = users(db)
    songs = ["Northern Lights", "Harbour Wall", "Déjà Vu"]
    with db.transaction() as conn:
        pid = library.create_playlist(conn, ann, "Mix", now_ms=1)
        p = library.get_playlist(conn, pid, ann)
        snap1 = library.add_items(
            conn, p, [ids[s] for s in songs], position=None, user_id=ann, now_ms=2
        )
        p = library.get_playlist(conn, pid, ann)
        snap2 = library.add_items(conn, p, [ids["Crème"]], position=1, user_id=ann, now_ms=3)
        p = library.get_playlist(conn, pid, ann)
        with pytest.raises(CatalogError, match="snapshot_id"):
            library.reorder(conn, p, range_start=0, insert_before=2, snapshot=snap1)
        snap3 = library.reorder(conn, p, range_start=0, insert_before=4, snapshot=snap2)
        p = library.get_playlist(conn, pid, ann)
        library.remove_items(conn, p, [(ids["Harbour Wall"], None)])
        order = [
            r[0]
            for r in conn.execute(
                "SELECT track_id FROM playlist_items WHERE playlist_id = ? ORDER BY position",
                (pid,),
            )
        ]
        positions = [
            r[0]
            for r in conn.execute(
                "SELECT position FROM playlist_items WHERE playlist_id = ?", (pid,)
            )
        ]
    assert len({snap1, snap2, snap3}) == 3
    assert order == [ids["Crème"], ids["Déjà Vu"], ids["Northern Lights"]]
    assert sorted(positions) == [0, 1, 2]


def test_other_listeners_cannot_see_private_or_change_others_playlists(
    db: Database, ids: dict[str, str]
) -> None:
    ann, bob = users(db)
    with db.transaction() as conn:
        private = library.create_playlist(conn, ann, "Secret", public=False, now_ms=1)
        shared = library.create_playlist(conn, ann, "Open", now_ms=1)
        with pytest.raises(NotFound):
            library.get_playlist(conn, private, bob)
        with pytest.raises(Forbidden):
            library.editable(conn, shared, bob)
        p = library.get_playlist(conn, shared, ann)
        with pytest.raises(NotFound, match="Unknown track"):
            library.add_items(conn, p, ["0" * 22], position=None, user_id=ann, now_ms=1)
        with pytest.raises(CatalogError, match="not a track URI"):
            library.track_ids_from([f"spotify:album:{ids['Copper Skies']}"])
        with pytest.raises(CatalogError, match="collaborative"):
            library.create_playlist(conn, ann, "X", public=True, collaborative=True, now_ms=1)


def test_saved_tracks_contains_in_the_order_asked(db: Database, ids: dict[str, str]) -> None:
    ann, bob = users(db)
    a, b = ids["Crème"], ids["Slow Burn"]
    with db.transaction() as conn:
        library.save_tracks(conn, ann, [a], 10)
        assert library.saved_contains(conn, ann, [b, a, a]) == [False, True, True]
        assert library.saved_contains(conn, bob, [a]) == [False]
        library.unsave_tracks(conn, ann, [a])
        assert library.saved_contains(conn, ann, [a]) == [False]


@given(total=st.integers(0, 60), limit=st.integers(1, 20))
def test_following_next_visits_every_offset_once(total: int, limit: int) -> None:
    seen: list[int] = []
    offset: int | None = 0
    while offset is not None:
        page = objects.paging("http://hub/v1/x", [], limit, offset, total, q="a b")
        seen += list(range(offset, min(offset + limit, total)))
        nxt = page["next"]
        if nxt is None:
            offset = None
        else:
            query = parse_qs(urlparse(nxt).query)
            assert query["q"] == ["a b"]
            offset = int(query["offset"][0])
    assert seen == list(range(total))


points = st.lists(
    st.tuples(
        st.text("abcdef", min_size=3, max_size=3),
        st.tuples(*[st.floats(0, 1)] * 9),
        st.integers(0, 100),
    ),
    max_size=30,
    unique_by=lambda p: p[0],
)


@given(candidates=points, target=st.tuples(*[st.floats(0, 1)] * 9), limit=st.integers(1, 10))
def test_recommendations_rank_nearest_first_and_never_the_seeds(
    candidates: list[tuple[str, tuple[float, ...], int]],
    target: tuple[float, ...],
    limit: int,
) -> None:
    pts = [recommend.Point(i, v, p) for i, v, p in candidates]
    exclude = {p.id for p in pts[:2]}
    ranked = recommend.rank(target, pts, exclude, limit)
    assert not exclude & set(ranked)
    assert len(ranked) == min(limit, len(pts) - len(exclude & {p.id for p in pts}))
    by_id = {p.id: p for p in pts}
    dists = [math.dist(target, by_id[i].vector) for i in ranked]
    # popularity can only reorder items within 0.05 of each other
    assert all(b >= a - 0.05 for a, b in itertools.pairwise(dists))


def test_recommendations_from_the_fixture_catalog(db: Database, ids: dict[str, str]) -> None:
    with db.reading() as conn:
        picked, seeds = recommend.recommend(conn, [ids["Crème"]], [], [], 5)
        by_artist, _ = recommend.recommend(conn, [], [ids["Kito Mensah"]], [], 3)
    assert ids["Crème"] not in picked
    assert len(picked) == 5
    assert seeds[0]["type"] == "TRACK"
    assert len(by_artist) == 3


def test_private_playlist_words_never_become_typo_corrections(
    db: Database, ids: dict[str, str]
) -> None:
    """A correction would hint that some private playlist holds the word."""
    from hub.catalog import search
    from hub.catalog.search import vocabulary
    from hub.catalog.search.query import Term

    ann, _ = users(db)
    with db.transaction() as conn:
        pid = library.create_playlist(conn, ann, "Zanzibarian nights", public=False, now_ms=1)
        search.index_playlist(conn, pid)
        assert not vocabulary.is_known(conn, "zanzibarian")
        assert vocabulary.corrections(conn, Term(text="zanzibarien")) == ()
        assert "northern" in vocabulary.corrections(conn, Term(text="northen"))  # catalog words do
        search.rebuild(conn)
        assert not vocabulary.is_known(conn, "zanzibarian")
