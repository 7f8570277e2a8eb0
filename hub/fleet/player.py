"""Player requests (:mod:`hub.fleet.requests`), turned into Connect commands and relayed.

Both the HTTP routes (``/v1/me/player/*``) and the Connect WebSocket call
``PlayerService.execute(request)`` with a validated request: this resolves URIs
through the catalog, decides which device the request is for and relays the
command.  A request naming unknown tracks is a 400 before any device is looked at.

Which device is active is the relay's to decide (see :mod:`hub.fleet.relay`); what
this service keeps is *who* asked: the listener who last started or moved playback
on a device, whose listening history that device's plays join.

A radio context (``legato:radio:KIND:ID``) is resolved by the ``radio`` function the
composition root hands in (the recommender, which this layer may not import): the
tracks it picks for the listener become the play's tracks, the radio URI its context.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection
from typing import TypeVar

from connect_protocol.messages import (
    AddToQueue,
    Adopt,
    Command,
    Next,
    Pause,
    Play,
    PlayerState,
    Previous,
    Resume,
    Seek,
    SetRepeat,
    SetShuffle,
    SetVolume,
    Stop,
    TrackRef,
)
from connect_protocol.reducer import position_at
from connect_protocol.uris import radio_seed_of, track_id_of, uri_of
from hub.catalog import resolve as catalog
from hub.clock import now_ms
from hub.db import Database
from hub.errors import CatalogError, DeviceNotFound, RelayError, RequestError
from hub.fleet.relay import MAKES_ACTIVE, Relay
from hub.fleet.requests import (
    NextRequest,
    Offset,
    PauseRequest,
    PlayerAction,
    PlayerRequest,
    PlayRequest,
    PreviousRequest,
    QueueRequest,
    RepeatRequest,
    SeekRequest,
    ShuffleRequest,
    TransferRequest,
    VolumeRequest,
)

logger = logging.getLogger(__name__)
A = TypeVar("A")

#: (listener, seed ``legato:KIND:ID``, track ids not to play) -> track ids in play order.
#: Blocking (it reads the database): called off the event loop.
RadioSource = Callable[[int | None, str, Collection[str]], list[str]]

#: How many tracks a radio context holds; autoplay goes on again when they run out.
RADIO_LENGTH = 50


def _no_radio(user_id: int | None, seed_uri: str, exclude: Collection[str]) -> list[str]:
    raise CatalogError("This hub has no radio")


class PlayerService:
    def __init__(self, relay: Relay, *, radio: RadioSource = _no_radio) -> None:
        self.relay = relay
        self._radio = radio
        #: device id -> the user who last started or moved playback there
        self._listeners: dict[str, int] = {}

    def listener_of(self, device_id: str) -> int | None:
        """Whose recently played a play on ``device_id`` joins (None: nobody's)."""
        return self._listeners.get(device_id)

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

    async def execute(self, request: PlayerAction, *, user_id: int | None = None) -> None:
        """Relay the request; ``user_id`` (on play and transfer) becomes the device's
        listener, whose recently played its plays join."""
        if isinstance(request, TransferRequest):
            await self._transfer(request)
            active = self.relay.active_device_id
            if user_id is not None and active:
                self._listeners[active] = user_id
            return
        command = await self._command(request, user_id)
        target = self.target_device(request.device_id)
        if type(command) in MAKES_ACTIVE and user_id is not None:
            # before sending: the speaker's "started" event can arrive before its ack
            self._listeners[target] = user_id
        await self.relay.send(target, command)

    async def radio_tracks(
        self, user_id: int | None, radio_uri: str, exclude: Collection[str] = ()
    ) -> list[TrackRef]:
        """The tracks of the radio ``radio_uri`` for ``user_id``, none of ``exclude`` (ids).

        A 400 (:class:`RequestError`) for a URI that is no radio, an unknown seed or a
        radio with nothing to play.
        """
        seed = radio_seed_of(radio_uri)
        if seed is None:
            raise RequestError(
                f"Invalid radio {radio_uri[:100]!r}: expected legato:radio:track|album|artist:ID"
            )

        def pick(db: Database, seed_uri: str) -> list[TrackRef]:
            ids = self._radio(user_id, seed_uri, exclude)
            if not ids:
                raise CatalogError(f"Nothing to play on {radio_uri!r} yet")
            return catalog.resolve_tracks(db, [uri_of("track", i) for i in ids])

        return await self._resolve(pick, uri_of(seed.kind, seed.id))

    async def _command(self, request: PlayerRequest, user_id: int | None = None) -> Command:
        cid = self.relay.new_command_id()
        expected = request.expected_revision
        match request:
            case PlayRequest():
                return await self._play(cid, request, user_id)
            case PauseRequest():
                return Pause(id=cid, expected_revision=expected)
            case NextRequest():
                return Next(id=cid, expected_revision=expected)
            case PreviousRequest():
                return Previous(id=cid, expected_revision=expected)
            case SeekRequest(position_ms=position):
                return Seek(id=cid, position_ms=position, expected_revision=expected)
            case VolumeRequest(volume_percent=volume):
                return SetVolume(id=cid, volume_percent=volume, expected_revision=expected)
            case ShuffleRequest(state=state):
                return SetShuffle(id=cid, state=state, expected_revision=expected)
            case RepeatRequest(state=mode):
                return SetRepeat(id=cid, mode=mode, expected_revision=expected)
            case QueueRequest(uri=uri):
                (track,) = await self._resolve(catalog.resolve_tracks, [uri])
                return AddToQueue(id=cid, track=track, expected_revision=expected)
        raise RequestError(f"Unknown player request {type(request).__name__}")  # pragma: no cover

    async def _play(self, cid: str, request: PlayRequest, user_id: int | None) -> Command:
        expected = request.expected_revision
        if request.context_uri is None and request.uris is None:
            return Resume(id=cid, expected_revision=expected)
        if request.uris is not None:
            tracks = await self._resolve(catalog.resolve_tracks, request.uris)
        elif radio_seed_of(request.context_uri or "") is not None:
            assert request.context_uri is not None
            tracks = await self.radio_tracks(user_id, request.context_uri)
            if request.offset is not None and request.offset.uri is not None:
                # a radio is picked afresh each time: the track asked for leads it
                (first,) = await self._resolve(catalog.resolve_tracks, [request.offset.uri])
                tracks = [first, *(t for t in tracks if t.uri != first.uri)]
        else:
            assert request.context_uri is not None
            tracks = await self._resolve(catalog.resolve_context, request.context_uri)
        return Play(
            id=cid,
            tracks=tuple(tracks),
            context_uri=request.context_uri,
            offset=None if request.offset is None else offset_index(request.offset, tracks),
            position_ms=request.position_ms or 0,
            expected_revision=expected,
        )

    async def _resolve(self, fn: Callable[[Database, A], list[TrackRef]], arg: A) -> list[TrackRef]:
        try:
            return await asyncio.to_thread(fn, self.relay.db, arg)
        except CatalogError as exc:
            raise RequestError(str(exc)) from exc

    async def _transfer(self, request: TransferRequest) -> None:
        """Move the active session to another speaker, as Spotify's transfer does.

        ``play`` true starts playback there, false or absent keeps the current
        play/pause state.  The source is stopped afterwards, best effort: the
        transfer has happened even if the old speaker does not answer.
        """
        target = self.relay.online_device(request.device_ids[0]).info.id
        source_id = self.relay.active_device_id
        source = self.relay.devices.get(source_id) if source_id else None
        if source is None or source_id == target or source.state.current is None:
            if request.play:
                await self.relay.send(target, Resume(id=self.relay.new_command_id()))
            self.relay.activate(target)
            return
        adopt = adopt_of(self.relay.new_command_id(), source.state, request.play)
        await self.relay.send(target, adopt)
        if source.online and source_id is not None:
            try:
                await self.relay.send(source_id, Stop(id=self.relay.new_command_id()))
            except RelayError as exc:
                logger.warning("transfer: could not stop %s: %s", source.info.name, exc)


def offset_index(offset: Offset, tracks: list[TrackRef]) -> int:
    """Where ``offset`` points in the resolved context; a 400 when it points nowhere."""
    if offset.position is not None:
        if offset.position >= len(tracks):
            raise RequestError(f"offset.position {offset.position} is past the last track")
        return offset.position
    assert offset.uri is not None
    try:
        want = catalog.parse_uri(offset.uri).id
    except CatalogError as exc:
        raise RequestError(f"offset.uri: {exc}") from exc
    for i, track in enumerate(tracks):
        if track_id_of(track.uri) == want:
            return i
    raise RequestError("offset.uri is not in the context")


def adopt_of(cid: str, state: PlayerState, play: bool | None) -> Adopt:
    """The source's whole session, for the target to take over at the same position."""
    assert state.current is not None
    return Adopt(
        id=cid,
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
    )
