"""Message types spoken between hub and speakers.

Every message is a frozen, slotted, keyword-only dataclass; ``codec`` turns
them into JSON objects tagged with ``type`` and back.  Units are in the names
(``_ms``, ``_percent``).  Commands carry an ``id`` (acks and de-duplication use
it) and an optional ``expected_revision`` for optimistic concurrency.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from connect_protocol.errors import ErrorCode

PROTOCOL_VERSION = "1"
#: Largest message accepted on any transport; larger payloads are refused unparsed.
MAX_MESSAGE_BYTES = 1024 * 1024
#: Largest track list in one play command (a longer playlist is paged by the hub).
#: With catalog metadata (~150 bytes a track) a full state stays far below
#: MAX_MESSAGE_BYTES; ``tests/test_codec.py`` checks the worst realistic case.
MAX_TRACKS = 1000
MAX_QUEUE = 200
MAX_ID_LEN = 128
MAX_URI_LEN = 256
MAX_NAME_LEN = 512
MAX_ARTISTS = 16


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
    """Load ``tracks`` (the context, in order) and start at ``offset``.

    Without an ``offset`` playback starts at the first track, or at a random one
    when shuffle is on (as Spotify does).
    """

    id: str
    tracks: tuple[TrackRef, ...]
    context_uri: str | None = None
    offset: int | None = None
    position_ms: int = 0
    paused: bool = False
    expected_revision: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Adopt:
    """Take over another speaker's session whole (transfer of playback).

    Carries the context, its play order, the queue and the modes, so that
    playback continues exactly where it was: the shuffled order, a queued track
    playing, repeat.  The receiving speaker keeps its own volume.
    """

    id: str
    tracks: tuple[TrackRef, ...]
    order: tuple[int, ...]
    index: int | None
    current: TrackRef
    from_queue: bool = False
    queue: tuple[TrackRef, ...] = ()
    context_uri: str | None = None
    position_ms: int = 0
    paused: bool = False
    shuffle: bool = False
    repeat: RepeatMode = RepeatMode.OFF
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
class NextAlbum:
    """Skip to the first track of the next album in the context (a long press of a
    speaker's next button); past the context's last album, as ``Next`` on its last track."""

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


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncDownloads:
    """The offline downloads for this speaker changed (added, removed, or a licence
    revoked): fetch the list from the hub now.  Not a player change: the controller
    hands it to the download manager and the revision stays."""

    id: str
    expected_revision: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class JoinGroup:
    """Play as a member of group ``group_id``, in sync with its leader.

    The leader (``leader_id``, a member speaker) keeps the group's clock and
    timeline; ``leader_addr`` (``host:port``) is its sync socket, from its
    status, and ``key`` (base64url, 32 bytes) seals the group's datagrams.  A
    speaker told it leads takes the group's player commands; a follower plays
    what the leader plays.  Not a player change: the revision stays."""

    id: str
    group_id: str
    leader_id: str
    leader_addr: str = ""
    key: str
    expected_revision: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LeaveGroup:
    """Stop being a member of any group (and stop playing the group's music)."""

    id: str
    expected_revision: int | None = None


Command = (
    Play
    | Adopt
    | Pause
    | Resume
    | Seek
    | Next
    | NextAlbum
    | Previous
    | SetVolume
    | SetShuffle
    | SetRepeat
    | AddToQueue
    | Stop
    | SyncDownloads
    | JoinGroup
    | LeaveGroup
)

COMMAND_TYPES: dict[str, type[Command]] = {
    "play": Play,
    "adopt": Adopt,
    "pause": Pause,
    "resume": Resume,
    "seek": Seek,
    "next": Next,
    "next_album": NextAlbum,
    "previous": Previous,
    "volume": SetVolume,
    "shuffle": SetShuffle,
    "repeat": SetRepeat,
    "queue": AddToQueue,
    "stop": Stop,
    "sync_downloads": SyncDownloads,
    "join_group": JoinGroup,
    "leave_group": LeaveGroup,
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
    #: offline downloads: progress (message: "done/total tracks, bytes"), finished, failed
    DOWNLOAD = "download"
    #: an offline licence could not be used (expired, revoked, set-back clock)
    LICENCE = "licence"
    #: the context's last track ended with repeat off and nothing queued: the
    #: speaker stopped (``track_uri`` names that last track), where autoplay may go on
    CONTEXT_ENDED = "context_ended"
    #: a release update moved on: ``version`` and ``state`` (one of UPDATE_STATES),
    #: ``message`` the reason of a failure or rollback
    UPDATE = "update"


#: What a speaker reports of an update, in order (the hub adds "offered" itself):
#: refused bundles and failed downloads or installs are "failed", with a reason;
#: "skipped" is an offer the speaker did not try for its own reasons, not the
#: release's fault (no release key pinned, not enough disk space, rolled back here
#: before, not installed in release slots), with the reason.
UPDATE_STATES = (
    "offered",
    "downloading",
    "installing",
    "trial",
    "good",
    "rolled_back",
    "failed",
    "skipped",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    kind: EventKind
    timestamp_ms: int
    track_uri: str | None = None
    played_ms: int = 0
    message: str = ""
    version: str = ""  # UPDATE: the release
    state: str = ""  # UPDATE: one of UPDATE_STATES


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
    #: ``host:port`` of its multiroom sync socket (UDP), what a group's followers reach
    sync_addr: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Downloads:
    """The speaker's offline downloads at a glance (details: its local ``/offline``)."""

    tracks: int = 0  # wanted offline
    ready: int = 0
    failed: int = 0
    bytes_done: int = 0
    bytes_total: int = 0
    #: earliest expiry of the licences held (0: none); playback refuses after it
    licence_expires_ms: int = 0
    message: str = ""  # the latest failure or refusal, for a person to read


@dataclass(frozen=True, slots=True, kw_only=True)
class PlayerState:
    """Everything a remote needs to draw the player.

    ``position_ms`` was true at wall-clock ``timestamp_ms``; while playing, a
    client extrapolates from there (see ``connect_protocol.state.position_at``).
    ``order`` is the play order over ``tracks`` (a permutation when shuffled);
    ``index`` points into ``order``.  ``queue`` holds tracks added to the queue,
    played before the context continues; ``current`` is what is loaded, and
    ``from_queue`` says it came from the queue (the context stays at ``index``).
    ``session`` changes each time the speaker starts, so a reader can tell a
    restarted speaker (whose revisions begin again) from a stale message.
    """

    session: str = ""
    revision: int = 0
    is_playing: bool = False
    context_uri: str | None = None
    tracks: tuple[TrackRef, ...] = ()
    order: tuple[int, ...] = ()
    index: int | None = None
    queue: tuple[TrackRef, ...] = ()
    current: TrackRef | None = None
    from_queue: bool = False
    position_ms: int = 0
    timestamp_ms: int = 0
    volume_percent: int = 50
    shuffle: bool = False
    repeat: RepeatMode = RepeatMode.OFF
    shuffle_seed: int = 0
    #: Output stalled waiting for audio (network too slow): position is not advancing.
    buffering: bool = False
    downloads: Downloads = Downloads()
