"""Group play in the output stage: what the sink thread does to keep to the group's timeline.

Before each block the sink thread asks ``SyncAlignment.decide`` about the chunk
at the head of the queue.  It compares the track frame about to be written
with the frame the ``Anchor`` says is heard when this one will be (the group
clock now, plus the sink's delay) and answers with a ``Decision``: write
silence instead (the clock is unknown, or the start is still ahead), drop
audio (the start is behind), or write the chunk with frames inserted or
removed (``Aligner``'s soft correction).  At a gapless join it moves the
anchor on by itself (``Anchor.rebased``) from the exact length of the track
that ended, and tells the sync layer.  Every field is guarded by the engine's
shared lock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from device.audio.pcm_queue import Chunk
from device.sync.aligner import Aligner
from device.sync.anchor import NS, Anchor
from device.sync.api import GroupClock, RebaseCallback, SyncStats

MIN_ADJUST_BLOCK = 64  # shorter pieces (a chunk's tail) are written as they are


@dataclass(frozen=True, slots=True)
class Decision:
    """What the sink thread does next: ``silence`` zero frames first (a gap in the
    timeline); then, if ``audio``, the head chunk with ``adjust`` frames inserted (+) or
    removed (-); else drop ``skip`` frames from the queue and decide again."""

    audio: bool = True
    silence: int = 0
    skip: int = 0
    adjust: int = 0


PLAIN = Decision()


@dataclass(slots=True)
class Written:
    """The latest chunk written: where a gapless join's next track starts on the timeline."""

    gen: int
    uri: str
    end: int  # one past its last track frame (sink rate)
    last: bool


class SyncAlignment:
    """The clock, the anchor and the aligner of a grouped engine (all under the shared lock)."""

    def __init__(self, rate: int, block_frames: int) -> None:
        self.rate = rate
        self.block = block_frames
        self.clock: GroupClock | None = None
        self.anchor: Anchor | None = None
        self.on_rebase: RebaseCallback | None = None
        self.aligner = Aligner(rate)
        self.error_frames = 0.0
        self.aligned = False  # the latest block was measured against the anchor
        self.starts = 0
        self.underruns_seen = 0
        self.rebased: Anchor | None = None  # set by ``decide``; the caller tells the loop
        self._prev: Written | None = None
        self._hard = False  # the start under way is a hard re-alignment, not a new start

    @property
    def active(self) -> bool:
        return self.clock is not None

    def set_sync(
        self, clock: GroupClock | None, anchor: Anchor | None, on_rebase: RebaseCallback | None
    ) -> None:
        if clock is not self.clock:
            self.restart()
        self.clock, self.on_rebase = clock, on_rebase
        self.set_anchor(anchor)
        if clock is None:
            self.aligned = False

    def set_anchor(self, anchor: Anchor | None) -> None:
        """A new timeline; from a held (or no) one to a playing one is a fresh start."""
        old = self.anchor
        if anchor is not None and anchor.playing and (old is None or not old.playing):
            self.restart()
        self.anchor = anchor

    def restart(self) -> None:
        """Load, seek, unload, resume, a new clock: align at once again."""
        self.aligner.restart()
        self._hard = False
        self.aligned = False

    def new_epoch(self) -> None:
        """Queued audio was discarded: the previous chunk is no gapless join any more."""
        self._prev = None
        self.restart()

    def wrote(self, chunk: Chunk) -> None:
        if chunk.frames or chunk.last:
            self._prev = Written(chunk.gen, chunk.uri, chunk.start + chunk.frames, chunk.last)

    def stats(self, underruns: int) -> SyncStats:
        a = self.aligner
        return SyncStats(
            synced=self.active and self.aligned and a.started,
            error_ms=self.error_frames * 1000.0 / self.rate,
            drift_ppm=a.drift_ppm,
            frames_inserted=a.frames_inserted,
            frames_removed=a.frames_removed,
            hard_corrections=a.hard_corrections,
            starts=self.starts,
            sink_underruns=underruns,
        )

    # --- the sink thread's question -------------------------------------------------

    def decide(self, head: Chunk, delay_frames: int, next_uri: str | None) -> Decision:
        """What to do with ``head`` (the queue's front chunk), the sink holding
        ``delay_frames`` not yet heard."""
        clock = self.clock
        if clock is None:
            return PLAIN
        now = clock.now_ns()
        if now is None:  # not synchronised yet: silence, and start afresh once it is
            self.restart()
            return Decision(audio=False, silence=self.block)
        anchor = self._rebase_at_join(head)
        if anchor is None or not anchor.playing:
            self.aligned = False
            return PLAIN  # held: the sync layer pauses the engine itself
        if anchor.uri != head.uri:
            if anchor.uri == next_uri:
                return PLAIN  # the timeline has moved on to the next track: until the join
            self.aligned = False
            return Decision(audio=False, silence=self.block)  # its track is still to come
        if head.frames == 0:
            return PLAIN
        heard_ns = now + delay_frames * NS // self.rate
        expected = anchor.frame_at(heard_ns) * self.rate / anchor.rate
        error = head.start - expected
        self.error_frames, self.aligned = error, True
        return self._correct(head, error)

    def _correct(self, head: Chunk, error: float) -> Decision:
        a = self.aligner
        hard_frames = a.policy.hard_ms * self.rate / 1000.0
        if a.started and abs(error) > hard_frames:  # a stall or a jump: at once again
            a.hard_corrections += 1
            a.restart()
            self._hard = True
        block = min(head.frames, self.block)
        if not a.started:
            if error <= -0.5:  # behind: drop audio (never a track's last frame)
                keep = 1 if head.last else 0
                skip = min(round(-error), head.frames - keep)
                if skip > 0:
                    return Decision(audio=False, skip=skip)
            if error > self.block:  # ahead by more than a block: silence, then look again
                return Decision(audio=False, silence=self.block)
            hard, self._hard = self._hard, False
            step = a.step(max(0.0, error), block)  # a start: exact silence
            self.starts += 0 if hard else 1
            return Decision(silence=step.silence)
        if block < MIN_ADJUST_BLOCK:
            return PLAIN
        step = a.step(error, block)
        cap = max(0, block // 3 - 1)  # what ``apply_adjust`` can spread in the block
        return Decision(adjust=max(-cap, min(cap, step.adjust)))

    def _rebase_at_join(self, head: Chunk) -> Anchor | None:
        """At a gapless join the timeline runs on into the next track, from the exact
        length of the one that ended."""
        anchor, prev = self.anchor, self._prev
        if (
            anchor is None
            or not anchor.playing
            or prev is None
            or anchor.uri == head.uri
            or anchor.uri != prev.uri
            or not prev.last
            or head.start != 0
            or head.gen == prev.gen
        ):
            return anchor
        track_frames = math.floor(prev.end * anchor.rate / self.rate + 0.5)
        self.anchor = anchor.rebased(head.uri, track_frames)
        self.rebased = self.anchor
        return self.anchor
