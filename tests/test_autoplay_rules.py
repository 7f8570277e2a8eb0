"""Which radio goes on after a context ends (pure rule behind autoplay)."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from connect_protocol.messages import PlayerState
from connect_protocol.uris import ParsedUri, radio_seed_of
from hub.fleet.autoplay import Ended, continuation, moved_on

ids = st.text("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", min_size=1)
contexts = st.one_of(
    st.none(),
    st.builds(
        lambda k, i: f"legato:{k}:{i}", st.sampled_from(["album", "artist", "playlist"]), ids
    ),
    st.builds(lambda k, i: f"legato:radio:{k}:{i}", st.sampled_from(["album", "track"]), ids),
    st.text(max_size=30),
)


def test_an_album_goes_on_with_its_own_radio_and_a_radio_from_its_last_track() -> None:
    last = "legato:track:last1"
    assert continuation("legato:album:abc", last) == "legato:radio:album:abc"
    assert continuation("spotify:artist:abc", last) == "legato:radio:artist:abc"
    assert continuation("legato:radio:album:abc", last) == "legato:radio:track:last1"
    assert continuation("legato:playlist:abc", last) == "legato:radio:track:last1"
    assert continuation(None, last) == "legato:radio:track:last1"


@given(contexts, ids)
def test_whatever_ended_the_continuation_is_a_radio(context: str | None, last_id: str) -> None:
    seed = radio_seed_of(continuation(context, f"legato:track:{last_id}"))
    assert seed is not None
    assert seed.kind in ("album", "artist", "track")
    if seed.kind == "track":
        assert seed == ParsedUri("track", last_id)


def test_autoplay_gives_way_only_to_a_newer_state_that_moved_on() -> None:
    album = "legato:album:A1"
    ended = Ended("kitchen", 1, album, ("t1", "t2"), "legato:track:t2", 40, "s1")
    at_end = PlayerState(session="s1", revision=40, is_playing=True, context_uri=album)
    assert not moved_on(at_end, ended)  # the speaker's own end state has not come yet
    stopped = replace(at_end, revision=41, is_playing=False)
    assert not moved_on(stopped, ended)  # it came: rewound and stopped, still the album
    other = replace(stopped, revision=42, is_playing=True, context_uri="legato:album:B2")
    assert moved_on(other, ended)  # a listener started something else meanwhile
    paused_other = replace(other, is_playing=False)
    assert moved_on(paused_other, ended)
    assert moved_on(replace(at_end, session="s2", revision=1), ended)  # restarted speaker
