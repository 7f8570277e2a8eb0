"""Catalog search as a listener meets it: typeahead, folding, typos, ranking, filters,
hostile input, paging; on real SQLite databases, and through ``GET /v1/search`` on a
real server.  The parser and the small pure parts are fuzzed with hypothesis."""

from __future__ import annotations

import sqlite3
import string
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.accounts import tokens as accounts
from hub.accounts import users
from hub.catalog import search as hub_search
from hub.catalog import write as catalog_write
from hub.catalog.ids import base62_id
from hub.catalog.search import engine, index, kinds, query, ranking, vocabulary
from hub.catalog.search.query import Field, Term, YearRange, fold, parse
from hub.context import hub_database
from hub.db import Database
from hub.http.app import create_app
from hub.schema import MIGRATIONS
from tests.serving import offline_context, serving

# --- a small catalog written the way ingest writes it --------------------------------


def add_track(
    conn: sqlite3.Connection,
    name: str,
    artist: str,
    album: str,
    *,
    year: int | None = None,
    popularity: int = 0,
    markets: str = "",
    album_markets: str = "",
) -> str:
    """A track through ``hub.catalog_write`` (which indexes), as ingest adds one."""
    album_id = base62_id(f"album:{artist}:{album}")
    catalog_write.ensure_album(conn, album_id, album, artist, year=year)
    if album_markets:
        conn.execute("UPDATE albums SET markets = ? WHERE id = ?", (album_markets, album_id))
    track_id = base62_id(f"track:{album_id}:{name}")
    conn.execute(
        "INSERT INTO tracks (id, name, artist, album, album_id, track_number, duration_ms,"
        " popularity, markets) VALUES (?, ?, ?, ?, ?, 1, 200000, ?, ?)",
        (track_id, name, artist, album, album_id, popularity, markets),
    )
    catalog_write.credit_track(conn, track_id, artist)
    return track_id


def set_popularity(conn: sqlite3.Connection, table: str, name: str, popularity: int) -> None:
    conn.execute(f"UPDATE {table} SET popularity = ? WHERE name = ?", (popularity, name))
    for (item_id,) in conn.execute(f"SELECT id FROM {table} WHERE name = ?", (name,)).fetchall():
        index.index(conn, hub_search.KINDS[table.removesuffix("s")], item_id)


CATALOG = [
    # name, artist, album, year, popularity
    ("Yellow Submarine", "The Beatles", "Revolver", 1966, 80),
    ("Hey Jude", "The Beatles", "Hey Jude", 1968, 85),
    ("Come Together", "The Beatles", "Abbey Road", 1969, 90),
    ("Yellow", "Coldplay", "Parachutes", 2000, 75),
    ("Yellow", "Tiny Garage Band", "Basement Tapes", 2000, 5),
    ("Cryin'", "Beat Happening", "Jamboree", 1988, 10),
    ("Halo", "Beyoncé", "I Am... Sasha Fierce", 2008, 88),
    ("Enter Sandman", "Metallica", "Metallica", 1991, 83),
    ("Jóga", "Björk", "Homogenic", 1997, 60),
    ("Smells Like Teen Spirit", "Nirvana", "Nevermind", 1991, 86),
    ("Lithium", "Nirvana", "Nevermind", 1991, 70),
]


@dataclass
class Catalog:
    db: Database
    ids: dict[str, str]
    names: dict[str, str]  # id -> name, for every kind

    def find(
        self, q: str, kind: str, *, market: str | None = None, user_id: int | None = None
    ) -> list[str]:
        """The names of the first page of ``kind`` matching ``q``, best first."""
        return [self.names[i] for i in self.page(q, kind, market=market, user_id=user_id).ids]

    def page(
        self,
        q: str,
        kind: str,
        *,
        limit: int = 20,
        offset: int = 0,
        market: str | None = None,
        user_id: int | None = None,
    ) -> engine.Page:
        with self.db.reading() as conn:
            return hub_search.find(
                conn, q, [kind], limit=limit, offset=offset, market=market, user_id=user_id
            )[kind]


def names_of(conn: sqlite3.Connection) -> dict[str, str]:
    return {
        row[0]: row[1]
        for table in ("tracks", "artists", "albums", "playlists")
        for row in conn.execute(f"SELECT id, name FROM {table}")
    }


@pytest.fixture
def cat(tmp_path: Path) -> Catalog:
    db = hub_database(tmp_path / "hub.db")
    db.migrate()
    ids: dict[str, str] = {}
    with db.transaction() as conn:
        for name, artist, album, year, popularity in CATALOG:
            ids[f"{artist}/{name}"] = add_track(
                conn, name, artist, album, year=year, popularity=popularity
            )
        for artist, popularity in (("The Beatles", 92), ("Beat Happening", 30)):
            set_popularity(conn, "artists", artist, popularity)
        set_popularity(conn, "albums", "Abbey Road", 90)
        names = names_of(conn)
    return Catalog(db, ids, names)


# --- what a listener notices ----------------------------------------------------------


def test_typeahead_finds_an_artist_from_its_first_letters(cat: Catalog) -> None:
    for typed in ("b", "be", "bea", "beat", "beatl"):
        assert cat.find(typed, "artist")[0] == "The Beatles", typed
    assert "Beat Happening" in cat.find("beat", "artist")
    assert cat.find("beatles", "artist") == ["The Beatles"]


def test_a_finished_word_is_not_completed(cat: Catalog) -> None:
    assert cat.find("beat ", "artist") == ["Beat Happening"]


def test_case_and_diacritics_are_folded_both_ways(cat: Catalog) -> None:
    for typed in ("beyonce", "BEYONCE", "Beyoncé", "beyonc", "bjork", "BJÖRK", "joga"):
        assert cat.find(typed, "track"), typed
    assert cat.find("beyonce", "artist") == ["Beyoncé"]
    # decomposed input (e + combining acute), as some keyboards send it
    assert cat.find("Beyonce\u0301", "artist") == ["Beyoncé"]


def test_a_small_typo_still_finds_the_artist(cat: Catalog) -> None:
    assert cat.find("metalica", "artist") == ["Metallica"]
    assert cat.find("metalica ", "artist") == ["Metallica"]  # a finished word
    assert cat.find("nirvnaa", "artist") == ["Nirvana"]  # two neighbours swapped
    assert cat.find("smels like teen", "track") == ["Smells Like Teen Spirit"]
    assert cat.find("zzzzzzzz", "artist") == []


def test_popularity_orders_equally_relevant_items(cat: Catalog) -> None:
    popular, obscure = cat.ids["Coldplay/Yellow"], cat.ids["Tiny Garage Band/Yellow"]
    ids = list(cat.page("yellow", "track").ids)
    assert ids.index(popular) < ids.index(obscure)
    # the obscure one becomes the most popular: it comes first
    with cat.db.transaction() as conn:
        conn.execute("UPDATE tracks SET popularity = 99 WHERE id = ?", (obscure,))
        index.index_track(conn, obscure)
    assert cat.page("yellow", "track").ids[0] == obscure


def test_a_better_match_beats_a_slightly_more_popular_one(cat: Catalog) -> None:
    # "Yellow" (75) is all title; "Yellow Submarine" (80) only half of one
    assert cat.find("yellow", "track")[0] == "Yellow"


def test_tracks_are_found_by_artist_and_album_too(cat: Catalog) -> None:
    assert set(cat.find("nirvana", "track")) == {"Smells Like Teen Spirit", "Lithium"}
    assert cat.find("abbey road", "track") == ["Come Together"]


def test_field_filters(cat: Catalog) -> None:
    assert cat.find("yellow artist:beatles", "track") == ["Yellow Submarine"]
    assert cat.find('artist:"tiny garage" yellow', "track") == ["Yellow"]
    assert cat.find("track:yellow", "track") == ["Yellow", "Yellow Submarine", "Yellow"]
    assert cat.find("album:nevermind", "track") == ["Smells Like Teen Spirit", "Lithium"]
    assert cat.find("album:nevermind", "album") == ["Nevermind"]
    assert cat.find("artist:beatles", "album") == ["Abbey Road", "Revolver", "Hey Jude"]
    # a filter that a type has no field for finds nothing of that type
    assert cat.find("track:yellow", "artist") == []
    assert cat.find("album:revolver", "artist") == []


def test_year_filters_single_years_and_ranges(cat: Catalog) -> None:
    assert cat.find("year:1991", "track") == ["Smells Like Teen Spirit", "Enter Sandman", "Lithium"]
    assert cat.find("nirvana year:1991", "track") == ["Smells Like Teen Spirit", "Lithium"]
    assert cat.find("nirvana year:1992", "track") == []
    assert cat.find("beatles year:1960-1967", "track") == ["Yellow Submarine"]
    assert cat.find("beatles year:1967-1960", "track") == ["Yellow Submarine"]
    assert len(cat.find("year:1900-2099", "track")) == len(CATALOG)
    assert cat.find("year:1960-1969", "album") == ["Abbey Road", "Revolver", "Hey Jude"]
    # artists by the years of their albums
    assert cat.find("year:2008", "artist") == ["Beyoncé"]
    assert set(cat.find("year:1990-1999", "artist")) == {"Metallica", "Björk", "Nirvana"}
    # an unreadable year is no filter
    assert cat.find("halo year:soon", "track") == ["Halo"]


def test_typed_letters_never_walk_the_year_tokens(cat: Catalog) -> None:
    # no name here has a word starting with d or k, the letters of decade and
    # millennium tokens: a typed "d" must find nothing, not every dated document
    with cat.db.reading() as conn:
        for kind in ("search_tracks", "search_albums", "search_artists"):
            for letter in ("d", "k"):
                hits = conn.execute(
                    f"SELECT count(*) FROM {kind} WHERE {kind} MATCH ?", (f'"{letter}" *',)
                ).fetchone()[0]
                assert hits == 0, (kind, letter)
    assert cat.find("year:1991", "track")


def test_market_filter_hides_what_is_not_sold_there(tmp_path: Path) -> None:
    db = hub_database(tmp_path / "hub.db")
    db.migrate()
    with db.transaction() as conn:
        add_track(conn, "Everywhere Song", "Anyone", "Open", popularity=50)
        add_track(conn, "Only Track", "Somebody", "Narrow", markets="GB DE", popularity=50)
        add_track(conn, "Album Bound", "Other", "Regional", album_markets="SE", popularity=50)
        names = names_of(conn)
    cat = Catalog(db, {}, names)
    every = {"Everywhere Song", "Only Track", "Album Bound"}
    assert set(cat.find("o", "track")) == every
    assert set(cat.find("o", "track", market="US")) == {"Everywhere Song"}
    assert set(cat.find("o", "track", market="gb")) == {"Everywhere Song", "Only Track"}
    assert set(cat.find("o", "track", market="SE")) == {"Everywhere Song", "Album Bound"}
    assert set(cat.find("regional", "album", market="SE")) == {"Regional"}
    assert cat.find("regional", "album", market="US") == []


def test_private_playlists_are_found_only_by_their_owner(tmp_path: Path) -> None:
    db = hub_database(tmp_path / "hub.db")
    db.migrate()
    ada = users.add_user(db, "ada", "long enough password")
    bob = users.add_user(db, "bob", "long enough password")
    with db.transaction() as conn:
        for pid, owner, name, public in (
            ("p" * 22, ada.id, "Road Trip Mix", 1),
            ("q" * 22, ada.id, "Road Secrets", 0),
        ):
            conn.execute(
                "INSERT INTO playlists (id, owner_id, name, public, created_ms)"
                " VALUES (?, ?, ?, ?, 0)",
                (pid, owner, name, public),
            )
            hub_search.index_playlist(conn, pid)
        names = names_of(conn)
    cat = Catalog(db, {}, names)
    assert cat.find("road", "playlist", user_id=bob.id) == ["Road Trip Mix"]
    assert set(cat.find("road", "playlist", user_id=ada.id)) == {"Road Trip Mix", "Road Secrets"}
    with db.transaction() as conn:
        conn.execute("UPDATE playlists SET name = 'Highway Songs' WHERE id = ?", ("p" * 22,))
        hub_search.index_playlist(conn, "p" * 22)
        cat.names = names_of(conn)
    assert cat.find("road", "playlist", user_id=bob.id) == []
    assert cat.find("highway", "playlist", user_id=bob.id) == ["Highway Songs"]
    with db.transaction() as conn:
        hub_search.unindex_playlist(conn, "p" * 22)
    assert cat.find("highway", "playlist", user_id=bob.id) == []


def test_a_deleted_track_leaves_the_index(cat: Catalog) -> None:
    assert cat.find("lithium", "track") == ["Lithium"]
    with cat.db.transaction() as conn:
        conn.execute("DELETE FROM tracks WHERE id = ?", (cat.ids["Nirvana/Lithium"],))
    assert cat.find("lithium", "track") == []
    assert_index_intact(cat.db)


HOSTILE = [
    '"',
    '""',
    "*",
    "* * *",
    "NEAR(",
    "NEAR(a b, 2)",
    "a OR b NOT c AND",
    "') OR 1=1 --",
    "'; DROP TABLE tracks; --",
    "artist:",
    'artist:"',
    "year:",
    "year:-",
    "year:99999-",
    "{name}: x",
    "name:yellow",
    "^yellow",
    "yel*low",
    "col : (a)",
    "\x00\x01",
    "   ",
    "",
    "😀 🎸",
    "ﷺ ٱلْعَرَبِيَّة",
    "x" * 10_000,
    "yellow " * 1500,
]


def assert_index_intact(db: Database) -> None:
    with db.reading() as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        for kind in hub_search.KINDS.values():
            conn.execute(f"INSERT INTO {kind.fts} ({kind.fts}, rank) VALUES ('integrity-check', 1)")


@pytest.mark.parametrize("q", HOSTILE)
def test_fts_syntax_and_sql_in_the_query_are_harmless(cat: Catalog, q: str) -> None:
    with cat.db.reading() as conn:
        before = conn.execute("SELECT count(*) FROM tracks").fetchone()[0]
        pages = hub_search.find(conn, q, list(hub_search.KINDS), limit=50, offset=0)
    assert all(p.total >= len(p.ids) for p in pages.values())
    with cat.db.reading() as conn:
        assert conn.execute("SELECT count(*) FROM tracks").fetchone()[0] == before
    assert_index_intact(cat.db)
    assert cat.find("yellow artist:beatles", "track") == ["Yellow Submarine"]


def many_songs(db: Database, count: int) -> None:
    with db.transaction() as conn:
        for n in range(count):
            add_track(conn, f"Song {n}", f"Singer {n % 7}", f"Record {n % 13}", popularity=n % 101)


def test_paging_returns_every_match_once_with_the_right_total(tmp_path: Path) -> None:
    db = hub_database(tmp_path / "hub.db")
    db.migrate()
    many_songs(db, 345)
    cat = Catalog(db, {}, {})
    seen: list[str] = []
    for offset in range(0, 400, 30):  # pages that straddle the ranking windows
        page = cat.page("song", "track", limit=30, offset=offset)
        assert page.total == 345
        seen += page.ids
    assert len(seen) == len(set(seen)) == 345
    assert cat.page("song", "track", limit=0, offset=0) == engine.Page((), 345)
    assert cat.page("song", "track", limit=10, offset=500) == engine.Page((), 345)
    # the first page's best is the most popular (all equally relevant)
    with db.reading() as conn:
        top = conn.execute("SELECT id FROM tracks ORDER BY popularity DESC, rowid").fetchone()[0]
    assert seen[0] == top


def test_totals_and_paging_stop_at_1000(tmp_path: Path) -> None:
    db = hub_database(tmp_path / "hub.db")
    db.migrate()
    many_songs(db, 1100)
    cat = Catalog(db, {}, {})
    assert cat.page("song", "track").total == 1000
    assert len(cat.page("song", "track", limit=50, offset=980).ids) == 20
    assert cat.page("song", "track", limit=50, offset=1000).ids == ()


def test_migration_4_indexes_an_existing_catalog_as_a_rebuild_does(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    conn = hub_database(path).connect()
    for number, script in enumerate(MIGRATIONS[:3], start=1):
        conn.executescript(f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")
    conn.executescript(
        """
        INSERT INTO artists (id, name, popularity) VALUES ('a1', 'Zoë Ångström', 40),
            ('a2', 'Guest Star', 10);
        INSERT INTO albums (id, name, release_year, popularity)
            VALUES ('b1', 'Café Rêverie', 2008, 30);
        INSERT INTO album_artists VALUES ('b1', 'a1', 0);
        INSERT INTO tracks (id, name, artist, album, album_id, track_number, duration_ms,
                            popularity)
            VALUES ('t1', 'Déjà Vu', 'Zoë Ångström feat. Guest Star', 'Café Rêverie', 'b1',
                    1, 1000, 70),
                   ('t2', 'Orphan', 'Nobody', 'Nowhere', 'zz', 1, 1000, 0);
        INSERT INTO track_artists VALUES ('t1', 'a1', 0), ('t1', 'a2', 1);
        INSERT INTO users (id, name, password_hash, created_ms) VALUES (1, 'u', 'x', 0);
        INSERT INTO playlists (id, owner_id, name, description, created_ms)
            VALUES ('p1', 1, 'Sunday Morning', 'slow café songs', 0);
        """
    )
    conn.close()
    db = hub_database(path)
    db.migrate()

    def documents() -> dict[str, list[tuple[object, ...]]]:
        with db.reading() as c:
            return {
                k.name: [tuple(r) for r in c.execute(f"SELECT * FROM {k.docs} ORDER BY doc")]
                for k in hub_search.KINDS.values()
            }

    migrated = documents()
    year = query.year_tokens(2008)
    assert migrated["track"][0][2:] == ("deja vu", "zoe angstrom guest star", "cafe reverie", year)
    artists = {doc[1]: doc[2:] for doc in migrated["artist"]}
    assert artists == {"a1": ("zoe angstrom", year), "a2": ("guest star", "")}
    cat = Catalog(db, {}, {"t1": "Déjà Vu", "t2": "Orphan", "p1": "Sunday Morning"})
    assert cat.find("deja vu", "track") == ["Déjà Vu"]
    assert cat.find("orphan nobody nowhere", "track") == ["Orphan"]
    assert cat.find("cafe", "playlist") == ["Sunday Morning"]
    with db.transaction() as c:
        hub_search.rebuild(c)
    assert documents() == migrated
    assert_index_intact(db)


# --- the parser -----------------------------------------------------------------------


def test_parse_examples() -> None:
    parsed = parse('Remaster track:Doxy artist:"Miles Davis" year:1955-1960 So')
    assert parsed.terms == (
        Term(text="remaster"),
        Term(text="doxy", field=Field.TRACK),
        Term(text="miles", field=Field.ARTIST),
        Term(text="davis", field=Field.ARTIST),
        Term(text="so", prefix=True),
    )
    assert parsed.years == YearRange(first=1955, last=1960)
    assert parse("AC/DC back in blk").terms[:2] == (Term(text="ac"), Term(text="dc"))
    assert parse('"exact words"').terms == (Term(text="exact"), Term(text="words"))
    assert parse("genre:rock").terms == (Term(text="rock", prefix=True),)  # not indexed here
    assert parse("mood:rock").terms == (Term(text="mood"), Term(text="rock", prefix=True))
    assert parse("year:1999").years == YearRange(first=1999, last=1999)
    assert parse("Björk JÓGA").terms == (Term(text="bjork"), Term(text="joga", prefix=True))
    assert parse("   ").empty
    assert parse('"*"').empty
    assert parse("artist:").empty


def reference_tokens(text: str) -> list[str]:
    """Tokens by Unicode category, character by character: what the regex must equal."""
    out: list[str] = []
    current: list[str] = []
    for char in text + " ":
        if query.is_token_char(char):
            current.append(char)
        elif current:
            out.append(fold("".join(current)))
            current = []
    return [t for t in out if t]


@given(st.text(max_size=80))
def test_tokens_split_where_unicode61_splits(text: str) -> None:
    assert query.tokens(text) == reference_tokens(text)


token_text = st.text(alphabet=string.ascii_letters + "éÅøßçÑ0123456789", min_size=1, max_size=8)


@given(st.text(max_size=300))
def test_parse_never_fails_and_yields_only_plain_folded_tokens(text: str) -> None:
    parsed = parse(text)
    assert len(parsed.terms) <= query.MAX_TERMS
    for term in parsed.terms:
        assert term.text
        assert all(query.is_token_char(c) for c in term.text)
        assert fold(term.text) == term.text
    assert all(not t.prefix for t in parsed.terms[:-1])


@given(
    st.lists(
        st.tuples(
            st.sampled_from([None, "artist", "album", "track"]),
            st.lists(token_text, min_size=1, max_size=3),
        ),
        min_size=1,
        max_size=5,
    ),
    st.booleans(),
)
def test_parse_reads_back_what_a_query_says(
    items: list[tuple[str | None, list[str]]], finished: bool
) -> None:
    parts = []
    expected = []
    for field, words in items:
        if field is None:
            parts.append(" ".join(words))
        else:
            parts.append(f'{field}:"{" ".join(words)}"')
        expected += [(fold(w), field) for w in words]
    text = " ".join(parts) + (" " if finished else "")
    parsed = parse(text)
    assert [(t.text, t.field) for t in parsed.terms] == expected
    last_bare = items[-1][0] is None and not finished
    assert [t.prefix for t in parsed.terms] == [False] * (len(expected) - 1) + [last_bare]


@pytest.fixture(scope="module")
def fts_table() -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(":memory:")
    conn.execute(
        "CREATE VIRTUAL TABLE t USING fts5(name, artists, album, year,"
        " tokenize='unicode61 remove_diacritics 2', prefix='1 2 3 4')"
    )
    conn.execute("INSERT INTO t VALUES ('a b', 'c', 'd', ?)", (query.year_tokens(1999),))
    yield conn
    conn.close()


@given(st.text(max_size=200), st.lists(st.text(max_size=10), max_size=3))
def test_every_parsed_query_is_a_valid_fts5_expression(
    fts_table: sqlite3.Connection, text: str, expansion: list[str]
) -> None:
    parsed = parse(text)
    expanded = parsed.with_terms(
        [
            Term(text=t.text, prefix=t.prefix, field=t.field, expansion=tuple(expansion))
            for t in parsed.terms[:1]
        ]
        + list(parsed.terms[1:])
    )
    for q in (parsed, expanded):
        expression = query.match_expression(
            q, kinds.TRACK.text_columns, kinds.TRACK.field_columns, kinds.TRACK.year_column
        )
        if expression is not None:
            fts_table.execute("SELECT rowid FROM t WHERE t MATCH ?", (expression,)).fetchall()


@given(st.integers(0, 9999), st.integers(0, 9999))
def test_year_ranges_are_covered_exactly(a: int, b: int) -> None:
    years = YearRange(first=min(a, b), last=max(a, b))
    covering = query.year_range_tokens(years)
    assert len(covering) <= 60
    hit = {
        y
        for y in range(max(0, years.first - 1000), min(9999, years.last + 1000) + 1)
        if set(query.year_tokens(y).split()) & set(covering)
    }
    assert hit == set(range(years.first, years.last + 1))


# --- typos and ranking ----------------------------------------------------------------


def osa(a: str, b: str) -> int:
    """Reference optimal string alignment distance, unbounded."""
    d = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(
                d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1])
            )
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[len(a)][len(b)]


@given(st.text("abcd", max_size=8), st.text("abcd", max_size=8), st.integers(0, 3))
def test_bounded_distance_agrees_with_the_reference(a: str, b: str, limit: int) -> None:
    assert vocabulary.distance(a, b, limit) == min(osa(a, b), limit + 1)


def test_distance_examples() -> None:
    assert vocabulary.distance("metalica", "metallica", 2) == 1
    assert vocabulary.distance("nirvnaa", "nirvana", 1) == 1  # a swap is one edit
    assert vocabulary.prefix_distance("metalic", "metallica", 1) == 1
    assert vocabulary.max_edits("abc") == 0
    assert vocabulary.max_edits("metalica") == 2


def test_rank_blends_relevance_and_popularity() -> None:
    def candidate(doc: int, popularity: int) -> ranking.Candidate:
        return ranking.Candidate(doc, str(doc), popularity, ())

    exact, loose, popular = candidate(1, 40), candidate(2, 40), candidate(3, 95)
    ordered = ranking.rank([(loose, 1.0), (popular, 1.0), (exact, 2.0)])
    assert ordered == [exact, popular, loose]
    tie = ranking.rank([(candidate(9, 50), 1.0), (candidate(4, 50), 1.0)])
    assert [c.doc for c in tie] == [4, 9]


def test_relevance_prefers_the_name_and_short_names() -> None:
    relevance = ranking.Relevance(parse("yellow ").terms, [[0, 1, 2]], kinds.TRACK.weights)

    def document(name: str, artists: str, album: str) -> tuple[str, ...]:
        return (*(query.search_text(t) for t in (name, artists, album)), "")

    in_name = relevance(document("Yellow", "X", "Y"))
    in_long_name = relevance(document("Yellow Brick Road Blues", "X", "Y"))
    in_album = relevance(document("Other", "X", "Yellow"))
    assert in_name > in_long_name > in_album > 0
    assert relevance(document("Yellowish", "X", "Y")) == 0  # a finished word is no prefix


def test_documents_hold_the_parsers_words() -> None:
    assert query.search_text("Déjà Vu (Live) - AC/DC, Zoë") == "deja vu live ac dc zoe"
    assert query.search_text(None) == ""


@given(st.text("abc", min_size=1, max_size=6), st.text("abc", max_size=7))
def test_edits_are_exactly_the_strings_one_edit_away(word: str, other: str) -> None:
    assert (other in vocabulary.edits(word, "abc")) == (osa(word, other) == 1)


# --- GET /v1/search on a real server --------------------------------------------------


@dataclass
class Server:
    url: str
    token: str

    def get(self, url: str, **params: str | int) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(timeout=10) as client:
            return client.get(url, params=params or None, headers=headers)


@pytest.fixture
def server(cat: Catalog, tmp_path: Path) -> Iterator[Server]:
    many_songs(cat.db, 120)
    user = users.add_user(cat.db, "listener", "long enough password")
    token = accounts.issue_token(cat.db, user).access_token
    ctx = offline_context(cat.db, tmp_path)
    app = create_app(ctx, manage_relay=False, rate_limits=None)
    with serving(app) as url:
        yield Server(url, token)


def test_the_route_answers_spotify_paging_objects(server: Server) -> None:
    r = server.get(f"{server.url}/v1/search", q="beatles", type="track,artist,album", limit=2)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"tracks", "artists", "albums"}
    tracks = body["tracks"]
    assert set(tracks) == {"href", "items", "limit", "next", "offset", "previous", "total"}
    assert tracks["total"] == 3
    assert tracks["limit"] == 2
    assert tracks["previous"] is None
    assert [t["name"] for t in tracks["items"]] == ["Come Together", "Hey Jude"]
    assert tracks["next"].startswith(f"{server.url}/v1/search?")
    assert body["artists"]["items"][0]["name"] == "The Beatles"
    assert body["artists"]["items"][0]["type"] == "artist"
    assert body["albums"]["items"][0]["type"] == "album"


def test_following_next_returns_every_match_once(server: Server) -> None:
    seen: list[str] = []
    url: str | None = f"{server.url}/v1/search?q=song&type=track&limit=50"
    pages = 0
    while url:
        r = server.get(url)
        assert r.status_code == 200, r.text
        page = r.json()["tracks"]
        assert page["total"] == 120
        seen += [t["id"] for t in page["items"]]
        url = page["next"]
        pages += 1
    assert pages == 3
    assert len(seen) == len(set(seen)) == 120
    r = server.get(f"{server.url}/v1/search", q="song", type="track", limit=50, offset=100)
    previous = r.json()["tracks"]["previous"]
    assert "offset=50" in previous


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"type": "track"}, "q"),
        ({"q": "", "type": "track"}, "q"),
        ({"q": "  ", "type": "track"}, "No search query"),
        ({"q": "x"}, "type"),
        ({"q": "x", "type": "track,podcast"}, "type"),
        ({"q": "x", "type": "track", "limit": 51}, "limit"),
        ({"q": "x", "type": "track", "offset": 1001}, "offset"),
        ({"q": "x", "type": "track", "market": "USA"}, "market"),
    ],
)
def test_bad_requests_are_400_in_spotify_format(
    server: Server, params: dict[str, str | int], message: str
) -> None:
    r = server.get(f"{server.url}/v1/search", **params)
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["status"] == 400
    assert message in error["message"]


def test_the_route_needs_a_token(server: Server) -> None:
    r = httpx.get(f"{server.url}/v1/search", params={"q": "x", "type": "track"}, timeout=10)
    assert r.status_code == 401


def test_hostile_queries_over_http_are_answered(server: Server, cat: Catalog) -> None:
    for q in [*HOSTILE[:-2], "x" * 10000]:
        r = server.get(f"{server.url}/v1/search", q=q, type="track,artist,album,playlist")
        assert r.status_code in (200, 400), (q, r.text)
    assert_index_intact(cat.db)
