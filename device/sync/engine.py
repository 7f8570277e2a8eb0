"""``GroupPlayer``: the ``Engine`` a speaker's controller drives, grouped or not.

It wraps the native engine.  Ungrouped it passes every call through.  As the
group's **leader** each load, seek, pause or resume becomes a new ``Anchor``
(a little ahead, so every member can be there on time), published as a plan
and set on its own engine before the engine acts.  As a **follower** it plays
the leader's plans and ignores its own controller's player commands (the hub
sends the group's commands to the leader), all but the volume, which stays
each speaker's own.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Iterator
from typing import Protocol

from connect_protocol.messages import TrackRef
from device.engine_api import Engine
from device.sync.anchor import NS, Anchor
from device.sync.api import GroupClock, RebaseCallback, SyncStats
from device.sync.peer import Role, SyncPeer
from device.sync.wire import Plan

logger = logging.getLogger(__name__)

LOAD_LEAD_NS = 400_000_000  # a load or seek is heard this long after the leader's command
RESUME_LEAD_NS = 200_000_000
FOLLOW_LEAD_NS = 300_000_000  # a follower loads where the timeline will be this much later
SOFT_NS = 50_000_000  # a new plan this close to what a follower plays: no reload


class SyncEngine(Engine, Protocol):
    """An engine that can play to a group's timeline (the native engine)."""

    @property
    def sink_rate(self) -> int: ...
    def set_sync(
        self, clock: GroupClock | None, anchor: Anchor | None, on_rebase: RebaseCallback | None
    ) -> None: ...
    def set_anchor(self, anchor: Anchor | None) -> None: ...
    def anchor(self) -> Anchor | None: ...
    def sync_stats(self) -> SyncStats: ...


class GroupPlayer:
    """See the module docstring.  Every method runs on the event loop."""

    def __init__(self, inner: SyncEngine, peer: SyncPeer) -> None:
        self.inner = inner
        self.peer = peer
        peer.on_plan = self._on_plan
        peer.on_clock = self._on_clock
        self.role = Role.NONE
        self.anchor: Anchor | None = None
        self.current: TrackRef | None = None
        self.next: TrackRef | None = None
        self.playing = False
        self.plans_applied = 0
        self._waiting: Plan | None = None  # a plan that came before the clock
        self._ending = False  # the controller is handling a track's end (a gapless join)
        # what the engine itself has as its current and next track: a follower's plan may
        # be ahead of it (the leader joined the next track first)
        self._engine_uri: str | None = None
        self._engine_next: str | None = None
        self._adopting = False  # a new leader's first load may be what it already plays

    # --- roles (from GroupMember) -----------------------------------------------------------

    def lead(self, key: bytes) -> None:
        if self.role is Role.LEADER:
            self.peer.lead(key)  # a new key, same leader
            return
        anchor = self._continuous_anchor()
        self._adopting = self.role is Role.FOLLOWER and anchor is not None
        self.peer.lead(key)
        self.role = Role.LEADER
        self.anchor = anchor
        self.inner.set_sync(self.peer.leader_clock, anchor, self._on_rebase)
        if anchor is not None:  # nothing playing (a restarted leader): the followers play on
            self._publish()

    def follow(self, key: bytes, leader_addr: str, leader_id: str) -> None:
        logger.info("following the group leader %s at %s", leader_id, leader_addr)
        was = self.role
        self.peer.follow(key, leader_addr)
        self.role = Role.FOLLOWER
        self._waiting = None
        # a new clock (silence until it is known), then the leader's plan: an anchor on
        # another leader's clock means nothing on this one
        if was is Role.NONE:  # its own music gives way to the group's
            self._unload()
            self.current = self.next = None
            self.playing = False
        if was is not Role.FOLLOWER or self.peer.estimate is None:
            self.anchor = None
            self.inner.set_sync(self.peer.clock, None, self._on_rebase)

    def leave(self) -> None:
        """Out of the group: its music stops, and so does syncing."""
        if self.role is Role.NONE:
            return
        self.peer.leave()
        self.role = Role.NONE
        self._unload()
        self.inner.set_sync(None, None, None)
        self.anchor = self.current = self.next = None
        self.playing = False
        self._waiting = None

    def _continuous_anchor(self) -> Anchor | None:
        """What this speaker plays now as an anchor on its own clock (becoming leader)."""
        now = time.monotonic_ns()
        if self.role is Role.FOLLOWER and self.anchor is not None:
            est = self.peer.estimate
            if est is not None:  # from the old leader's clock to ours, by the last estimate
                shift = est.leader_ns(now) - now
                return dataclasses.replace(self.anchor, at_ns=self.anchor.at_ns - shift)
        if self.current is None:
            return None
        rate = self.inner.sink_rate
        frame = self.inner.position_ms() * rate // 1000
        return Anchor(uri=self.current.uri, frame=frame, at_ns=now, rate=rate, playing=self.playing)

    # --- the Engine interface ---------------------------------------------------------------

    def load(self, track: TrackRef, position_ms: int, playing: bool) -> None:
        if self.role is Role.FOLLOWER:
            return
        adopting, self._adopting = self._adopting, False
        joined = self._ending and position_ms == 0 and self._anchor_is(track)
        # a new leader told what the group plays (the hub's Adopt) already plays it
        kept = adopting and playing and self._anchor_is(track) and self.playing
        self.current, self.playing = track, playing
        if not joined:
            self.next = None  # the controller says what follows right after
        if self.role is Role.LEADER and not joined:
            if not kept:
                self._start(track.uri, position_ms, playing, LOAD_LEAD_NS)
            self._publish()
        if not kept:
            self._load(track, position_ms, playing)

    def seek(self, position_ms: int) -> None:
        if self.role is Role.FOLLOWER:
            return
        self._adopting = False
        if self.role is Role.LEADER and self.current is not None:
            self._start(self.current.uri, position_ms, self.playing, LOAD_LEAD_NS)
            self._publish()
        self.inner.seek(position_ms)

    def set_playing(self, playing: bool) -> None:
        if self.role is Role.FOLLOWER:
            return
        if self.role is Role.LEADER and self.anchor is not None and playing != self.playing:
            now = time.monotonic_ns()
            if playing:  # on from the frame it held, everyone a little ahead
                self.anchor = dataclasses.replace(
                    self.anchor, at_ns=now + RESUME_LEAD_NS, playing=True
                )
            else:
                self.anchor = self.anchor.moved(now, playing=False)
            self.playing = playing
            self.inner.set_anchor(self.anchor)
            self._publish()
        self.playing = playing
        self.inner.set_playing(playing)

    def set_next(self, track: TrackRef | None) -> None:
        if self.role is Role.FOLLOWER:
            return
        changed = (track.uri if track else None) != (self.next.uri if self.next else None)
        self.next = track
        if self.role is Role.LEADER and changed:
            self._publish()
        self._set_next(track)

    def set_volume(self, volume_percent: int) -> None:
        self.inner.set_volume(volume_percent)

    def unload(self) -> None:
        if self.role is Role.FOLLOWER:
            return
        self._adopting = False
        self.anchor = self.current = self.next = None
        self.playing = False
        if self.role is Role.LEADER:
            self.inner.set_anchor(None)
            self._publish()
        self._unload()

    def position_ms(self) -> int:
        return self.inner.position_ms()

    def needs_network(self) -> bool:
        return self.inner.needs_network()

    def close(self) -> None:
        self.inner.close()

    def sync_stats(self) -> SyncStats:
        return self.inner.sync_stats()

    @contextlib.contextmanager
    def track_ending(self, uri: str) -> Iterator[None]:
        """Around the controller's handling of the engine's track end: the load of the next
        track it makes is the gapless join the engine already played, not a new start."""
        if uri == self._engine_uri:
            self._engine_uri, self._engine_next = self._engine_next, None
        if self.role is Role.FOLLOWER and self.current and self._engine_uri == self.current.uri:
            self._set_next(self.next)  # held back while the plan was ahead of the engine
        self._ending = True
        try:
            yield
        finally:
            self._ending = False

    # --- the leader ---------------------------------------------------------------------------

    def _load(self, track: TrackRef, position_ms: int, playing: bool) -> None:
        self._engine_uri, self._engine_next = track.uri, None
        self.inner.load(track, position_ms, playing)

    def _set_next(self, track: TrackRef | None) -> None:
        self._engine_next = track.uri if track else None
        self.inner.set_next(track)

    def _unload(self) -> None:
        self._engine_uri = self._engine_next = None
        self.inner.unload()

    def _anchor_is(self, track: TrackRef) -> bool:
        return self.anchor is not None and self.anchor.uri == track.uri

    def _start(self, uri: str, position_ms: int, playing: bool, lead_ns: int) -> None:
        rate = self.inner.sink_rate
        at = time.monotonic_ns() + lead_ns
        self.anchor = Anchor(
            uri=uri, frame=max(0, position_ms) * rate // 1000, at_ns=at, rate=rate, playing=playing
        )
        self.inner.set_anchor(self.anchor)

    def _publish(self) -> None:
        self.peer.publish(self.anchor, self.current if self.anchor else None, self.next)

    def _on_rebase(self, anchor: Anchor) -> None:
        """The engine joined the next track gaplessly and moved the timeline onto it."""
        if self.inner.anchor() != anchor:
            return  # a load, seek or new plan since: that timeline is no longer the engine's
        if self.role is Role.LEADER:
            self.anchor = anchor
            if self.next is not None and self.next.uri == anchor.uri:
                self.current, self.next = self.next, None
            self._publish()
        elif self.role is Role.FOLLOWER:
            self._follower_rebased(anchor)

    # --- the follower ------------------------------------------------------------------------

    def _on_clock(self) -> None:
        waiting, self._waiting = self._waiting, None
        if waiting is not None:
            self._on_plan(waiting)

    def _on_plan(self, plan: Plan) -> None:
        if self.role is not Role.FOLLOWER:
            return
        now = self.peer.clock.now_ns()
        if now is None:
            self._waiting = plan  # where the timeline is needs the clock: later
            return
        self.plans_applied += 1
        self._apply(plan, now)

    def _apply(self, plan: Plan, now: int) -> None:
        new, old = plan.anchor, self.anchor
        if new is None or plan.current is None:
            self.anchor = self.current = None
            self.playing = False
            self.inner.set_anchor(None)
            self._unload()
        elif old is not None and self.current is not None and self._close(old, new, now):
            self.anchor = new
            if new != old:
                self.inner.set_anchor(new)
            if new.playing != self.playing:
                self.inner.set_playing(new.playing)
            self.current, self.playing = plan.current, new.playing
        else:
            self.anchor, self.current, self.playing = new, plan.current, new.playing
            self.inner.set_anchor(new)
            frame = new.frame_at(now + FOLLOW_LEAD_NS) if new.playing else float(new.frame)
            position_ms = max(0, int(frame * 1000 // new.rate))
            self._load(plan.current, position_ms, new.playing)
        self.next = plan.next
        if plan.current is None or self._engine_uri == plan.current.uri:
            self._set_next(plan.next)  # else once the engine reaches the join (track_ending)

    def _close(self, old: Anchor, new: Anchor, now: int) -> bool:
        """Whether ``new`` continues what this follower plays (same track, timeline within
        ``SOFT_NS``; or the gapless join onto the track it has ready next)."""
        if new.uri != old.uri:
            if self.next is None or new.uri != self.next.uri or self.current is None:
                return False
            if not (old.playing and new.playing):
                return False
            end = old.time_of(self.current.duration_ms * old.rate / 1000)
            return abs(new.at_ns - end) <= SOFT_NS
        tolerance = SOFT_NS * new.rate / NS
        if old.playing and new.playing:
            return abs(old.frame_at(now) - new.frame_at(now)) <= tolerance
        held = old.frame_at(now) if old.playing else float(old.frame)
        return abs(held - new.frame) <= tolerance

    def _follower_rebased(self, anchor: Anchor) -> None:
        self.anchor = anchor
        if self.next is not None and self.next.uri == anchor.uri:
            self.current, self.next = self.next, None
