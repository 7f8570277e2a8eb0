"""Message types spoken between hub and speakers.

Every message is a frozen, slotted, keyword-only dataclass; ``codec`` turns
them into JSON objects tagged with ``type`` and back.  Units are in the names
(``_ms``, ``_percent``).  Commands carry an ``id`` (acks and de-duplication use
it) and an optional ``expected_revision`` for optimistic concurrency.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import NewType

from connect_protocol.errors import ErrorCode

DurationMs = NewType("DurationMs", int)

PROTOCOL_VERSION = "1"
#: Largest message accepted on any transport; larger payloads are refused unparsed.
MAX_MESSAGE_BYTES = 256 * 1024
#: Largest track list in one play command (a long playlist is paged by the hub).
MAX_TRACKS = 2000
MAX_QUEUE = 1000
MAX_ID_LEN = 128
MAX_URI_LEN = 256


class RepeatMode(StrEnum):
    OFF = "off"
    CONTEXT = "context"
    TRACK = "track"


@dataclass(frozen=True, slots=True, kw_only=True)
class TrackRef:
    """What a speaker needs to know of a track to play and report it."""

    uri: str
    duration_ms: int
    name: str = ""
    artists: tuple[str, ...] = ()
    album: str = ""


# --- commands (hub -> speaker) -------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Play:
    """Load ``tracks`` (the context, in order) and start at ``offset``."""

    id: str
    tracks: tuple[TrackRef, ...]
    context_uri: str | None = None
    offset: int = 0
    position_ms: int = 0
    paused: bool = False
    expected_revision: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Pause:
    id: str
    expected_revision: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Resume:
    id: str
    expected_revision: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Seek:
    id: str
    position_ms: int
    expected_revision: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Next:
    id: str
    expected_revision: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Previous:
    id: str
    expected_revision: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SetVolume:
    id: str
    volume_percent: int
    expected_revision: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SetShuffle:
    id: str
    state: bool
    expected_revision: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SetRepeat:
    id: str
    mode: RepeatMode
    expected_revision: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AddToQueue:
    id: str
    track: TrackRef
    expected_revision: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Stop:
    """Stop and unload (playback moved to another speaker)."""

    id: str
    expected_revision: int | None = None


Command = (
    Play
    | Pause
    | Resume
    | Seek
    | Next
    | Previous
    | SetVolume
    | SetShuffle
    | SetRepeat
    | AddToQueue
    | Stop
)

COMMAND_TYPES: dict[str, type[Command]] = {
    "play": Play,
    "pause": Pause,
    "resume": Resume,
    "seek": Seek,
    "next": Next,
    "previous": Previous,
    "volume": SetVolume,
    "shuffle": SetShuffle,
    "repeat": SetRepeat,
    "queue": AddToQueue,
    "stop": Stop,
}


# --- speaker -> hub ------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Ack:
    """The result of one command, matched by ``id``."""

    id: str
    ok: bool
    revision: int
    error: ErrorCode | None = None
    message: str = ""


class EventKind(StrEnum):
    STARTED = "started"
    FINISHED = "finished"
    SKIPPED = "skipped"
    ERROR = "error"
    UNDERRUN = "underrun"
    QUALITY_CHANGE = "quality_change"


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    kind: EventKind
    timestamp_ms: int
    track_uri: str | None = None
    played_ms: int = 0
    message: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceInfo:
    """Who a speaker is; published retained on ``status`` with ``online``."""

    id: str
    name: str
    model: str
    fw: str
    proto: str = PROTOCOL_VERSION
    online: bool = True
    supports_volume: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class PlayerState:
    """Everything a remote needs to draw the player.

    ``position_ms`` was true at wall-clock ``timestamp_ms``; while playing, a
    client extrapolates from there (see ``connect_protocol.state.position_at``).
    ``order`` is the play order over ``tracks`` (a permutation when shuffled);
    ``index`` points into ``order``.  ``queue`` holds tracks added to the queue,
    played before the context continues; ``current`` is what is loaded.
    """

    revision: int = 0
    is_playing: bool = False
    context_uri: str | None = None
    tracks: tuple[TrackRef, ...] = ()
    order: tuple[int, ...] = ()
    index: int | None = None
    queue: tuple[TrackRef, ...] = ()
    current: TrackRef | None = None
    position_ms: int = 0
    timestamp_ms: int = 0
    volume_percent: int = 50
    shuffle: bool = False
    repeat: RepeatMode = RepeatMode.OFF
    shuffle_seed: int = 0
