"""The player-state machine: a pure reducer.

``reduce(state, input, now_ms)`` returns the next state, the effects the audio
engine must carry out, and (for commands) the ack.  No clocks, sockets or
randomness inside: time comes in as ``now_ms`` and shuffling is seeded from
the state, so every transition can be replayed in a test.

Invariants (checked by the property tests):
- an accepted command raises ``revision`` by exactly one; a refused one leaves
  the state untouched;
- ``order`` is a permutation of ``range(len(tracks))``; ``index`` is ``None``
  exactly when ``tracks`` is empty, else ``0 <= index < len(order)``;
- ``0 <= position_ms <= current.duration_ms`` (and ``0`` with nothing loaded);
- ``len(queue) <= MAX_QUEUE``; ``is_playing`` implies ``current`` is set;
- unless ``from_queue``, a loaded context track is ``tracks[order[index]]``;
- ``context_ended`` is emitted exactly when the context runs out: its last track
  ends or is skipped, or its last album is skipped (``NextAlbum``), with repeat off
  and an empty queue (once, naming the track that was playing).
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass

from connect_protocol.errors import ErrorCode
from connect_protocol.messages import (
    MAX_QUEUE,
    Ack,
    AddToQueue,
    Adopt,
    Command,
    Downloads,
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

#: Within this much of the start, "previous" goes back a track instead of restarting.
RESTART_THRESHOLD_MS = 3000


# --- inputs the engine feeds back ----------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class TrackEnded:
    """The engine played ``uri`` to its end (stale reports are ignored)."""

    uri: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DownloadsReport:
    """The download manager's progress, carried in the state for remotes to draw."""

    downloads: Downloads


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineReport:
    """Where the audio really is: sets the position from frames heard.

    Sent when output starts, stalls (``buffering``) or resumes, so remotes
    extrapolate from what the speaker plays, not from when a command arrived.
    """

    uri: str
    position_ms: int
    buffering: bool


# --- effects for the engine ----------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadTrack:
    track: TrackRef
    position_ms: int
    playing: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class SetPlaying:
    playing: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class SeekTo:
    position_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplyVolume:
    volume_percent: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Unload:
    """Stop and forget the loaded track."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EmitEvent:
    kind: EventKind
    track_uri: str | None
    played_ms: int = 0


Effect = LoadTrack | SetPlaying | SeekTo | ApplyVolume | Unload | EmitEvent


@dataclass(frozen=True, slots=True)
class Transition:
    state: PlayerState
    effects: tuple[Effect, ...] = ()
    ack: Ack | None = None


# --- helpers -------------------------------------------------------------------


def position_at(state: PlayerState, now_ms: int) -> int:
    """Where playback is at ``now_ms``, extrapolated while playing."""
    if state.current is None:
        return 0
    pos = state.position_ms
    if state.is_playing and not state.buffering:
        pos += max(0, now_ms - state.timestamp_ms)
    return max(0, min(pos, state.current.duration_ms))


def rebased(state: PlayerState, now_ms: int) -> PlayerState:
    """The same state (same revision) with its position taken at ``now_ms``.

    A state published again later (on reconnect) must say where playback is
    now: a receiver that stamps live states with its own clock would otherwise
    take the old position for the current one and jump the progress back.
    """
    if state.current is None or not state.is_playing or state.buffering:
        return dataclasses.replace(state, timestamp_ms=now_ms)
    return dataclasses.replace(state, position_ms=position_at(state, now_ms), timestamp_ms=now_ms)


def _clamp(position_ms: int, track: TrackRef) -> int:
    return max(0, min(position_ms, track.duration_ms))


def shuffled_order(count: int, first: int | None, seed: int) -> tuple[int, ...]:
    """A seeded permutation of ``range(count)`` that starts with ``first``."""
    rest = [i for i in range(count) if i != first]
    random.Random(seed).shuffle(rest)
    return tuple(([first] if first is not None else []) + rest)


def _seed_for(command_id: str, revision: int) -> int:
    """A seed from the command, deterministic across processes (unlike ``hash()``).

    Kept below 2**53 so it survives JSON in every client (the codec's int range).
    """
    digest = hashlib.sha256(f"{command_id}:{revision}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & ((1 << 52) - 1)


def _refuse(state: PlayerState, cmd: Command, code: ErrorCode, message: str) -> Transition:
    ack = Ack(id=cmd.id, ok=False, revision=state.revision, error=code, message=message)
    return Transition(state, (), ack)


def _accept(new: PlayerState, cmd: Command, effects: Sequence[Effect]) -> Transition:
    ack = Ack(id=cmd.id, ok=True, revision=new.revision)
    return Transition(new, tuple(effects), ack)


def _at_index(
    state: PlayerState, index: int, now_ms: int, *, playing: bool | None = None
) -> PlayerState:
    """State with the context track at ``order[index]`` loaded from the start."""
    track = state.tracks[state.order[index]]
    return dataclasses.replace(
        state,
        index=index,
        current=track,
        from_queue=False,
        position_ms=0,
        timestamp_ms=now_ms,
        is_playing=state.is_playing if playing is None else playing,
    )


# --- the reducer ---------------------------------------------------------------


def reduce(
    state: PlayerState,
    cmd: Command | TrackEnded | EngineReport | DownloadsReport,
    now_ms: int,
) -> Transition:
    """Apply one command (or engine or download report) to ``state`` at wall-clock ``now_ms``."""
    if isinstance(cmd, DownloadsReport):
        if cmd.downloads == state.downloads:
            return Transition(state)
        return Transition(
            dataclasses.replace(state, downloads=cmd.downloads, revision=state.revision + 1)
        )
    if isinstance(cmd, TrackEnded):
        return _track_ended(state, cmd, now_ms)
    if isinstance(cmd, EngineReport):
        return _engine_report(state, cmd, now_ms)
    if cmd.expected_revision is not None and cmd.expected_revision != state.revision:
        return _refuse(
            state,
            cmd,
            ErrorCode.CONFLICT,
            f"expected revision {cmd.expected_revision}, state is at {state.revision}",
        )
    # Settle the clock: every transition starts from the true current position.
    settled = dataclasses.replace(
        state, position_ms=position_at(state, now_ms), timestamp_ms=now_ms
    )
    first, second = _apply(settled, cmd, now_ms)
    if isinstance(first, ErrorCode):
        assert isinstance(second, str)
        return _refuse(state, cmd, first, second)
    assert not isinstance(second, str)
    new, effects = first, second
    return _accept(dataclasses.replace(new, revision=state.revision + 1), cmd, effects)


_Outcome = tuple[PlayerState, Sequence[Effect]] | tuple[ErrorCode, str]


def _apply(s: PlayerState, cmd: Command, now_ms: int) -> _Outcome:
    match cmd:
        case Play():
            return _play(s, cmd, now_ms)
        case Adopt():
            return _adopt(s, cmd, now_ms)
        case Stop():
            return dataclasses.replace(
                s,
                is_playing=False,
                context_uri=None,
                tracks=(),
                order=(),
                index=None,
                queue=(),
                current=None,
                from_queue=False,
                position_ms=0,
            ), [Unload()]
        case SetVolume(volume_percent=v):
            if not 0 <= v <= 100:
                return ErrorCode.INVALID_VALUE, "volume_percent must be between 0 and 100"
            return dataclasses.replace(s, volume_percent=v), [ApplyVolume(volume_percent=v)]
        case SetRepeat(mode=mode):
            return dataclasses.replace(s, repeat=mode), []
        case SetShuffle(state=on):
            return _shuffle(s, on, cmd.id), []
        case AddToQueue(track=track):
            if track.duration_ms <= 0:
                return ErrorCode.INVALID_VALUE, "track duration_ms must be positive"
            if len(s.queue) >= MAX_QUEUE:
                return ErrorCode.INVALID_VALUE, f"the queue is full ({MAX_QUEUE} tracks)"
            return dataclasses.replace(s, queue=(*s.queue, track)), []
    if s.current is None:
        return ErrorCode.NO_TRACK, "nothing is loaded on this speaker"
    match cmd:
        case Pause():
            return dataclasses.replace(s, is_playing=False), [SetPlaying(playing=False)]
        case Resume():
            return dataclasses.replace(s, is_playing=True), [SetPlaying(playing=True)]
        case Seek(position_ms=pos):
            if pos < 0:
                return ErrorCode.INVALID_VALUE, "position_ms must not be negative"
            if pos >= s.current.duration_ms:  # as Spotify: seeking past the end skips
                return _advance(s, now_ms, skipped=True, user=True)
            return dataclasses.replace(s, position_ms=pos), [SeekTo(position_ms=pos)]
        case Next():
            return _advance(s, now_ms, skipped=True, user=True)
        case NextAlbum():
            return _next_album(s, now_ms)
        case Previous():
            return _previous(s, now_ms)
    return (
        ErrorCode.UNKNOWN_COMMAND,
        f"unsupported command {type(cmd).__name__}",
    )  # pragma: no cover


def _play(s: PlayerState, cmd: Play, now_ms: int) -> _Outcome:
    if not cmd.tracks:
        return ErrorCode.INVALID_VALUE, "play needs at least one track"
    count = len(cmd.tracks)
    if cmd.offset is not None and not 0 <= cmd.offset < count:
        return ErrorCode.INVALID_VALUE, f"offset {cmd.offset} is outside the {count} tracks"
    if cmd.position_ms < 0:
        return ErrorCode.INVALID_VALUE, "position_ms must not be negative"
    if any(t.duration_ms <= 0 for t in cmd.tracks):
        return ErrorCode.INVALID_VALUE, "every track needs a positive duration_ms"
    seed = _seed_for(cmd.id, s.revision)
    start = cmd.offset
    if start is None:  # as Spotify: a shuffled context starts anywhere
        start = random.Random(seed).randrange(count) if s.shuffle else 0
    order = shuffled_order(count, start, seed) if s.shuffle else tuple(range(count))
    track = cmd.tracks[start]
    new = dataclasses.replace(
        s,
        context_uri=cmd.context_uri,
        tracks=cmd.tracks,
        order=order,
        index=order.index(start),
        current=track,
        from_queue=False,
        position_ms=_clamp(cmd.position_ms, track),
        timestamp_ms=now_ms,
        is_playing=not cmd.paused,
        shuffle_seed=seed,
    )
    return new, _switch_effects(s, new)


def _switch_effects(old: PlayerState, new: PlayerState) -> list[Effect]:
    """Effects of replacing what ``old`` had loaded by ``new.current``."""
    assert new.current is not None
    effects: list[Effect] = []
    if old.current is not None and old.is_playing:
        effects.append(
            EmitEvent(kind=EventKind.SKIPPED, track_uri=old.current.uri, played_ms=old.position_ms)
        )
    effects.append(
        LoadTrack(track=new.current, position_ms=new.position_ms, playing=new.is_playing)
    )
    if new.is_playing:
        effects.append(EmitEvent(kind=EventKind.STARTED, track_uri=new.current.uri))
    return effects


def _adopt(s: PlayerState, cmd: Adopt, now_ms: int) -> _Outcome:
    """Take over a session handed from another speaker, after checking it is whole."""
    if sorted(cmd.order) != list(range(len(cmd.tracks))):
        return ErrorCode.INVALID_VALUE, "order must be a permutation of the tracks"
    if cmd.tracks and (cmd.index is None or not 0 <= cmd.index < len(cmd.order)):
        return ErrorCode.INVALID_VALUE, "index must point into order"
    if not cmd.tracks and (cmd.index is not None or not cmd.from_queue):
        return ErrorCode.INVALID_VALUE, "without tracks, the current track must be from the queue"
    if (
        cmd.index is not None
        and not cmd.from_queue
        and cmd.tracks[cmd.order[cmd.index]] != cmd.current
    ):
        return ErrorCode.INVALID_VALUE, "current must be the track at index unless from_queue"
    if len(cmd.queue) > MAX_QUEUE:
        return ErrorCode.INVALID_VALUE, f"the queue holds at most {MAX_QUEUE} tracks"
    if cmd.position_ms < 0:
        return ErrorCode.INVALID_VALUE, "position_ms must not be negative"
    if any(t.duration_ms <= 0 for t in (*cmd.tracks, *cmd.queue, cmd.current)):
        return ErrorCode.INVALID_VALUE, "every track needs a positive duration_ms"
    new = dataclasses.replace(
        s,
        context_uri=cmd.context_uri,
        tracks=cmd.tracks,
        order=cmd.order,
        index=cmd.index,
        current=cmd.current,
        from_queue=cmd.from_queue,
        queue=cmd.queue,
        position_ms=_clamp(cmd.position_ms, cmd.current),
        timestamp_ms=now_ms,
        is_playing=not cmd.paused,
        shuffle=cmd.shuffle,
        repeat=cmd.repeat,
    )
    return new, _switch_effects(s, new)


def _shuffle(s: PlayerState, on: bool, command_id: str) -> PlayerState:
    if on == s.shuffle or not s.tracks:
        return dataclasses.replace(s, shuffle=on)
    current_pos = s.order[s.index] if s.index is not None else None
    if on:
        seed = _seed_for(command_id, s.revision)
        order = shuffled_order(len(s.tracks), current_pos, seed)
        return dataclasses.replace(s, shuffle=True, order=order, index=0, shuffle_seed=seed)
    order = tuple(range(len(s.tracks)))
    index = current_pos if current_pos is not None else 0
    return dataclasses.replace(s, shuffle=False, order=order, index=index)


def _advance(
    s: PlayerState, now_ms: int, *, skipped: bool, user: bool
) -> tuple[PlayerState, list[Effect]]:
    """Move to what plays next: the queue first, then the context."""
    assert s.current is not None
    ended = EmitEvent(
        kind=EventKind.SKIPPED if skipped else EventKind.FINISHED,
        track_uri=s.current.uri,
        played_ms=s.position_ms,
    )
    effects: list[Effect] = [ended]
    if not user and s.repeat is RepeatMode.TRACK:
        new = dataclasses.replace(s, position_ms=0, timestamp_ms=now_ms)
    elif s.queue:
        new = dataclasses.replace(
            s,
            current=s.queue[0],
            from_queue=True,
            queue=s.queue[1:],
            position_ms=0,
            timestamp_ms=now_ms,
        )
    elif s.index is not None and s.index + 1 < len(s.order):
        new = _at_index(s, s.index + 1, now_ms)
    elif s.index is not None and (s.repeat is not RepeatMode.OFF):
        new = _at_index(s, 0, now_ms)
    elif s.index is not None:
        # End of the context: rewind to its first track and stop there; say so, so
        # the hub may go on (autoplay) with what the listener would like next.
        new = _at_index(s, 0, now_ms, playing=False)
        effects.append(
            EmitEvent(kind=EventKind.CONTEXT_ENDED, track_uri=s.current.uri, played_ms=0)
        )
    else:
        # Only queued tracks were playing and the queue is now empty.
        new = dataclasses.replace(
            s, current=None, from_queue=False, position_ms=0, is_playing=False
        )
        return new, [*effects, Unload()]
    assert new.current is not None
    effects.append(LoadTrack(track=new.current, position_ms=0, playing=new.is_playing))
    if new.is_playing:
        effects.append(EmitEvent(kind=EventKind.STARTED, track_uri=new.current.uri))
    return new, effects


def _album_of(track: TrackRef, position: int) -> tuple[str, str] | int:
    """What makes tracks one album: its name and first artist ("Greatest Hits" by two
    artists are two albums); a track with no album name is an album of its own."""
    if not track.album:
        return position
    return track.album, track.artists[0] if track.artists else ""


def next_album_index(s: PlayerState) -> int | None:
    """Where in ``order`` the next album of the context starts (``None``: none follows).

    An album is a run of tracks of the same album, so a playlist that comes back to
    an album later counts that as another album.
    """
    if s.index is None or s.current is None:
        return None
    album = _album_of(s.tracks[s.order[s.index]], s.index)
    for i in range(s.index + 1, len(s.order)):
        if _album_of(s.tracks[s.order[i]], i) != album:
            return i
    return None


def _next_album(s: PlayerState, now_ms: int) -> tuple[PlayerState, list[Effect]]:
    assert s.current is not None
    if s.queue or s.from_queue or s.index is None:  # the queue first, as "next"
        return _advance(s, now_ms, skipped=True, user=True)
    start = next_album_index(s)
    if start is None:  # no album follows: as "next" from the context's last track
        return _advance(
            dataclasses.replace(s, index=len(s.order) - 1), now_ms, skipped=True, user=True
        )
    new = _at_index(s, start, now_ms)
    return new, _skipped_to(s, new)


def _skipped_to(old: PlayerState, new: PlayerState) -> list[Effect]:
    """Effects of a listener skipping from ``old``'s track to ``new``'s, from its start."""
    assert old.current is not None
    assert new.current is not None
    effects: list[Effect] = [
        EmitEvent(kind=EventKind.SKIPPED, track_uri=old.current.uri, played_ms=old.position_ms),
        LoadTrack(track=new.current, position_ms=0, playing=new.is_playing),
    ]
    if new.is_playing:
        effects.append(EmitEvent(kind=EventKind.STARTED, track_uri=new.current.uri))
    return effects


def _previous(s: PlayerState, now_ms: int) -> tuple[PlayerState, list[Effect]]:
    assert s.current is not None
    if s.position_ms > RESTART_THRESHOLD_MS or s.index is None:
        return dataclasses.replace(s, position_ms=0), [SeekTo(position_ms=0)]
    if s.from_queue:
        new = _at_index(s, s.index, now_ms)  # back to the context track before the queue
    elif s.index > 0:
        new = _at_index(s, s.index - 1, now_ms)
    elif s.repeat is RepeatMode.CONTEXT:
        new = _at_index(s, len(s.order) - 1, now_ms)
    else:
        return dataclasses.replace(s, position_ms=0), [SeekTo(position_ms=0)]
    return new, _skipped_to(s, new)


def _track_ended(state: PlayerState, ended: TrackEnded, now_ms: int) -> Transition:
    if state.current is None or state.current.uri != ended.uri:
        return Transition(state)  # a stale report from a track already replaced
    settled = dataclasses.replace(state, position_ms=state.current.duration_ms, timestamp_ms=now_ms)
    new, effects = _advance(settled, now_ms, skipped=False, user=False)
    return Transition(dataclasses.replace(new, revision=state.revision + 1), tuple(effects))


def _engine_report(state: PlayerState, report: EngineReport, now_ms: int) -> Transition:
    if state.current is None or state.current.uri != report.uri:
        return Transition(state)  # about a track already replaced
    position = _clamp(report.position_ms, state.current)
    if state.buffering == report.buffering and abs(position_at(state, now_ms) - position) < 50:
        return Transition(state)  # nothing a remote would notice
    new = dataclasses.replace(
        state,
        position_ms=position,
        timestamp_ms=now_ms,
        buffering=report.buffering,
        revision=state.revision + 1,
    )
    return Transition(new)
