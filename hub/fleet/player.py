"""Player requests in the Web API's terms, turned into Connect commands.

Both the HTTP routes (``/v1/me/player/*``) and the Connect WebSocket call
``PlayerService.execute(action, params)``: one place validates parameters as
Spotify documents them, resolves URIs through the catalog, decides which device
a request is for and relays the command.  A bad request is a 400 before any
device is looked at.

Two Legato actions manage offline downloads rather than playback: ``download`` and
``remove_download`` (``device_id``, ``uris``) do what ``PUT`` and ``DELETE
/v1/devices/{id}/downloads`` do, through the same :class:`hub.offline.OfflineService`.

Which device is active follows Spotify: the one last told to play (or given
playback by a transfer), or one that started playing by itself; adjusting the
volume of another speaker does not move it.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Mapping
from typing import Any

from connect_protocol.messages import (
    AddToQueue,
    Adopt,
    Command,
    Next,
    Pause,
    Play,
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
from connect_protocol.reducer import position_at
from hub.catalog import resolve as catalog
from hub.clock import now_ms
from hub.errors import CatalogError, DeviceNotFound, RelayError, RequestError
from hub.fleet.relay import Relay
from hub.offline.service import OfflineService

logger = logging.getLogger(__name__)

ACTIONS = (
    "play",
    "pause",
    "next",
    "previous",
    "seek",
    "volume",
    "shuffle",
    "repeat",
    "queue",
    "transfer",
    "download",
    "remove_download",
)
#: Actions after which the target becomes the active device.
MAKES_ACTIVE = frozenset({Play, Resume, Adopt})


class PlayerRequestError(RequestError):
    """The request itself is wrong (400), before anything is relayed."""


def _as_int(raw: Any) -> int | None:
    """An integer from JSON or a query string; ``None`` for anything else (1e999, "12a")."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float):
        return int(raw) if math.isfinite(raw) and raw == int(raw) else None
    if isinstance(raw, str):
        text = raw.strip()
        digits = text[1:] if text.startswith("-") else text
        return int(text) if digits.isascii() and digits.isdigit() and len(text) < 20 else None
    return None


def _int(params: Mapping[str, Any], key: str, *, low: int, high: int | None = None) -> int:
    raw = params.get(key)
    if raw is None:
        raise PlayerRequestError(f"Missing required field: {key}")
    value = _as_int(raw)
    if value is None:
        raise PlayerRequestError(f"{key} must be an integer")
    if value < low or (high is not None and value > high) or value > 2**53:
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise PlayerRequestError(f"{key} must be {bound}")
    return value


def _bool(params: Mapping[str, Any], key: str) -> bool:
    raw = params.get(key)
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    raise PlayerRequestError(f"{key} must be true or false")


def _optional_str(params: Mapping[str, Any], key: str) -> str | None:
    raw = params.get(key)
    if raw is None or isinstance(raw, str):
        return raw
    raise PlayerRequestError(f"{key} must be a string")


class PlayerService:
    def __init__(self, relay: Relay, *, offline: OfflineService | None = None) -> None:
        self.relay = relay
        self.offline = offline
        #: device id -> the user who last started or moved playback there: whose
        #: "recently played" the device's plays go to
        self.listeners: dict[str, int] = {}

    def target_device(self, device_id: str | None) -> str:
        """The device a request is for: the named one, the active one, or the only one."""
        if device_id:
            return self.relay.online_device(device_id).info.id
        active = self.relay.active_device_id
        if active and active in self.relay.devices and self.relay.devices[active].online:
            return active
        online = [d for d, dev in self.relay.devices.items() if dev.online]
        if len(online) == 1:
            return online[0]
        raise DeviceNotFound(
            "Player command failed: No active device found", reason="NO_ACTIVE_DEVICE"
        )

    async def execute(
        self, action: str, params: Mapping[str, Any], *, user_id: int | None = None
    ) -> None:
        if action not in ACTIONS:
            raise PlayerRequestError(f"Unknown player action {action[:40]!r}")
        device_id = _optional_str(params, "device_id")
        if action in ("download", "remove_download"):
            await self._downloads(action, device_id, params.get("uris"), user_id)
            return
        if action == "transfer":
            await self._transfer(params)
            if user_id is not None and self.relay.active_device_id:
                self.listeners[self.relay.active_device_id] = user_id
            return
        command = await self._command(action, params)
        target = self.target_device(device_id)
        if type(command) in MAKES_ACTIVE and user_id is not None:
            # before sending: the speaker's "started" event can arrive before its ack
            self.listeners[target] = user_id
        await self.relay.send(target, command)
        if type(command) in MAKES_ACTIVE:
            self.relay.active_device_id = target

    async def _downloads(
        self, action: str, device_id: str | None, uris: Any, user_id: int | None
    ) -> None:
        if self.offline is None or user_id is None:
            raise PlayerRequestError("downloads need a listener's session")
        if not device_id:
            raise PlayerRequestError("Missing required field: device_id")
        valid = isinstance(uris, list) and uris and all(isinstance(u, str) for u in uris)
        if action == "download":
            if not valid:
                raise PlayerRequestError("uris must be a non-empty list of URIs")
            await self.offline.download(user_id, device_id, uris)
        elif uris is None or valid:  # none: every download of this listener there
            await self.offline.remove_downloads(user_id, device_id, uris)
        else:
            raise PlayerRequestError("uris must be a non-empty list of URIs")

    async def _command(self, action: str, params: Mapping[str, Any]) -> Command:
        cid = self.relay.new_command_id()
        expected = (
            None
            if params.get("expected_revision") is None
            else _int(params, "expected_revision", low=0)
        )
        match action:
            case "play":
                return await self._play(cid, params, expected)
            case "pause":
                return Pause(id=cid, expected_revision=expected)
            case "next":
                return Next(id=cid, expected_revision=expected)
            case "previous":
                return Previous(id=cid, expected_revision=expected)
            case "seek":
                position = _int(params, "position_ms", low=0)
                return Seek(id=cid, position_ms=position, expected_revision=expected)
            case "volume":
                volume = _int(params, "volume_percent", low=0, high=100)
                return SetVolume(id=cid, volume_percent=volume, expected_revision=expected)
            case "shuffle":
                return SetShuffle(id=cid, state=_bool(params, "state"), expected_revision=expected)
            case "repeat":
                try:
                    mode = RepeatMode(str(params.get("state", "")))
                except ValueError:
                    raise PlayerRequestError("state must be track, context or off") from None
                return SetRepeat(id=cid, mode=mode, expected_revision=expected)
            case "queue":
                uri = _optional_str(params, "uri")
                if uri is None:
                    raise PlayerRequestError("Missing required field: uri")
                (track,) = await self._resolve_tracks([uri])
                return AddToQueue(id=cid, track=track, expected_revision=expected)
        raise PlayerRequestError(f"Unknown player action {action!r}")  # pragma: no cover

    async def _play(self, cid: str, params: Mapping[str, Any], expected: int | None) -> Command:
        context_uri, uris = params.get("context_uri"), params.get("uris")
        if context_uri is None and uris is None:
            return Resume(id=cid, expected_revision=expected)
        if context_uri is not None and uris is not None:
            raise PlayerRequestError("Give either context_uri or uris, not both")
        if uris is not None:
            if not isinstance(uris, list) or not uris or not all(isinstance(u, str) for u in uris):
                raise PlayerRequestError("uris must be a non-empty list of track URIs")
            tracks = await self._resolve_tracks(uris)
        else:
            if not isinstance(context_uri, str):
                raise PlayerRequestError("context_uri must be a string")
            tracks = await self._resolve(catalog.resolve_context, context_uri)
        offset = self._offset(params.get("offset"), tracks)
        position = 0 if params.get("position_ms") is None else _int(params, "position_ms", low=0)
        return Play(
            id=cid,
            tracks=tuple(tracks),
            context_uri=context_uri if isinstance(context_uri, str) else None,
            offset=offset,
            position_ms=position,
            expected_revision=expected,
        )

    @staticmethod
    def _offset(raw: Any, tracks: list[TrackRef]) -> int | None:
        if raw is None:
            return None
        if not isinstance(raw, dict):
            raise PlayerRequestError('offset must be an object: {"position": N} or {"uri": URI}')
        if "position" in raw:
            position = _int(raw, "position", low=0)
            if position >= len(tracks):
                raise PlayerRequestError(f"offset.position {position} is past the last track")
            return position
        if "uri" in raw:
            uri = raw["uri"]
            try:
                want = catalog.parse_uri(uri).id if isinstance(uri, str) else None
            except CatalogError as exc:
                raise PlayerRequestError(f"offset.uri: {exc}") from exc
            for i, track in enumerate(tracks):
                if track.uri.rsplit(":", 1)[-1] == want:
                    return i
            raise PlayerRequestError("offset.uri is not in the context")
        raise PlayerRequestError("offset needs position or uri")

    async def _resolve_tracks(self, uris: list[str]) -> list[TrackRef]:
        return await self._resolve(catalog.resolve_tracks, uris)

    async def _resolve(self, fn: Any, arg: Any) -> list[TrackRef]:
        try:
            result: list[TrackRef] = await asyncio.to_thread(fn, self.relay.db, arg)
        except CatalogError as exc:
            raise PlayerRequestError(str(exc)) from exc
        return result

    async def _transfer(self, params: Mapping[str, Any]) -> None:
        """Move the active session to another speaker, as Spotify's transfer does.

        ``play`` true starts playback there, false or absent keeps the current
        play/pause state.  The source is stopped afterwards, best effort: the
        transfer has happened even if the old speaker does not answer.
        """
        ids = params.get("device_ids")
        if not isinstance(ids, list) or len(ids) != 1 or not isinstance(ids[0], str):
            raise PlayerRequestError("device_ids must be a list with exactly one device id")
        play = params.get("play")
        if play is not None and not isinstance(play, bool):
            raise PlayerRequestError("play must be true or false")
        target = self.relay.online_device(ids[0]).info.id
        source_id = self.relay.active_device_id
        source = self.relay.devices.get(source_id) if source_id else None
        if source is None or source_id == target or source.state.current is None:
            if play:
                await self.relay.send(target, Resume(id=self.relay.new_command_id()))
            self.relay.active_device_id = target
            return
        state = source.state
        assert state.current is not None
        await self.relay.send(
            target,
            Adopt(
                id=self.relay.new_command_id(),
                tracks=state.tracks,
                order=state.order,
                index=state.index,
                current=state.current,
                from_queue=state.from_queue,
                queue=state.queue,
                context_uri=state.context_uri,
                position_ms=position_at(state, now_ms()),
                paused=not (play or state.is_playing),
                shuffle=state.shuffle,
                repeat=state.repeat,
            ),
        )
        self.relay.active_device_id = target
        if source.online and source_id is not None:
            try:
                await self.relay.send(source_id, Stop(id=self.relay.new_command_id()))
            except RelayError as exc:
                logger.warning("transfer: could not stop %s: %s", source.info.name, exc)
