"""The native engine's output stage: its thread writes PCM to the sink, and says what is heard.

It takes PCM in period-sized pieces, applies the volume (ramped, so a change
never clicks; on the sink's hardware mixer when it has one) and writes it to
the sink.  What it has written, minus the device's delay, is the position it
reports; it finds underruns (and the recovery from them) and track ends the
same way.  In a group (``alignment``) it keeps each block to the group's
timeline first: silence, dropped audio or single frames in or out.  A sink
that fails is closed and opened again every second, with one ``error``
event, rather than ending playback.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time

import numpy as np

from connect_protocol.messages import EventKind
from device.audio import dsp
from device.audio.native.alignment import MIN_ADJUST_BLOCK, PLAIN, Decision, SyncAlignment
from device.audio.native.state import Shared
from device.audio.pcm_queue import Chunk
from device.audio.sinks import Sink, SinkError
from device.sync.aligner import apply_adjust
from device.sync.api import SyncStats

logger = logging.getLogger(__name__)


class OutputStage:
    """The ``audio-sink`` thread and the sink it owns."""

    def __init__(self, shared: Shared, sink: Sink) -> None:
        self._s = shared
        self._sink = sink
        self._sink_open = False
        self._sink_error: str | None = None
        self._volume_percent = 50
        # a sink that runs as fast as it can has no pause latency to keep short
        self._write_frames = shared.opts.block_frames * (8 if sink.fast else 1)
        self.first_audio_ns: int | None = None  # monotonic time of the latest first frame
        self.sync = SyncAlignment(shared.rate, self._write_frames)  # group play (set_sync)
        self._volume_now = shared.volume
        self._last_epoch = -1
        self.thread = threading.Thread(target=self._loop, name="audio-sink", daemon=True)

    # --- called by the facade (holding the lock) -------------------------------------

    def set_volume(self, volume_percent: int) -> None:
        self._volume_percent = volume_percent
        self._apply_volume()

    def _apply_volume(self) -> None:
        """On the board's hardware mixer when it has one (full resolution), else in software."""
        if self._sink_open and self._sink.hardware_volume:
            try:
                self._sink.set_volume(self._volume_percent)
                self._s.volume = 1.0
                return
            except SinkError as exc:
                logger.warning("hardware volume failed (%s); using software volume", exc)
        self._s.volume = dsp.volume_gain(self._volume_percent)

    def drop(self) -> None:
        """Drop what the device holds (a load or seek: else the old track is heard for a
        buffer's length); this also releases a write blocked on a full device."""
        if self._sink_open:
            try:
                self._sink.drop()
            except SinkError as exc:
                logger.warning("could not drop the audio queued in %s: %s", self._sink.name, exc)

    def position_locked(self) -> int:
        """Where the current track is heard: frames written, less what the device holds."""
        s = self._s
        if not s.plan:
            return 0
        current = s.plan[0]
        if current.gen not in s.started:
            return s.held_position_ms
        delay = self._sink.delay_frames() if self._sink_open else 0
        found = s.timeline.heard(max(0, s.timeline.written - delay))
        if found is None or found[0].gen != current.gen:
            return s.held_position_ms
        ms = found[1] * 1000 // s.rate
        return min(ms, current.track.duration_ms)

    def close(self) -> None:
        """After the thread has ended: let the device play out, and release it."""
        if self._sink_open:
            self._sink.close()

    # --- the thread ------------------------------------------------------------------

    def _loop(self) -> None:
        s = self._s
        while True:
            with s.lock:
                if s.closed:
                    return
                self._check_ends()
                ready = self._ready_to_write()
                if not ready:
                    s.sink_wake.wait(0.01 if s.timeline.ends or s.playing else 0.1)
                    continue
                epoch = s.epoch
                target_volume = s.volume
            if not self._ensure_sink():  # before taking audio, so none is lost while it is away
                with s.lock:
                    s.sink_wake.wait(1.0)
                continue
            if epoch != self._last_epoch:  # a fresh start: no ramp from the old volume
                self._volume_now, self._last_epoch = target_volume, epoch
            head, decision = self._decide(epoch)
            if head is None:
                continue
            if not decision.audio:
                self._without_audio(head, decision, epoch)
                continue
            chunk = s.queue.take(self._write_frames)
            if chunk is not None:
                self._write_chunk(chunk, decision, epoch, target_volume)

    def _decide(self, epoch: int) -> tuple[Chunk | None, Decision]:
        """The head chunk and, when grouped, what keeping to the timeline asks of it."""
        s = self._s
        with s.lock:
            head = s.queue.peek()
            if epoch != s.epoch or head is None or not self.sync.active:
                return (head if epoch == s.epoch else None), PLAIN
            delay = self._sink.delay_frames() if self._sink_open else 0
            next_uri = s.plan[1].track.uri if len(s.plan) > 1 else None
            decision = self.sync.decide(head, delay, next_uri)
            rebased, self.sync.rebased = self.sync.rebased, None
            if rebased is not None and self.sync.on_rebase is not None:
                s.call_soon(self.sync.on_rebase, rebased)
            return head, decision

    def _without_audio(self, head: Chunk, decision: Decision, epoch: int) -> None:
        """Silence in place of audio (a start still ahead, no clock yet), or audio dropped
        (a start behind): the track's position holds at the head chunk's frame."""
        s = self._s
        if decision.skip:
            with s.lock:
                if epoch == s.epoch:
                    s.queue.take(decision.skip)
                    s.decode_wake.notify()
            return
        try:
            self._sink.write(np.zeros((decision.silence, 2), np.int16))
        except SinkError as exc:
            self._sink_failed(str(exc))
            return
        with s.lock:
            if epoch == s.epoch:
                s.timeline.gap(decision.silence, head.gen, head.uri, head.start)
                self._check_underruns()

    def _write_chunk(self, chunk: Chunk, decision: Decision, epoch: int, target: float) -> None:
        s = self._s
        pcm = chunk.pcm
        if decision.adjust and chunk.frames >= MIN_ADJUST_BLOCK:
            pcm = apply_adjust(pcm, decision.adjust)
        if self._volume_now != target:  # ramp over the block: a change never clicks
            pcm = dsp.ramp_volume(pcm, self._volume_now, target)
            self._volume_now = target
        elif self._volume_now != 1.0:
            pcm = dsp.apply_volume(pcm, self._volume_now)
        if decision.silence:
            pcm = np.concatenate([np.zeros((decision.silence, 2), np.int16), pcm])
        with s.lock:
            if epoch != s.epoch:
                return  # a seek or load arrived: this audio is stale
        try:
            if pcm.shape[0]:
                self._sink.write(pcm)
        except SinkError as exc:
            self._sink_failed(str(exc))
            return
        with s.lock:
            if epoch != s.epoch:
                return
            if decision.silence:
                s.timeline.gap(decision.silence, chunk.gen, chunk.uri, chunk.start)
            written = pcm.shape[0] - decision.silence
            s.timeline.wrote(
                chunk.gen, chunk.uri, chunk.start, written, chunk.last, track_frames=chunk.frames
            )
            self.sync.wrote(chunk)
            self._check_underruns()
            if s.queue.frames < s.decoded_ahead:
                s.decode_wake.notify()
            if chunk.frames and chunk.gen not in s.started:
                s.started.add(chunk.gen)
                if s.plan and s.plan[0].gen == chunk.gen:  # not a gapless preload
                    self.first_audio_ns = time.monotonic_ns()
                    s.report(chunk.uri, chunk.start * 1000 // s.rate, False)

    def _check_underruns(self) -> None:
        """The sink ran dry while playing (it played its own silence): say so once each."""
        s = self._s
        count = int(getattr(self._sink, "underruns", 0))
        if count > self.sync.underruns_seen:
            self.sync.underruns_seen = count
            if s.playing:
                uri = s.plan[0].track.uri if s.plan else None
                s.emit(EventKind.UNDERRUN, uri, "the audio device ran dry")

    def sync_stats(self) -> SyncStats:
        """How this member keeps to the group's timeline (hold the lock)."""
        return self.sync.stats(int(getattr(self._sink, "underruns", 0)))

    def _ready_to_write(self) -> bool:
        """May the sink thread write now?  Handles underruns and their recovery."""
        s = self._s
        if not s.playing or not s.plan:
            return False
        current = s.plan[0]
        queued = s.queue.frames
        if s.buffering:
            enough = queued >= s.opts.resume_s * s.rate
            if not (enough or s.queue.has_end_of(current.gen) or current.produced):
                return False
            s.buffering = False
            s.report(current.track.uri, self.position_locked(), False)
            return True
        if queued > 0 or s.queue.has_end_of(current.gen):
            return True  # audio, or the end of a track that failed before any audio
        # nothing queued while playing: an underrun, unless the track is simply over
        # (not while a load or seek first fills the buffer: nothing has played since),
        # or the device still holds audio, or the decoder has audio coming for a sink
        # that runs faster than real time
        if not current.produced and s.started and not self._still_sounding():
            s.buffering = True
            s.stalled = True
            # where the sound will stop: the last frame written, once the device drains
            found = s.timeline.heard(s.timeline.written)
            position = 0  # a stall at a track join: the next one has not begun
            if found is not None and found[0].gen == current.gen:
                position = found[1] * 1000 // s.rate
            s.emit(EventKind.UNDERRUN, current.track.uri, "buffer ran dry; waiting for audio")
            s.report(current.track.uri, position, True)
        return False

    def _still_sounding(self) -> bool:
        """Whether an empty queue is not (yet) a gap a listener hears."""
        if self._sink_open and self._sink.delay_frames() > 0:
            return True  # the device is still playing what it was given
        return self._sink.fast and self._s.buffered_frames() > 0  # still to decode

    def _check_ends(self) -> None:
        s = self._s
        if not s.timeline.ends:
            return
        delay = self._sink.delay_frames() if self._sink_open else 0
        for mark in s.timeline.ended(max(0, s.timeline.written - delay)):
            if not s.plan or s.plan[0].gen != mark.gen:
                continue
            finished = s.plan.pop(0)
            if s.plan:
                s.absorb = s.plan[0].track.uri
                s.held_position_ms = 0
            else:
                s.held_position_ms = finished.track.duration_ms
            s.track_ended(finished.track.uri)
            s.fetch_wake.notify()  # the next track may start filling now

    def _ensure_sink(self) -> bool:
        if self._sink_open:
            return True
        try:
            self._sink.open()
        except SinkError as exc:
            self._sink_failed(str(exc))
            return False
        self._sink_open = True
        with self._s.lock:
            self._apply_volume()
        if self._sink_error is not None:
            logger.info("audio output %s is back", self._sink.name)
            self._sink_error = None
        return True

    def _sink_failed(self, message: str) -> None:
        s = self._s
        if self._sink_open:
            with contextlib.suppress(SinkError):
                self._sink.close()
            self._sink_open = False
        if message != self._sink_error:
            logger.error("audio output: %s (retrying)", message)
            uri = s.plan[0].track.uri if s.plan else None
            s.emit(EventKind.ERROR, uri, f"audio output: {message}")
            self._sink_error = message
