"""Catalog URIs: one parser for hub and speaker."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from connect_protocol.uris import (
    ParsedUri,
    kind_of,
    radio_seed_of,
    radio_uri_of,
    split_uri,
    track_id_of,
    uri_of,
)

ids = st.text("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", min_size=1)


@given(kind=st.sampled_from(["track", "album", "playlist", "artist"]), item_id=ids)
def test_a_canonical_uri_splits_back_into_its_parts(kind: str, item_id: str) -> None:
    assert split_uri(uri_of(kind, item_id)) == ParsedUri(kind, item_id)
    assert track_id_of(uri_of(kind, item_id)) == item_id


def test_spotify_uris_are_accepted_and_others_refused() -> None:
    assert split_uri("spotify:track:abc123") == ParsedUri("track", "abc123")
    assert split_uri("http:track:abc") is None
    assert split_uri("legato:track") is None
    assert split_uri("legato:track:a-b") is None
    assert split_uri("legato:track:a:b") is None


@given(kind=st.sampled_from(["track", "album", "artist"]), item_id=ids)
def test_a_radio_context_names_its_seed_and_is_no_catalog_item(kind: str, item_id: str) -> None:
    uri = radio_uri_of(kind, item_id)
    assert uri == f"legato:radio:{kind}:{item_id}"
    assert radio_seed_of(uri) == ParsedUri(kind, item_id)
    assert kind_of(uri) == "radio"
    assert split_uri(uri) is None  # never resolved as a track, album or playlist
    assert track_id_of(uri) == item_id


def test_only_radios_of_tracks_albums_and_artists_are_radios() -> None:
    assert kind_of("legato:album:abc") == "album"
    assert radio_seed_of("legato:album:abc") is None
    assert radio_seed_of("legato:radio:playlist:abc") is None
    assert radio_seed_of("spotify:radio:album:abc") is None
    assert radio_seed_of("legato:radio:album:a-b") is None
    assert radio_seed_of("legato:radio:album") is None
