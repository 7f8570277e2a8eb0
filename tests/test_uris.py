"""Catalog URIs: one parser for hub and speaker."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from connect_protocol.uris import ParsedUri, split_uri, track_id_of, uri_of

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
