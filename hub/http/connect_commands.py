"""The Connect WebSocket's commands: ``{"type": "command", "action": A, ...}``.

The player's actions take the very requests ``/v1/me/player`` takes
(:mod:`hub.fleet.requests`); two Legato actions manage offline downloads:
``download`` and ``remove_download`` (``device_id``, ``uris``) do what ``PUT`` and
``DELETE /v1/devices/{id}/downloads`` do.  One :class:`~pydantic.TypeAdapter` over
the union, told apart by ``action``, reads them all.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Tag,
    TypeAdapter,
    ValidationError,
)

from hub.context import HubContext
from hub.errors import RequestError
from hub.fields import Text, string_list
from hub.fleet.requests import (
    PLAYER_ACTIONS,
    NextRequest,
    PauseRequest,
    PlayerAction,
    PlayRequest,
    PreviousRequest,
    QueueRequest,
    RepeatRequest,
    SeekRequest,
    ShuffleRequest,
    TransferRequest,
    VolumeRequest,
)
from hub.http.validation import message_of

Uris = Annotated[list[str], BeforeValidator(string_list("must be a non-empty list of URIs"))]


class DownloadAction(BaseModel):
    """Download tracks, albums or playlists to a speaker for offline play."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    device_id: Text
    uris: Uris


class RemoveDownloadAction(BaseModel):
    """Remove downloads from a speaker (all of the listener's there without ``uris``)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    device_id: Text
    uris: Uris | None = None


ConnectCommand = PlayerAction | DownloadAction | RemoveDownloadAction
ACTIONS: dict[str, type[ConnectCommand]] = {
    **PLAYER_ACTIONS,
    "download": DownloadAction,
    "remove_download": RemoveDownloadAction,
}


def _action(message: Any) -> Any:
    return message.get("action") if isinstance(message, dict) else None


COMMANDS: TypeAdapter[ConnectCommand] = TypeAdapter(
    Annotated[
        Annotated[PlayRequest, Tag("play")]
        | Annotated[PauseRequest, Tag("pause")]
        | Annotated[NextRequest, Tag("next")]
        | Annotated[PreviousRequest, Tag("previous")]
        | Annotated[SeekRequest, Tag("seek")]
        | Annotated[VolumeRequest, Tag("volume")]
        | Annotated[ShuffleRequest, Tag("shuffle")]
        | Annotated[RepeatRequest, Tag("repeat")]
        | Annotated[QueueRequest, Tag("queue")]
        | Annotated[TransferRequest, Tag("transfer")]
        | Annotated[DownloadAction, Tag("download")]
        | Annotated[RemoveDownloadAction, Tag("remove_download")],
        Discriminator(_action),
    ]
)


def parse_command(message: dict[str, Any]) -> ConnectCommand:
    """The command ``message`` asks for; a :class:`RequestError` saying what is wrong."""
    action = message.get("action")
    if not isinstance(action, str):
        raise RequestError("Missing required field: action")
    if action not in ACTIONS:
        raise RequestError(f"Unknown player action {action[:40]!r}")
    try:
        return COMMANDS.validate_python(message)
    except ValidationError as exc:
        raise RequestError(message_of(exc.errors(), skip=1)) from None


async def run_command(ctx: HubContext, command: ConnectCommand, user_id: int) -> None:
    """Carry the command out: downloads through the offline service, the rest through
    the player service."""
    match command:
        case DownloadAction(device_id=device_id, uris=uris):
            await ctx.offline.download(user_id, device_id, uris)
        case RemoveDownloadAction(device_id=device_id, uris=uris):
            await ctx.offline.remove_downloads(user_id, device_id, uris)
        case _:
            await ctx.groups.execute(command, user_id=user_id)
