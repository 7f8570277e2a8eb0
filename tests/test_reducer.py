"""The player-state reducer: examples a listener would notice, then properties."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from connect_protocol.codec import decode, encode
from connect_protocol.errors import ErrorCode
from connect_protocol.messages import (
    MAX_QUEUE,
    AddToQueue,
    Adopt,
    Command,
    EventKind,
    Next,
    NextAlbum,
    Pause,
    Play,
    PlayerState,
    Previous,
    RepeatMode,
    Resume,
    Seek,
    SetRepeat,
    SetShuffle,
    SetVolume,
    Stop,
    TrackRef,
)
from connect_protocol.reducer import (
    EmitEvent,
    LoadTrack,
    SeekTo,
    SetPlaying,
    TrackEnded,
    Transition,
    next_album_index,
    position_at,
    rebased,
    reduce,
)

ALBUM = tuple(
    TrackRef(uri=f"legato:track:t{i}", duration_ms=60_000 + i * 1000, name=f"T{i}")
    for i in range(5)
)
EXTRA = TrackRef(uri="legato:track:extra", duration_ms=30_000)


def run(state: PlayerState, cmds: Sequence[Command | TrackEnded], t0: int = 0) -> Transition:
    out = Transition(state)
    for i, cmd in enumerate(cmds):
        out = reduce(out.state, cmd, now_ms=t0 + i)
    return out


def playing(offset: int = 0, **kw: object) -> PlayerState:
    s = dataclasses.replace(PlayerState(), **kw)  # type: ignore[arg-type]
    return reduce(s, Play(id="p", tracks=ALBUM, offset=offset), now_ms=0).state


def test_play_loads_the_offset_track_and_starts() -> None:
    out = reduce(PlayerState(), Play(id="p", tracks=ALBUM, offset=2, position_ms=500), now_ms=10)
    assert out.ack is not None
    assert out.ack.ok
    assert out.state.current == ALBUM[2]
    assert out.state.is_playing
    assert out.state.position_ms == 500
    assert LoadTrack(track=ALBUM[2], position_ms=500, playing=True) in out.effects
    assert out.state.revision == 1


def test_position_advances_with_the_clock_and_stops_at_the_end() -> None:
    s = playing()
    assert position_at(s, 1_500) == 1_500
    assert position_at(s, 10**9) == ALBUM[0].duration_ms
    paused = reduce(s, Pause(id="x"), now_ms=2_000).state
    assert position_at(paused, 50_000) == 2_000


def test_commands_need_a_loaded_track() -> None:
    for cmd in (Pause(id="a"), Resume(id="b"), Seek(id="c", position_ms=1), Next(id="d")):
        out = reduce(PlayerState(), cmd, now_ms=0)
        assert out.ack is not None
        assert out.ack.error is ErrorCode.NO_TRACK
        assert out.state == PlayerState()


def test_stale_expected_revision_is_a_conflict() -> None:
    s = playing()
    out = reduce(s, Pause(id="x", expected_revision=s.revision - 1), now_ms=5)
    assert out.ack is not None
    assert out.ack.error is ErrorCode.CONFLICT
    assert out.state is s
    ok = reduce(s, Pause(id="y", expected_revision=s.revision), now_ms=5)
    assert ok.ack is not None
    assert ok.ack.ok


def test_next_plays_the_queue_before_the_context() -> None:
    s = run(playing(), [AddToQueue(id="q", track=EXTRA), Next(id="n")]).state
    assert s.current == EXTRA
    assert s.index == 0
    s = reduce(s, Next(id="n2"), now_ms=10).state
    assert s.current == ALBUM[1]


def test_end_of_context_with_repeat_off_stops_on_first_track() -> None:
    s = playing(offset=4)
    out = reduce(s, TrackEnded(uri=ALBUM[4].uri), now_ms=5)
    assert not out.state.is_playing
    assert out.state.current == ALBUM[0]
    assert (
        EmitEvent(kind=EventKind.FINISHED, track_uri=ALBUM[4].uri, played_ms=ALBUM[4].duration_ms)
        in out.effects
    )


def ended_events(out: Transition) -> list[EmitEvent]:
    return [
        e for e in out.effects if isinstance(e, EmitEvent) and e.kind is EventKind.CONTEXT_ENDED
    ]


def test_end_of_context_says_the_context_ended_naming_its_last_track() -> None:
    out = reduce(playing(offset=4), TrackEnded(uri=ALBUM[4].uri), now_ms=5)
    assert ended_events(out) == [
        EmitEvent(kind=EventKind.CONTEXT_ENDED, track_uri=ALBUM[4].uri, played_ms=0)
    ]
    # skipping past the last track ends the context too (autoplay goes on from there)
    skipped = reduce(playing(offset=4), Next(id="n"), now_ms=5)
    assert [e.track_uri for e in ended_events(skipped)] == [ALBUM[4].uri]


def test_context_does_not_end_mid_album_with_repeat_or_with_a_queue() -> None:
    assert ended_events(reduce(playing(offset=3), TrackEnded(uri=ALBUM[3].uri), now_ms=5)) == []
    looping = reduce(playing(offset=4), SetRepeat(id="r", mode=RepeatMode.CONTEXT), now_ms=1)
    assert ended_events(reduce(looping.state, TrackEnded(uri=ALBUM[4].uri), now_ms=5)) == []
    queued = reduce(playing(offset=4), AddToQueue(id="q", track=EXTRA), now_ms=1).state
    out = reduce(queued, TrackEnded(uri=ALBUM[4].uri), now_ms=5)
    assert out.state.current == EXTRA
    assert ended_events(out) == []
    # the queued track was the last thing to play: now the context has run out
    last = reduce(out.state, TrackEnded(uri=EXTRA.uri), now_ms=6)
    assert [e.track_uri for e in ended_events(last)] == [EXTRA.uri]


def test_previous_from_a_queued_track_returns_to_the_context_track() -> None:
    s = run(playing(offset=2), [AddToQueue(id="q", track=EXTRA), Next(id="n")]).state
    assert s.current == EXTRA
    assert s.from_queue
    back = reduce(s, Previous(id="p"), now_ms=s.timestamp_ms + 500).state
    assert back.current == ALBUM[2]
    assert not back.from_queue
    assert reduce(s, Next(id="n2"), now_ms=s.timestamp_ms + 500).state.current == ALBUM[3]


def test_shuffled_play_without_offset_starts_anywhere_but_offset_is_obeyed() -> None:
    shuffled = dataclasses.replace(PlayerState(), shuffle=True)
    starts = {
        reduce(shuffled, Play(id=f"p{i}", tracks=ALBUM), now_ms=0).state.current for i in range(40)
    }
    assert len(starts) > 2
    assert reduce(PlayerState(), Play(id="p", tracks=ALBUM), now_ms=0).state.current == ALBUM[0]
    pinned = reduce(shuffled, Play(id="p", tracks=ALBUM, offset=3), now_ms=0).state
    assert pinned.current == ALBUM[3]


def test_adopt_takes_over_a_session_whole() -> None:
    source = run(
        playing(offset=1),
        [
            SetShuffle(id="s", state=True),
            SetRepeat(id="r", mode=RepeatMode.CONTEXT),
            AddToQueue(id="q", track=EXTRA),
            AddToQueue(id="q2", track=ALBUM[0]),
            Next(id="n"),
        ],
    ).state
    assert source.from_queue
    adopt = Adopt(
        id="a",
        tracks=source.tracks,
        order=source.order,
        index=source.index,
        current=source.current or EXTRA,
        from_queue=True,
        queue=source.queue,
        position_ms=1234,
        shuffle=True,
        repeat=RepeatMode.CONTEXT,
    )
    target = reduce(dataclasses.replace(PlayerState(), volume_percent=80), adopt, now_ms=9)
    assert target.ack is not None
    assert target.ack.ok
    t = target.state
    assert (t.current, t.order, t.index, t.queue, t.position_ms) == (
        EXTRA,
        source.order,
        source.index,
        source.queue,
        1234,
    )
    assert (t.shuffle, t.repeat, t.volume_percent, t.is_playing) == (
        True,
        RepeatMode.CONTEXT,
        80,
        True,
    )
    assert reduce(t, Next(id="n"), now_ms=10).state.current == ALBUM[0]  # the queue goes on


def test_adopt_refuses_a_broken_session() -> None:
    bad = Adopt(id="a", tracks=ALBUM, order=(0, 0, 1, 2, 3), index=0, current=ALBUM[0])
    out = reduce(PlayerState(), bad, now_ms=0)
    assert out.ack is not None
    assert out.ack.error is ErrorCode.INVALID_VALUE
    wrong_current = Adopt(id="a", tracks=ALBUM, order=tuple(range(5)), index=1, current=ALBUM[0])
    out = reduce(PlayerState(), wrong_current, now_ms=0)
    assert out.ack is not None
    assert out.ack.error is ErrorCode.INVALID_VALUE


def test_repeat_track_replays_on_end_but_next_still_skips() -> None:
    s = reduce(playing(offset=1), SetRepeat(id="r", mode=RepeatMode.TRACK), now_ms=1).state
    s2 = reduce(s, TrackEnded(uri=ALBUM[1].uri), now_ms=2).state
    assert s2.current == ALBUM[1]
    assert s2.position_ms == 0
    assert reduce(s2, Next(id="n"), now_ms=3).state.current == ALBUM[2]


def test_repeat_context_wraps_around() -> None:
    s = reduce(playing(offset=4), SetRepeat(id="r", mode=RepeatMode.CONTEXT), now_ms=1).state
    s = reduce(s, Next(id="n"), now_ms=2).state
    assert s.current == ALBUM[0]
    assert s.is_playing


def test_stale_track_end_is_ignored() -> None:
    s = playing()
    out = reduce(s, TrackEnded(uri=ALBUM[3].uri), now_ms=5)
    assert out.state is s
    assert out.effects == ()


def test_previous_restarts_after_three_seconds_else_goes_back() -> None:
    s = playing(offset=2)
    late = reduce(s, Previous(id="p"), now_ms=10_000)
    assert late.state.current == ALBUM[2]
    assert SeekTo(position_ms=0) in late.effects
    early = reduce(s, Previous(id="p"), now_ms=1_000)
    assert early.state.current == ALBUM[1]


def test_seek_past_the_end_skips_to_the_next_track() -> None:
    s = playing()
    out = reduce(s, Seek(id="s", position_ms=ALBUM[0].duration_ms + 5), now_ms=1)
    assert out.state.current == ALBUM[1]


def test_volume_out_of_range_refused() -> None:
    out = reduce(PlayerState(), SetVolume(id="v", volume_percent=101), now_ms=0)
    assert out.ack is not None
    assert out.ack.error is ErrorCode.INVALID_VALUE


def test_shuffle_keeps_the_current_track_and_unshuffle_restores_order() -> None:
    s = playing(offset=3)
    on = reduce(s, SetShuffle(id="s", state=True), now_ms=1).state
    assert on.current == ALBUM[3]
    assert on.order[on.index or 0] == 3
    assert sorted(on.order) == list(range(5))
    off = reduce(on, SetShuffle(id="s2", state=False), now_ms=2).state
    assert off.order == tuple(range(5))
    assert off.index == 3


def test_pause_resume_effects() -> None:
    s = playing()
    assert SetPlaying(playing=False) in reduce(s, Pause(id="a"), now_ms=1).effects
    assert SetPlaying(playing=True) in reduce(s, Resume(id="a"), now_ms=1).effects


def mixtape() -> tuple[TrackRef, ...]:
    """A playlist of three albums (A A B B C), then A again: five albums in runs."""
    albums = "AABBCA"
    return tuple(
        TrackRef(uri=f"legato:track:m{i}", duration_ms=60_000, album=f"Album {a}")
        for i, a in enumerate(albums)
    )


def test_next_album_skips_to_the_first_track_of_the_next_album() -> None:
    s = reduce(PlayerState(), Play(id="p", tracks=mixtape(), offset=0), now_ms=0).state
    out = reduce(s, NextAlbum(id="a"), now_ms=1_000)
    assert out.ack is not None
    assert out.ack.ok
    assert out.state.current == mixtape()[2]  # the first of Album B
    assert out.state.is_playing
    assert out.state.revision == s.revision + 1
    kinds = [e.kind for e in out.effects if isinstance(e, EmitEvent)]
    assert kinds == [EventKind.SKIPPED, EventKind.STARTED]
    # the same album coming back later in a playlist is another album
    again = run(out.state, [NextAlbum(id="b"), NextAlbum(id="c")]).state
    assert again.current == mixtape()[5]


def test_next_album_past_the_last_album_ends_the_context() -> None:
    s = reduce(PlayerState(), Play(id="p", tracks=ALBUM, offset=1), now_ms=0).state
    out = reduce(s, NextAlbum(id="a"), now_ms=10)
    assert out.state.current == ALBUM[0]
    assert not out.state.is_playing
    assert EventKind.CONTEXT_ENDED in [e.kind for e in ended_events(out)]
    # with repeat on, it wraps to the context's first track and plays on
    s = reduce(s, SetRepeat(id="r", mode=RepeatMode.CONTEXT), now_ms=20).state
    wrapped = reduce(s, NextAlbum(id="b"), now_ms=30).state
    assert wrapped.current == ALBUM[0]
    assert wrapped.is_playing


def test_next_album_plays_the_queue_first_and_needs_a_track() -> None:
    s = reduce(PlayerState(), Play(id="p", tracks=mixtape(), offset=0), now_ms=0).state
    s = reduce(s, AddToQueue(id="q", track=EXTRA), now_ms=1).state
    assert next_album_index(s) == 2
    queued = reduce(s, NextAlbum(id="a"), now_ms=2).state
    assert queued.current == EXTRA
    assert queued.from_queue
    refused = reduce(PlayerState(), NextAlbum(id="b"), now_ms=0)
    assert refused.ack is not None
    assert refused.ack.error is ErrorCode.NO_TRACK


# --- properties ----------------------------------------------------------------

tracks = st.builds(
    TrackRef,
    uri=st.sampled_from([f"legato:track:{c}" for c in "abcdefgh"]),
    duration_ms=st.integers(min_value=-5, max_value=400_000),
    album=st.sampled_from(["", "A", "B"]),
)
ids = st.text(alphabet="abc123", min_size=1, max_size=6)
revisions = st.none() | st.integers(min_value=-1, max_value=40)
commands = st.one_of(
    st.builds(
        Play,
        id=ids,
        tracks=st.lists(tracks, max_size=6).map(tuple),
        offset=st.none() | st.integers(-1, 7),
        position_ms=st.integers(-10, 500_000),
        paused=st.booleans(),
        expected_revision=revisions,
    ),
    st.builds(Pause, id=ids, expected_revision=revisions),
    st.builds(Resume, id=ids, expected_revision=revisions),
    st.builds(Seek, id=ids, position_ms=st.integers(-1000, 500_000), expected_revision=revisions),
    st.builds(Next, id=ids, expected_revision=revisions),
    st.builds(NextAlbum, id=ids, expected_revision=revisions),
    st.builds(Previous, id=ids, expected_revision=revisions),
    st.builds(SetVolume, id=ids, volume_percent=st.integers(-5, 105)),
    st.builds(SetShuffle, id=ids, state=st.booleans()),
    st.builds(SetRepeat, id=ids, mode=st.sampled_from(RepeatMode)),
    st.builds(AddToQueue, id=ids, track=tracks),
    st.builds(Stop, id=ids),
    st.builds(
        Adopt,
        id=ids,
        tracks=st.lists(tracks, max_size=4).map(tuple),
        order=st.lists(st.integers(0, 4), max_size=4).map(tuple),
        index=st.none() | st.integers(-1, 4),
        current=tracks,
        from_queue=st.booleans(),
        queue=st.lists(tracks, max_size=3).map(tuple),
        position_ms=st.integers(-10, 500_000),
    ),
)
inputs = st.one_of(commands, st.builds(TrackEnded, uri=tracks.map(lambda t: t.uri)))


def check_invariants(s: PlayerState) -> None:
    assert sorted(s.order) == list(range(len(s.tracks)))
    if s.tracks:
        assert s.index is not None
        assert 0 <= s.index < len(s.order)
    else:
        assert s.index is None
    assert len(s.queue) <= MAX_QUEUE
    if s.current is None:
        assert not s.is_playing
        assert s.position_ms == 0
    else:
        assert 0 <= s.position_ms <= s.current.duration_ms
    assert 0 <= s.volume_percent <= 100
    if s.from_queue:
        assert s.current is not None
    elif s.current is not None and s.index is not None:
        assert s.current == s.tracks[s.order[s.index]]


@settings(max_examples=300)
@given(st.lists(st.tuples(inputs, st.integers(0, 100_000)), max_size=30))
def test_revision_rises_and_invariants_hold(steps: list[tuple[Command | TrackEnded, int]]) -> None:
    state, now = PlayerState(), 0
    for cmd, dt in steps:
        now += dt
        out = reduce(state, cmd, now_ms=now)
        if isinstance(cmd, TrackEnded):
            assert out.ack is None
            assert out.state.revision in (state.revision, state.revision + 1)
        else:
            assert out.ack is not None
            assert out.ack.id == cmd.id
            if out.ack.ok:
                assert out.state.revision == state.revision + 1
                assert out.ack.revision == out.state.revision
            else:
                assert out.state == state
                assert out.ack.error is not None
        check_invariants(out.state)
        # Whatever the reducer makes, the hub and remotes can read back.
        assert decode(PlayerState, encode(out.state)) == out.state
        assert (
            0
            <= position_at(out.state, now + 10**7)
            <= (out.state.current.duration_ms if out.state.current else 0)
        )
        state = out.state


def _runs_out(before: PlayerState, cmd: Command | TrackEnded) -> bool:
    """Whether ``cmd`` ends the context's last track with repeat off and nothing queued."""
    if before.current is None or before.index is None or before.queue:
        return False
    if before.repeat is not RepeatMode.OFF:
        return False
    if isinstance(cmd, NextAlbum) and not before.from_queue:
        stale = cmd.expected_revision not in (None, before.revision)
        return not stale and next_album_index(before) is None
    if before.index + 1 < len(before.order):
        return False
    match cmd:
        case TrackEnded(uri=uri):
            return uri == before.current.uri
        case (
            Next(expected_revision=rev)
            | NextAlbum(expected_revision=rev)
            | Seek(expected_revision=rev)
        ):
            if rev is not None and rev != before.revision:
                return False
            return not isinstance(cmd, Seek) or cmd.position_ms >= before.current.duration_ms
    return False


@settings(max_examples=300)
@given(st.lists(inputs, max_size=30))
def test_context_ended_is_emitted_exactly_when_the_context_runs_out(
    steps: list[Command | TrackEnded],
) -> None:
    state = PlayerState()
    for i, cmd in enumerate(steps):
        out = reduce(state, cmd, now_ms=i)
        ended = ended_events(out)
        assert len(ended) <= 1
        assert bool(ended) == _runs_out(state, cmd)
        if ended:
            assert state.current is not None
            assert ended[0].track_uri == state.current.uri
        state = out.state


@given(st.lists(commands, max_size=20))
def test_reducer_is_deterministic(cmds: list[Command]) -> None:
    assert run(PlayerState(), cmds) == run(PlayerState(), cmds)


@given(
    st.lists(commands, max_size=12),
    st.integers(0, 500_000),
    st.integers(0, 500_000),
)
def test_a_rebased_state_says_the_same_position_now_and_later(
    cmds: list[Command], later: int, after: int
) -> None:
    # Republished on reconnect, a state must not move the progress a receiver shows.
    s = run(PlayerState(), cmds).state
    now = len(cmds) + later
    moved = rebased(s, now)
    assert moved.revision == s.revision
    assert moved.timestamp_ms == now
    assert position_at(moved, now) == position_at(s, now)
    assert position_at(moved, now + after) == position_at(s, now + after)
