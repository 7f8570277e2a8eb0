"""A control's action over the player state -> the Connect command it stands for.

Pure: the speaker's controller applies the result exactly as it applies a
command from the hub, so the state, its revision, the hub and every remote see
a knob turn like any other change.  ``None`` means the action has nothing to do
(skipping with nothing loaded, turning up a volume already at 100).
"""

from __future__ import annotations

from dataclasses import dataclass

from connect_protocol.messages import (
    Command,
    Next,
    NextAlbum,
    Pause,
    Play,
    PlayerState,
    Previous,
    Resume,
    SetVolume,
    Stop,
    TrackRef,
)
from hardware.controls.keymap import Action

#: Volume steps a maker may choose (percent per detent or button step).
VOLUME_STEPS = range(1, 21)


@dataclass(frozen=True, slots=True)
class LastContext:
    """What played last, so the play button can start it again after a stop."""

    context_uri: str | None
    tracks: tuple[TrackRef, ...]
    offset: int  # index into tracks of the track that was current
    position_ms: int


def last_context_of(state: PlayerState) -> LastContext | None:
    """What ``state`` would resume from after a stop (``None``: nothing in a context)."""
    if not state.tracks or state.index is None:
        return None
    offset = state.order[state.index]
    position = state.position_ms if not state.from_queue else 0
    return LastContext(state.context_uri, state.tracks, offset, position)


def worth_keeping(old: LastContext | None, new: LastContext, *, playing: bool) -> bool:
    """Whether ``new`` should replace what is kept: another context or track, or a
    position that matters (paused).  While playing, a position that moves with every
    state change is not worth a write: play after a stop starts that track again."""
    if old is None or (new.context_uri, new.offset) != (old.context_uri, old.offset):
        return True
    if new.tracks is not old.tracks and new.tracks != old.tracks:
        return True
    return not playing and new.position_ms != old.position_ms


def volume_after(state: PlayerState, steps: int, step_percent: int) -> int:
    """The volume ``steps`` steps (negative: down) from the state's, within 0..100."""
    return max(0, min(100, state.volume_percent + steps * step_percent))


def volume_command(
    state: PlayerState, steps: int, *, step_percent: int, command_id: str
) -> SetVolume | None:
    target = volume_after(state, steps, step_percent)
    if target == state.volume_percent:
        return None
    return SetVolume(id=command_id, volume_percent=target)


def command_for(
    action: Action,
    state: PlayerState,
    *,
    command_id: str,
    step_percent: int,
    last: LastContext | None = None,
) -> Command | None:
    """The command ``action`` stands for now (``None``: nothing to do)."""
    loaded = state.current is not None
    match action:
        case Action.VOLUME_UP:
            return volume_command(state, 1, step_percent=step_percent, command_id=command_id)
        case Action.VOLUME_DOWN:
            return volume_command(state, -1, step_percent=step_percent, command_id=command_id)
        case Action.PLAY_PAUSE if loaded:
            return Pause(id=command_id) if state.is_playing else Resume(id=command_id)
        case Action.PLAY_PAUSE if last is not None:
            return Play(
                id=command_id,
                tracks=last.tracks,
                context_uri=last.context_uri,
                offset=last.offset,
                position_ms=last.position_ms,
            )
        case Action.STOP if loaded:
            return Stop(id=command_id)
        case Action.NEXT if loaded:
            return Next(id=command_id)
        case Action.PREVIOUS if loaded:
            return Previous(id=command_id)
        case Action.NEXT_ALBUM if loaded:
            return NextAlbum(id=command_id)
    return None
