"""The pure parts of listening history: name folding, the export parsers, catalog
matching and the top ranking, over values (hypothesis where a property says more)."""

from __future__ import annotations

import itertools
import json
import unicodedata
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.errors import HistoryFileError
from hub.listening import exports, names, top
from hub.listening.exports import Listen, NotMusic, RowError
from hub.listening.matching import CatalogIndex, choose

LETTERS = "abcdefghijklmnopqrstuvwxyzéèêëáàâäåçñöøüúíóÉÅÖÜÇ"
word = st.text(alphabet=LETTERS, min_size=1, max_size=8).filter(
    lambda w: names.fold_name(w) not in names.CREDIT_WORDS
)
phrase = st.lists(word, min_size=1, max_size=4).map(" ".join)
junk = st.text(alphabet=" .,;:!?()[]-&'\"/", max_size=3)
credit = st.sampled_from(["feat.", "Feat", "ft.", "FT", "featuring", "(feat.", "[ft.", "- feat."])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=12,
)


@given(st.text(max_size=40))
def test_folding_twice_is_folding_once(text: str) -> None:
    assert names.fold_name(names.fold_name(text)) == names.fold_name(text)


@given(phrase, phrase, credit, junk)
def test_a_guest_credit_does_not_change_the_name(
    name: str, guest: str, word_: str, tail: str
) -> None:
    closing = ")" if word_.startswith("(") else "]" if word_.startswith("[") else ""
    assert names.fold_name(f"{name} {word_} {guest}{closing}{tail}") == names.fold_name(name)


@given(phrase, junk, junk)
def test_case_diacritics_and_punctuation_do_not_change_the_name(
    name: str, before: str, after: str
) -> None:
    folded = names.fold_name(name)
    without_marks = "".join(
        c for c in unicodedata.normalize("NFD", name) if not unicodedata.combining(c)
    )
    assert names.fold_name(before + name.upper() + after) == folded
    assert names.fold_name(name.lower()) == folded
    assert names.fold_name(without_marks) == folded
    assert folded.isascii() == all(c.isascii() for c in without_marks)


def test_folding_examples() -> None:
    assert names.fold_name("Zoë Ångström") == "zoe angstrom"
    assert names.fold_name("Slow Burn (feat. Kito Mensah) [Remastered]") == "slow burn"
    assert names.fold_name("Featuring Nobody") == "featuring nobody"  # the name itself
    assert names.match_key("Aurora Vale ft. Kito", "Slow burn") == "aurora vale\x1fslow burn"
    assert names.match_key("!!!", "Song") == ""


@given(json_values)
def test_a_row_of_any_json_parses_to_a_row_or_a_row_error(value: object) -> None:
    for parse in (exports.spotify_row, exports.listenbrainz_row, exports.parse_value):
        parsed = parse(value, 7)
        assert isinstance(parsed, Listen | NotMusic | RowError)
        if isinstance(parsed, RowError | NotMusic):
            assert parsed.row == 7


@given(
    st.dictionaries(
        st.sampled_from(
            [
                "ts",
                "ms_played",
                "skipped",
                "reason_end",
                "master_metadata_track_name",
                "master_metadata_album_artist_name",
            ]
        ),
        json_values,
    )
)
def test_spotify_rows_with_any_field_values_never_crash(value: dict[str, Any]) -> None:
    parsed = exports.spotify_row(value, 1)
    if isinstance(parsed, Listen):
        assert parsed.ms_played is not None
        assert parsed.ms_played >= 0
        assert parsed.artist.strip()
        assert parsed.track.strip()


@given(st.text(max_size=200))
def test_any_text_parses_or_is_refused_with_a_row(text: str) -> None:
    try:
        rows = exports.parse_export("f.json", text)
    except HistoryFileError as exc:
        refusal = str(exc)
        assert refusal.startswith(("f.json: row ", "f.json: line "))
    else:
        assert all(isinstance(r, Listen | NotMusic) for r in rows)


def test_spotify_row_details() -> None:
    row = {
        "ts": "2024-03-01T10:00:00Z",
        "ms_played": 60_000,
        "master_metadata_track_name": "Song",
        "master_metadata_album_artist_name": "Band",
        "master_metadata_album_album_name": None,
        "spotify_track_uri": "spotify:track:abc",
        "reason_end": "fwdbtn",
        "skipped": None,
    }
    parsed = exports.spotify_row(row, 1)
    assert isinstance(parsed, Listen)
    assert parsed.start_ms == 1709287200_000 - 60_000
    assert (parsed.skipped, parsed.finished, parsed.album) == (True, False, "")
    assert exports.spotify_row({**row, "master_metadata_track_name": None}, 2) == NotMusic(2)
    assert exports.spotify_row({**row, "ms_played": True}, 3) == RowError(
        3, "ms_played is missing or not a whole number of ms"
    )
    naive = exports.spotify_row({**row, "ts": "2024-03-01T10:00:00"}, 4)
    assert isinstance(naive, Listen)
    assert naive.start_ms == parsed.start_ms  # no zone: UTC, as the export writes


def test_listenbrainz_lines_are_numbered_by_line() -> None:
    good = json.dumps({"listened_at": 5, "track_metadata": {"artist_name": "A", "track_name": "T"}})
    with pytest.raises(HistoryFileError, match=r"^x\.jsonl: line 3: "):
        exports.parse_export("x.jsonl", f"{good}\n\n[1]\n")
    rows = exports.parse_export("x.jsonl", f"\n{good}\n")
    assert rows == [
        Listen(source="listenbrainz", start_ms=5000, ms_played=None, artist="A", track="T",
               album="")
    ]  # fmt: skip


def test_matching_prefers_isrc_then_album_then_popularity() -> None:
    index = CatalogIndex()
    key = names.match_key("Band", "Song")
    index.add("popular", {key}, "Greatest Hits", "AAA111")
    index.add("original", {key}, "Début", None)
    assert choose(index, isrc="aaa111", key="", album="") == "popular"
    assert choose(index, isrc="ZZZ", key=key, album="debut") == "original"
    assert choose(index, isrc=None, key=key, album="Other") == "popular"
    assert choose(index, isrc=None, key=names.match_key("Band", "Other"), album="") is None


NOW = 1_800_000_000_000


def fact(
    item: str, *, ago_days: float = 1, ms: int | None = 200_000, skipped: bool | None = False
) -> top.PlayFact:
    return top.PlayFact(
        item_id=item,
        name=item.upper(),
        played_ms=NOW - int(ago_days * top.DAY_MS),
        ms_played=ms,
        skipped=skipped,
    )


def test_early_skips_do_not_count_and_recent_plays_weigh_more() -> None:
    plays = [
        fact("a"), fact("a", ms=5_000, skipped=True), fact("a", ms=5_000, skipped=True),
        fact("b", ago_days=300), fact("b", ago_days=300), fact("b", ago_days=300),
        fact("c"), fact("c", ms=40_000, skipped=True),  # a late skip still counts
        fact("d", ms=1_000, skipped=True),
        fact("e", ms=None, skipped=None),  # ListenBrainz: a listen, length unknown
    ]  # fmt: skip
    # three plays last year outweigh two this week; a and e tie and go by name
    assert top.rank(plays, NOW) == ["b", "c", "a", "e"]
    assert top.rank([fact("x", ago_days=1), fact("y", ago_days=100)], NOW) == ["x", "y"]


@given(st.lists(st.tuples(st.sampled_from("abcdef"), st.floats(0, 1000)), max_size=30))
def test_ranking_is_by_weight_then_name(plays: list[tuple[str, float]]) -> None:
    facts = [fact(item, ago_days=age) for item, age in plays]
    ranked = top.rank(facts, NOW)
    assert sorted(ranked) == sorted({item for item, _ in plays})
    totals = {i: sum(top.weight(f, NOW) for f in facts if f.item_id == i) for i in ranked}
    for first, second in itertools.pairwise(ranked):
        assert round(totals[first], 9) >= round(totals[second], 9)
        if round(totals[first], 9) == round(totals[second], 9):
            assert first < second
