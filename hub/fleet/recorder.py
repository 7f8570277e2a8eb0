"""What speakers report, kept: every event (``device_events``) and each track a
listener started (``plays``).

Subscribed to the relay's events, with a background writer of its own, so the
event loop never waits on SQLite and the relay knows nothing of what is stored.
A play goes to the listener who last started or moved playback on that speaker
(``listener_of``, the player service's record), with the context the speaker was
playing and the speaker's id; the speaker's ``finished`` or ``skipped`` report for
that track then completes the row: how long it played, whether it was skipped,
whether it played to its end.
"""

from __future__ import annotations

from collections.abc import Callable

from connect_protocol.messages import Event, EventKind
from connect_protocol.uris import track_id_of
from hub.catalog import plays
from hub.clock import now_ms
from hub.db import BackgroundWriter, Database
from hub.fleet.events import EventRecorder
from hub.fleet.relay import Relay


class FleetRecorder:
    def __init__(
        self,
        db: Database,
        relay: Relay,
        *,
        listener_of: Callable[[str], int | None],
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.relay = relay
        self.listener_of = listener_of
        self._writer = BackgroundWriter(db, "fleet-recorder")
        self._events = EventRecorder(self._writer.execute, clock=clock)
        self._unsubscribe = relay.add_event_listener(self.record)

    def record(self, device_id: str, event: Event) -> None:
        """Queue the event's row; a play when a listener's track started, its ending
        when the track finished or was skipped."""
        self._events(device_id, event)
        if not event.track_uri:
            return
        track_id = track_id_of(event.track_uri)
        if event.kind in (EventKind.FINISHED, EventKind.SKIPPED):
            # a skip says something of the listener only when it was theirs: another
            # listener taking the speaker ends the play, how is then unknown
            ending = {
                "ms_played": event.played_ms,
                "skip": int(event.kind is EventKind.SKIPPED),
                "by": self.listener_of(device_id),
                "since": event.timestamp_ms - plays.OPEN_PLAY_MS,
                "device": device_id,
                "track": track_id,
            }
            self._writer.execute(plays.COMPLETE, ending)
            return
        user_id = self.listener_of(device_id)
        if event.kind is not EventKind.STARTED or user_id is None:
            return
        device = self.relay.devices.get(device_id)
        context = device.state.context_uri if device is not None else None
        row = (user_id, event.timestamp_ms, context, device_id, track_id)
        self._writer.execute(plays.INSERT, row)

    def close(self) -> None:
        """Stop listening and write what is queued (blocks: call it off the loop)."""
        self._unsubscribe()
        self._writer.close()
