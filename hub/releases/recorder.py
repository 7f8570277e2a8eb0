"""Speakers' update reports kept per (speaker, release), and the automatic halt.

Subscribed to the relay's events like the fleet recorder, with a background writer
of its own, so the event loop never waits on SQLite.  After each failure the
rollout's failures are counted again (:func:`hub.releases.policy.halt_reason`) and
the rollout halts by itself when they pass the threshold.
"""

from __future__ import annotations

import logging
import sqlite3

from connect_protocol.messages import UPDATE_STATES, Event, EventKind
from hub.db import BackgroundWriter, Database
from hub.fleet.relay import Relay
from hub.releases.service import Releases
from releases.versions import is_version

logger = logging.getLogger(__name__)


class UpdateRecorder:
    def __init__(self, db: Database, relay: Relay, releases: Releases) -> None:
        self.releases = releases
        self._writer = BackgroundWriter(db, "release-recorder")
        self._unsubscribe = relay.add_event_listener(self.record)

    def record(self, device_id: str, event: Event) -> None:
        """Queue an update report's row (other events are the fleet recorder's)."""
        if event.kind is not EventKind.UPDATE:
            return
        if event.state not in UPDATE_STATES or not is_version(event.version):
            logger.info("ignoring an update event from %s without a valid version/state", device_id)
            return
        version, state, reason = event.version, event.state, event.message

        def write(conn: sqlite3.Connection) -> None:
            # a version this hub has no release of is dropped there
            halted = self.releases.record_in(conn, device_id, version, state, reason)
            if halted is not None:
                logger.warning("release %s: %s", version, halted)

        self._writer.run(write)

    def close(self) -> None:
        """Stop listening and write what is queued (blocks: call it off the loop)."""
        self._unsubscribe()
        self._writer.close()
