"""The catalog schema (migration 3) and the one place that turns credits into rows."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from hub.catalog import write as catalog_write
from hub.catalog.ids import artist_id, is_base62_id
from hub.context import hub_database
from hub.demo_music.seed import seed_demo
from hub.schema import MIGRATIONS


def test_credits_split_into_names_in_order() -> None:
    assert catalog_write.split_artists("Mira Okafor") == ["Mira Okafor"]
    assert catalog_write.split_artists("A, B & C") == ["A", "B", "C"]
    assert catalog_write.split_artists("Lead feat. Guest") == ["Lead", "Guest"]
    assert catalog_write.split_artists("Lead ft Guest; Lead") == ["Lead", "Guest"]
    assert catalog_write.split_artists("  ") == ["Unknown artist"]


@given(st.text(max_size=60))
def test_a_credit_always_names_someone_once(credit: str) -> None:
    names = catalog_write.split_artists(credit)
    assert names
    assert len(names) == len(set(names))
    assert all(n and n == n.strip() for n in names)


def test_a_version_2_catalog_gains_artists_albums_and_credits(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for number, script in enumerate(MIGRATIONS[:2], start=1):
        conn.executescript(f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")
    conn.executemany(
        "INSERT INTO tracks VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            ("t1" * 11, "One", "Mira Okafor", "Night Bus", "a1" * 11, 1, 1000),
            ("t2" * 11, "Two", "Mira Okafor", "Night Bus", "a1" * 11, 2, 1000),
            ("t3" * 11, "Three", "Quay", "Harbour", "a2" * 11, 1, 1000),
        ],
    )
    conn.close()
    db = hub_database(path)
    assert db.migrate() == len(MIGRATIONS)
    with db.reading() as c:
        artists = {r["name"]: r["id"] for r in c.execute("SELECT * FROM artists")}
        assert artists == {"Mira Okafor": artist_id("Mira Okafor"), "Quay": artist_id("Quay")}
        albums = c.execute(
            "SELECT a.name, aa.artist_id FROM albums a JOIN album_artists aa ON aa.album_id = a.id"
            " ORDER BY a.name"
        ).fetchall()
        assert [tuple(r) for r in albums] == [
            ("Harbour", artist_id("Quay")),
            ("Night Bus", artist_id("Mira Okafor")),
        ]
        credits = c.execute("SELECT COUNT(*) FROM track_artists").fetchone()[0]
        assert credits == 3


def test_the_demo_catalog_is_credited(tmp_path: Path) -> None:
    db = hub_database(tmp_path / "hub.db")
    db.migrate()
    added = seed_demo(db)
    with db.reading() as c:
        assert c.execute("SELECT COUNT(*) FROM track_artists").fetchone()[0] == added
        ids = [r[0] for r in c.execute("SELECT id FROM artists")]
    assert ids
    assert all(is_base62_id(i) for i in ids)


def test_the_demo_catalog_gets_features_and_popularity(tmp_path: Path) -> None:
    from hub.catalog import recommend
    from hub.demo_music import catalog_extras

    db = hub_database(tmp_path / "hub.db")
    db.migrate()
    seed_demo(db)  # the same album and track names the rendered demo is tagged with
    with db.transaction() as conn:
        assert catalog_extras.apply(conn) == 12
    with db.reading() as conn:
        rows = conn.execute(
            "SELECT t.name, t.popularity, f.tempo, f.mode FROM tracks t"
            " JOIN audio_features f ON f.track_id = t.id"
        ).fetchall()
        waltz = conn.execute("SELECT id FROM tracks WHERE name = 'Lanterns'").fetchone()[0]
        picked, _ = recommend.recommend(conn, [waltz], [], [], 5)
        genres = {r[0] for r in conn.execute("SELECT genres FROM artists")}
    assert len(rows) == 12
    assert all(20 <= r["popularity"] <= 80 for r in rows)
    assert {r["name"]: r["tempo"] for r in rows}["Last Stop"] == 124
    assert {r["name"]: r["mode"] for r in rows}["Window Seat"] == 0  # E minor
    assert len(set(picked)) == 5
    assert waltz not in picked
    assert genres == {"ambient", "electronic", "jazz"}
