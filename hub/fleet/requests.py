"""Player requests in the Web API's terms, one model per action.

The ``/v1/me/player`` routes take them as their query and body models and the
Connect WebSocket reads them by action name (:data:`PLAYER_ACTIONS`), so
``/openapi.json`` describes every field and both paths refuse bad input with the
same words, before any speaker is looked at.  Unknown fields are ignored, as
Spotify's API does.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from connect_protocol.messages import RepeatMode
from hub.fields import Boolean, NonNegative, Percent, StrictBoolean, Text, refuse, string_list


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class PlayerRequest(_Request):
    """What every player command may say: which speaker, and the state it expects."""

    device_id: Annotated[
        Text | None,
        Field(description="The speaker; by default the active one (or the only one online)"),
    ] = None
    expected_revision: Annotated[
        NonNegative | None,
        Field(description="Legato: refuse with 409 unless the speaker's state is at this revision"),
    ] = None


def _offset_object(raw: Any) -> Any:
    if not isinstance(raw, dict):
        raise refuse('must be an object: {"position": N} or {"uri": URI}')
    return raw


class Offset(_Request):
    """Where in the context to start: a position (from 0) or a track's URI."""

    position: NonNegative | None = None
    uri: Text | None = None

    @model_validator(mode="after")
    def _one_given(self) -> Offset:
        if self.position is None and self.uri is None:
            raise refuse("needs position or uri")
        return self


TrackUris = Annotated[
    list[str], BeforeValidator(string_list("must be a non-empty list of track URIs"))
]


class PlayRequest(PlayerRequest):
    """Start a context or a list of tracks; with neither, resume."""

    context_uri: Annotated[
        Text | None,
        Field(
            description="legato:album:ID, legato:playlist:ID,"
            " or a radio: legato:radio:track|album|artist:ID"
        ),
    ] = None
    uris: Annotated[TrackUris | None, Field(description="Track URIs to play, in order")] = None
    offset: Annotated[Offset, BeforeValidator(_offset_object)] | None = None
    position_ms: Annotated[
        NonNegative | None, Field(description="Where in the first track to start")
    ] = None

    @model_validator(mode="after")
    def _not_both(self) -> PlayRequest:
        if self.context_uri is not None and self.uris is not None:
            raise PydanticCustomError("legato_request", "Give either context_uri or uris, not both")
        return self


class PauseRequest(PlayerRequest):
    """Pause playback."""


class NextRequest(PlayerRequest):
    """Skip to the next track."""


class PreviousRequest(PlayerRequest):
    """Skip to the previous track (or the start of this one)."""


class SeekRequest(PlayerRequest):
    position_ms: Annotated[
        NonNegative, Field(description="Where in the track to go, in milliseconds")
    ]


class VolumeRequest(PlayerRequest):
    volume_percent: Annotated[Percent, Field(description="0 to 100")]


class ShuffleRequest(PlayerRequest):
    state: Annotated[Boolean, Field(description="true to shuffle")]


def _repeat_mode(raw: Any) -> RepeatMode:
    try:
        return RepeatMode(raw if isinstance(raw, str) else "")
    except ValueError:
        raise refuse("must be track, context or off") from None


class RepeatRequest(PlayerRequest):
    state: Annotated[
        RepeatMode, BeforeValidator(_repeat_mode), Field(description="track, context or off")
    ]


class QueueRequest(PlayerRequest):
    uri: Annotated[Text, Field(description="The track to add to the end of the queue")]


_one_device = string_list("must be a list with exactly one device id", exactly=1)


class TransferRequest(_Request):
    """Move playback to another speaker (Spotify's transfer)."""

    device_ids: Annotated[
        list[str],
        BeforeValidator(string_list("must be a list with exactly one device id", exactly=1)),
    ] = Field(description="Exactly one speaker id")
    play: Annotated[
        StrictBoolean | None,
        Field(description="true: play there; false or absent: keep the current play/pause state"),
    ] = None


PlayerAction = (
    PlayRequest
    | PauseRequest
    | NextRequest
    | PreviousRequest
    | SeekRequest
    | VolumeRequest
    | ShuffleRequest
    | RepeatRequest
    | QueueRequest
    | TransferRequest
)

#: The Connect WebSocket's action names and the request each one takes.
PLAYER_ACTIONS: dict[str, type[PlayerAction]] = {
    "play": PlayRequest,
    "pause": PauseRequest,
    "next": NextRequest,
    "previous": PreviousRequest,
    "seek": SeekRequest,
    "volume": VolumeRequest,
    "shuffle": ShuffleRequest,
    "repeat": RepeatRequest,
    "queue": QueueRequest,
    "transfer": TransferRequest,
}
