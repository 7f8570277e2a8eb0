"""From frames written to the sink back to "which track, which position".

The sink thread records a ``Span`` whenever the frames it writes stop being
contiguous in one track (a new track, a seek, a skipped segment).  Asking
"what is heard now" with ``frames_written - device_delay`` then gives the
track and its frame; an ``EndMark`` says at which written frame a track's
last sample sits, so "track ended" fires when that sample is heard, not when
it was decoded.  Pure and small, so it is tested directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Span:
    sink_start: int  # frames written to the sink before this span began
    gen: int
    uri: str
    track_start: int  # the span's first frame in its track (sink rate)
    gap: bool = False  # silence written before ``track_start`` (sync): the track holds


@dataclass(frozen=True, slots=True)
class EndMark:
    sink_end: int  # frames written once the track's last frame was
    gen: int
    uri: str


@dataclass(slots=True)
class Timeline:
    spans: list[Span] = field(default_factory=list)
    ends: list[EndMark] = field(default_factory=list)
    written: int = 0  # frames written so far, over the sink's life
    _next_track_frame: int | None = None
    _gen: int | None = None

    def wrote(
        self,
        gen: int,
        uri: str,
        track_start: int,
        frames: int,
        last: bool,
        *,
        track_frames: int | None = None,
    ) -> None:
        """``frames`` written to the sink carrying ``track_frames`` of the track (fewer or
        more when a sync correction removed or inserted some; the next write then starts
        a new span, so positions after it are exact again)."""
        if gen != self._gen or track_start != self._next_track_frame:
            self._add(Span(self.written, gen, uri, track_start))
        track_frames = frames if track_frames is None else track_frames
        self._gen, self._next_track_frame = gen, track_start + track_frames
        if track_frames != frames:
            self._next_track_frame = None  # sink and track frames parted: a new span next
        self.written += frames
        if last:
            self.ends.append(EndMark(self.written, gen, uri))

    def gap(self, frames: int, gen: int, uri: str, track_start: int) -> None:
        """Silence written before track frame ``track_start`` (a sync start, or while the
        group's clock is unknown): the position holds there until the audio comes."""
        if frames <= 0:
            return
        self._add(Span(self.written, gen, uri, track_start, gap=True))
        self._gen = self._next_track_frame = None
        self.written += frames

    def _add(self, span: Span) -> None:
        self.spans.append(span)
        if len(self.spans) > 512:  # a sync correction may add a span every few blocks
            del self.spans[:-256]

    def reset(self) -> None:
        """Forget spans and end marks (a load or seek replaced everything queued)."""
        self.spans.clear()
        self.ends.clear()
        self._gen = self._next_track_frame = None

    def heard(self, heard: int) -> tuple[Span, int] | None:
        """The span holding sink frame ``heard`` and the track frame it is at."""
        for span in reversed(self.spans):
            if span.sink_start <= heard:
                return span, span.track_start + (0 if span.gap else heard - span.sink_start)
        return None

    def ended(self, heard: int) -> list[EndMark]:
        """End marks reached by ``heard``; each is returned once."""
        done = [m for m in self.ends if m.sink_end <= heard]
        if done:
            self.ends = [m for m in self.ends if m.sink_end > heard]
        return done
