"""Commands in, state, acks and events out: the speaker's control core.

The controller owns the player state and applies every input through the pure
reducer, then carries out the effects on the engine.  It knows nothing of MQTT
or WebSockets: callers hand it decoded commands and publish what it returns,
so the MQTT path and the local control WebSocket share one behaviour.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from connect_protocol.codec import DecodeError, decode_command
from connect_protocol.dedupe import RecentCommands
from connect_protocol.errors import ErrorCode
from connect_protocol.messages import (
    Ack,
    Command,
    Downloads,
    Event,
    JoinGroup,
    LeaveGroup,
    PlayerState,
    SyncDownloads,
    TrackRef,
)
from connect_protocol.reducer import (
    ApplyVolume,
    DownloadsReport,
    Effect,
    EmitEvent,
    EngineReport,
    LoadTrack,
    SeekTo,
    SetPlaying,
    TrackEnded,
    Unload,
    reduce,
)
from device.engine_api import Engine

logger = logging.getLogger(__name__)


class SteadyWallClock:
    """Wall-clock milliseconds that never jump: the wall clock read once, when this is
    made, then advanced on the monotonic clock.

    A Pi has no real-time clock; when NTP steps the clock, positions computed
    from ``timestamp_ms`` must not jump with it (the engine runs on the
    monotonic clock too).  Both clocks are injected, so tests give fixed ones.
    """

    def __init__(
        self,
        *,
        wall_ns: Callable[[], int] = time.time_ns,
        monotonic_ns: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        self._monotonic_ns = monotonic_ns
        self._offset_ns = wall_ns() - monotonic_ns()

    def __call__(self) -> int:
        return (self._offset_ns + self._monotonic_ns()) // 1_000_000


@dataclass(slots=True)
class Outcome:
    """What one input produced, for the transports to publish."""

    ack: Ack | None = None
    state: PlayerState | None = None  # set when the state changed
    events: list[Event] = field(default_factory=list)


class Controller:
    def __init__(
        self,
        engine: Engine,
        *,
        state: PlayerState | None = None,
        now_ms: Callable[[], int] | None = None,
        memory: int = 1024,
        on_sync_downloads: Callable[[], bool] | None = None,
        on_group: Callable[[JoinGroup | LeaveGroup], str | None] | None = None,
    ) -> None:
        self.engine = engine
        #: asks the download manager to sync; False when this speaker keeps no offline cache
        self.on_sync_downloads = on_sync_downloads
        #: joins or leaves a multiroom group; returns why it cannot, or None when done
        self.on_group = on_group
        self.state = state or PlayerState()
        self._now_ms = now_ms or SteadyWallClock()
        self._recent = RecentCommands(memory)

    def handle_bytes(self, payload: bytes, *, from_hub: bool = True) -> Outcome:
        """Decode untrusted bytes and apply them; malformed input is acked, never raised.

        ``from_hub`` is False on the local control socket: a phone there steers the
        player, but group membership (and its key) comes only from the hub."""
        cmd = decode_command(payload)
        if not from_hub and isinstance(cmd, JoinGroup | LeaveGroup):
            why = "groups are made at the hub, not on the speaker's local control"
            return Outcome(ack=self._refusal(cmd.id, ErrorCode.UNKNOWN_COMMAND, why))
        if isinstance(cmd, DecodeError):
            logger.warning("refused command: %s (%s)", cmd.message, cmd.code.value)
            if cmd.command_id is None:
                return Outcome()  # nothing to ack it to
            return Outcome(ack=self._refusal(cmd.command_id, cmd.code, cmd.message))
        return self.handle(cmd)

    def _refusal(self, command_id: str, code: ErrorCode, message: str) -> Ack:
        """A command not carried out: acked with why, at the revision it found."""
        return Ack(
            id=command_id, ok=False, revision=self.state.revision, error=code, message=message
        )

    def handle(self, cmd: Command) -> Outcome:
        seen = self._recent.get(cmd.id)
        if seen is not None:
            logger.info("command %s delivered again; repeating its ack", cmd.id)
            return Outcome(ack=seen)
        if isinstance(cmd, SyncDownloads):
            return Outcome(ack=self._sync_downloads(cmd))
        if isinstance(cmd, JoinGroup | LeaveGroup):
            return Outcome(ack=self._group(cmd))
        now = self._now_ms()
        try:
            transition = reduce(self.state, cmd, now)
        except Exception:  # a reducer bug must not take the speaker down
            logger.exception("reducer failed on %s", type(cmd).__name__)
            why = "internal error while applying the command"
            return Outcome(ack=self._refusal(cmd.id, ErrorCode.INTERNAL, why))
        assert transition.ack is not None
        self._recent.remember(transition.ack)
        changed = transition.state is not self.state
        self.state = transition.state
        events = self._run(transition.effects, now)
        self._plan_next(now)
        return Outcome(ack=transition.ack, state=self.state if changed else None, events=events)

    def track_ended(self, uri: str) -> Outcome:
        now = self._now_ms()
        transition = reduce(self.state, TrackEnded(uri=uri), now)
        if transition.state is self.state:
            return Outcome()
        self.state = transition.state
        events = self._run(transition.effects, now)
        self._plan_next(now)
        return Outcome(state=self.state, events=events)

    def engine_report(self, uri: str, position_ms: int, buffering: bool) -> Outcome:
        """The engine says where the audio really is (output started, stalled, resumed)."""
        now = self._now_ms()
        report = EngineReport(uri=uri, position_ms=position_ms, buffering=buffering)
        transition = reduce(self.state, report, now)
        if transition.state is self.state:
            return Outcome()
        self.state = transition.state
        return Outcome(state=self.state)

    def downloads_report(self, downloads: Downloads) -> Outcome:
        """The download manager's progress, into the state."""
        transition = reduce(self.state, DownloadsReport(downloads=downloads), self._now_ms())
        if transition.state is self.state:
            return Outcome()
        self.state = transition.state
        return Outcome(state=self.state)

    def _sync_downloads(self, cmd: SyncDownloads) -> Ack:
        """Not a player change: handed to the download manager, acked at the same revision."""
        if self.on_sync_downloads is None or not self.on_sync_downloads():
            why = "this speaker keeps no offline cache (unpaired, or the clock engine)"
            ack = self._refusal(cmd.id, ErrorCode.UNKNOWN_COMMAND, why)
        else:
            ack = Ack(id=cmd.id, ok=True, revision=self.state.revision)
        self._recent.remember(ack)
        return ack

    def _group(self, cmd: JoinGroup | LeaveGroup) -> Ack:
        """Not a player change: handed to the speaker's group membership, revision kept."""
        if self.on_group is None:
            why: str | None = "this speaker cannot play in a group (its engine has no sync)"
        else:
            why = self.on_group(cmd)
        if why is None:
            ack = Ack(id=cmd.id, ok=True, revision=self.state.revision)
        else:
            code = ErrorCode.UNKNOWN_COMMAND if self.on_group is None else ErrorCode.INVALID_VALUE
            ack = self._refusal(cmd.id, code, why)
        self._recent.remember(ack)
        return ack

    def upcoming(self, now: int) -> TrackRef | None:
        """What plays when the current track ends, asked of the reducer itself.

        The engine fetches and decodes it ahead so the join is gapless; asking
        the reducer keeps shuffle, repeat and the queue in one place.
        """
        current = self.state.current
        if current is None or not self.state.is_playing:
            return None
        transition = reduce(self.state, TrackEnded(uri=current.uri), now)
        for effect in transition.effects:
            if isinstance(effect, LoadTrack) and effect.playing and effect.position_ms == 0:
                return effect.track
        return None

    def _plan_next(self, now: int) -> None:
        self.engine.set_next(self.upcoming(now))

    def _run(self, effects: tuple[Effect, ...], now: int) -> list[Event]:
        events: list[Event] = []
        for effect in effects:
            match effect:
                case LoadTrack(track=track, position_ms=pos, playing=playing):
                    self.engine.load(track, pos, playing)
                case SetPlaying(playing=playing):
                    self.engine.set_playing(playing)
                case SeekTo(position_ms=pos):
                    self.engine.seek(pos)
                case ApplyVolume(volume_percent=v):
                    self.engine.set_volume(v)
                case Unload():
                    self.engine.unload()
                case EmitEvent(kind=kind, track_uri=uri, played_ms=played):
                    events.append(
                        Event(kind=kind, timestamp_ms=now, track_uri=uri, played_ms=played)
                    )
        return events
