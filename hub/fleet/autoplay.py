"""Autoplay: when a speaker's context runs out, go on with a radio seeded from it.

Subscribed to the relay's events.  On ``context_ended`` from a speaker whose
listener (:meth:`PlayerService.listener_of`) has autoplay on, it asks the player's
radio for tracks like what just played, none of those, and plays them there with
the radio as the context (``legato:radio:KIND:ID``), so remotes show a radio and
the listener's plays keep joining their history.  A radio that runs out goes on
from its last track the same way; a radio with nothing to offer stops there.

Which radio follows which context is :func:`continuation`, a pure rule.  The work
(the setting, the recommender, the catalog) runs off the event loop; a failure is
logged and never reaches the relay.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from connect_protocol.messages import Event, EventKind, Play, PlayerState
from connect_protocol.uris import radio_seed_of, radio_uri_of, split_uri, track_id_of
from hub.errors import HubError
from hub.fleet.player import PlayerService
from hub.fleet.relay import Relay

logger = logging.getLogger(__name__)

#: Contexts whose radio is seeded from the context itself; any other (a radio, a
#: list of tracks, a playlist) goes on from its last track.
SEEDS_ITSELF = ("album", "artist")


def continuation(context_uri: str | None, last_track_uri: str) -> str:
    """The radio that goes on after ``context_uri`` ended on ``last_track_uri``."""
    parsed = split_uri(context_uri) if context_uri and radio_seed_of(context_uri) is None else None
    if parsed is not None and parsed.kind in SEEDS_ITSELF:
        return radio_uri_of(parsed.kind, parsed.id)
    return radio_uri_of("track", track_id_of(last_track_uri))


@dataclass(frozen=True, slots=True)
class Ended:
    """What a speaker had when its context ran out."""

    device_id: str
    user_id: int
    context_uri: str | None
    played: tuple[str, ...]  # track ids of the context and the last track
    last_track_uri: str
    revision: int  # of the speaker's state as the hub knew it then (session, revision)
    session: str


def moved_on(state: PlayerState, ended: Ended) -> bool:
    """Whether the speaker's state says something else started since its context ended.

    A state no newer than the one known when the event came says nothing: the speaker's
    own end-of-context state may reach the hub after its event."""
    if state.session != ended.session:
        return True
    if state.revision <= ended.revision:
        return False
    return state.is_playing or state.context_uri != ended.context_uri


class Autoplay:
    def __init__(
        self,
        relay: Relay,
        player: PlayerService,
        *,
        enabled: Callable[[int], bool],
    ) -> None:
        """``enabled(user_id)`` says whether that listener wants autoplay (blocking)."""
        self.relay = relay
        self.player = player
        self.enabled = enabled
        self._tasks: set[asyncio.Task[None]] = set()
        self._unsubscribe = relay.add_event_listener(self.on_event)

    def on_event(self, device_id: str, event: Event) -> None:
        """Start going on when a listener's context ended (called on the event loop)."""
        if event.kind is not EventKind.CONTEXT_ENDED or not event.track_uri:
            return
        user_id = self.player.listener_of(device_id)
        device = self.relay.devices.get(device_id)
        if user_id is None or device is None:
            return
        state = device.state
        played = (*(track_id_of(t.uri) for t in state.tracks), track_id_of(event.track_uri))
        ended = Ended(
            device_id,
            user_id,
            state.context_uri,
            played,
            event.track_uri,
            state.revision,
            state.session,
        )
        task = asyncio.get_running_loop().create_task(self._go_on(ended))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _go_on(self, ended: Ended) -> None:
        try:
            await self._play_radio(ended)
        except HubError as exc:
            logger.info("autoplay on %s stopped: %s", ended.device_id, exc)
        except Exception:
            logger.exception("autoplay on %s failed", ended.device_id)

    async def _play_radio(self, ended: Ended) -> None:
        if not await asyncio.to_thread(self.enabled, ended.user_id):
            return
        radio_uri = continuation(ended.context_uri, ended.last_track_uri)
        tracks = await self.player.radio_tracks(ended.user_id, radio_uri, set(ended.played))
        device = self.relay.devices.get(ended.device_id)
        if device is None or moved_on(device.state, ended):
            return  # someone started something else meanwhile: theirs wins
        play = Play(id=self.relay.new_command_id(), tracks=tuple(tracks), context_uri=radio_uri)
        await self.relay.send(ended.device_id, play)
        logger.info("autoplay: %s goes on with %s", ended.device_id, radio_uri)

    async def close(self) -> None:
        """Stop listening and let what has started finish or be cancelled."""
        self._unsubscribe()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
