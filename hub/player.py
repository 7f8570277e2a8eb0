"""Player requests in the Web API's terms, turned into Connect commands.

Both the HTTP routes (``/v1/me/player/*``) and the Connect WebSocket call
``PlayerService.execute(action, params)``: one place decides which device a
request is for, validates its parameters as Spotify documents them, resolves
URIs through the catalog and relays the command.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from connect_protocol.messages import (
    AddToQueue,
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
from hub import catalog
from hub.accounts import now_ms
from hub.relay import DeviceNotFound, Relay, RelayError

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
)


class PlayerRequestError(RelayError):
    """The request itself is wrong (400), before anything is relayed."""

    status = 400


def _int(params: Mapping[str, Any], key: str, *, low: int, high: int | None = None) -> int:
    raw = params.get(key)
    if raw is None:
        raise PlayerRequestError(f"Missing required field: {key}")
    try:
        value = int(raw) if not isinstance(raw, bool) else None
    except (TypeError, ValueError):
        value = None
    if value is None or (isinstance(raw, float) and raw != int(raw)):
        raise PlayerRequestError(f"{key} must be an integer")
    if value < low or (high is not None and value > high):
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


class PlayerService:
    def __init__(self, relay: Relay) -> None:
        self.relay = relay

    def target_device(self, device_id: str | None) -> str:
        """The device a request is for: the named one, the active one, or the only one."""
        if device_id:
            if device_id not in self.relay.devices:
                raise DeviceNotFound(f"Device not found: {device_id[:64]}")
            return device_id
        active = self.relay.active_device_id
        if active and active in self.relay.devices and self.relay.devices[active].online:
            return active
        online = [d for d, dev in self.relay.devices.items() if dev.online]
        if len(online) == 1:
            return online[0]
        raise DeviceNotFound("Player command failed: No active device found")

    async def execute(self, action: str, params: Mapping[str, Any]) -> None:
        if action not in ACTIONS:
            raise PlayerRequestError(f"Unknown player action {action[:40]!r}")
        if action == "transfer":
            await self._transfer(params)
            return
        command = await self._command(action, params)  # a bad request is a 400 first
        await self.relay.send(self.target_device(params.get("device_id")), command)

    async def _command(self, action: str, params: Mapping[str, Any]) -> Command:
        cid = self.relay.new_command_id()
        match action:
            case "play":
                return await self._play(cid, params)
            case "pause":
                return Pause(id=cid)
            case "next":
                return Next(id=cid)
            case "previous":
                return Previous(id=cid)
            case "seek":
                return Seek(id=cid, position_ms=_int(params, "position_ms", low=0))
            case "volume":
                return SetVolume(
                    id=cid, volume_percent=_int(params, "volume_percent", low=0, high=100)
                )
            case "shuffle":
                return SetShuffle(id=cid, state=_bool(params, "state"))
            case "repeat":
                try:
                    mode = RepeatMode(str(params.get("state", "")))
                except ValueError:
                    raise PlayerRequestError("state must be track, context or off") from None
                return SetRepeat(id=cid, mode=mode)
            case "queue":
                uri = params.get("uri")
                if not isinstance(uri, str):
                    raise PlayerRequestError("Missing required field: uri")
                (track,) = await self._resolve_tracks([uri])
                return AddToQueue(id=cid, track=track)
        raise PlayerRequestError(f"Unknown player action {action!r}")  # pragma: no cover

    async def _play(self, cid: str, params: Mapping[str, Any]) -> Command:
        context_uri, uris = params.get("context_uri"), params.get("uris")
        if context_uri is None and uris is None:
            return Resume(id=cid)
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
        )

    @staticmethod
    def _offset(raw: Any, tracks: list[TrackRef]) -> int:
        if raw is None:
            return 0
        if not isinstance(raw, dict):
            raise PlayerRequestError('offset must be an object: {"position": N} or {"uri": URI}')
        if "position" in raw:
            position = _int(raw, "position", low=0)
            if position >= len(tracks):
                raise PlayerRequestError(f"offset.position {position} is past the last track")
            return position
        if "uri" in raw:
            want = catalog.parse_uri(str(raw["uri"])).id if raw["uri"] else ""
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
        except catalog.CatalogError as exc:
            raise PlayerRequestError(str(exc)) from exc
        return result

    async def _transfer(self, params: Mapping[str, Any]) -> None:
        ids = params.get("device_ids")
        if not isinstance(ids, list) or len(ids) != 1 or not isinstance(ids[0], str):
            raise PlayerRequestError("device_ids must be a list with exactly one device id")
        target = self.target_device(ids[0])
        play = params.get("play")
        source_id = self.relay.active_device_id
        source = self.relay.devices.get(source_id) if source_id else None
        if source is None or source_id == target or source.state.current is None:
            if play is True:
                await self.relay.send(target, Resume(id=self.relay.new_command_id()))
            self.relay.active_device_id = target
            return
        state = source.state
        current = state.current
        assert current is not None
        position = position_at(state, now_ms())
        tracks: tuple[TrackRef, ...] = (current,)
        offset = 0
        if state.index is not None and state.tracks[state.order[state.index]] == current:
            tracks, offset = state.tracks, state.order[state.index]
        keep_playing = state.is_playing if play is None else bool(play)
        await self.relay.send(
            target,
            Play(
                id=self.relay.new_command_id(),
                tracks=tracks,
                context_uri=state.context_uri,
                offset=offset,
                position_ms=position,
                paused=not keep_playing,
            ),
        )
        if source.online:
            await self.relay.send(source_id or "", Stop(id=self.relay.new_command_id()))
        self.relay.active_device_id = target
