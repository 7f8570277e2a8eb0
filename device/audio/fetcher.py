"""The segment fetcher both engines read through: one fetch at a time, its outcome a value.

What it decides, for the native and the mpv engine alike:

- which quality the next segment is fetched in: the offline download's own
  quality when the source holds the whole track (``held_quality``), else the
  ABR's choice (``device.abr``), falling back to the best rendition the
  manifest has at or below it (else its lowest); a change is reported as a
  ``quality_change`` event;
- how long a fetch may take (``deadline_s``): most of the audio still ahead,
  except at the bottom rung or a pinned quality, where there is nothing lower
  to fall back to;
- what a failure means: a retryable one is tried again after the shared
  back-off (``connect_protocol.backoff``, with jitter, per segment or manifest
  in ``Attempts``), a permanent one fails the track, a fetch abandoned as too
  slow is a stall for the ABR;
- that no bad byte is ever played: a segment that fails its Ogg page check
  (CRCs, Vorbis header, final granule = the manifest's frame count) is fetched
  once more, then skipped with an ``error`` event.  Bytes from the encrypted
  cache (``Authenticated``) are proven whole by their tag and not checked again.

It holds no thread and never sleeps: each engine's own thread asks for one
fetch and acts on the outcome (the native fetcher waits on its condition, the
mpv prefetcher schedules the retry), so plan changes stay the engine's.  The
clock and the jitter draw are injected, so every rule is tested with fakes.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from connect_protocol.backoff import Backoff
from connect_protocol.media import Manifest, Quality
from connect_protocol.messages import EventKind
from connect_protocol.ogg import BadSegmentError, check_segment
from device.abr import AbrInput, AbrPolicy, choose
from device.audio.source import SegmentSource, SourceError, TooSlowError, needs_page_check
from device.engine_api import EventCallback

logger = logging.getLogger(__name__)

#: 0.1 s, doubling to 2 s: a segment is needed within seconds, a manifest too.
RETRY = Backoff(initial_s=0.1, maximum_s=2.0)
#: Watermarks 5 s and 30 s, starting at ``normal``.
ABR = AbrPolicy()


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchPolicy:
    cap: Quality = Quality.VERY_HIGH  # the ABR never goes above it
    pinned: bool = False  # always the cap (``quality = LEVEL``), no deadline
    abr: AbrPolicy = ABR
    retry: Backoff = RETRY

    @classmethod
    def for_quality(
        cls, quality: str, *, abr: AbrPolicy = ABR, retry: Backoff = RETRY
    ) -> FetchPolicy:
        """From the config's ``quality``: ``auto`` (capped at the top) or a level to pin."""
        if quality == "auto":
            return cls(cap=Quality.VERY_HIGH, pinned=False, abr=abr, retry=retry)
        return cls(cap=Quality.parse(quality), pinned=True, abr=abr, retry=retry)


@dataclass(slots=True)
class Attempts:
    """How fetching one thing (a manifest, or one segment) has gone so far; its owner
    keeps it until that thing is fetched, and starts afresh for the next."""

    failures: int = 0  # retryable failures in a row
    retry_at: float = 0.0  # clock reading before which not to try again
    refetched: bool = False  # fetched once more after failing its check

    def due(self, now: float) -> bool:
        return now >= self.retry_at


@dataclass(frozen=True, slots=True)
class BufferState:
    """What the ABR weighs besides throughput: audio ahead, and a stall since its last choice."""

    buffer_s: float
    stalled: bool


@dataclass(frozen=True, slots=True)
class Choice:
    quality: Quality
    held: bool  # the source holds the track at this quality (offline): not the ABR's pick


# --- outcomes of one fetch -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Got:
    """The segment's bytes, checked (or proven by the cache's tag)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Skip:
    """The segment failed its check twice: leave it out (the error event is sent)."""

    message: str


@dataclass(frozen=True, slots=True)
class Refetch:
    """The segment failed its check once: fetch it again (choosing its quality afresh)."""

    message: str


@dataclass(frozen=True, slots=True)
class TooSlow:
    """The fetch was abandoned before the buffer would run dry: a stall; choose again."""

    message: str


@dataclass(frozen=True, slots=True)
class Retry:
    """A failure that may pass: try the same fetch again after ``wait_s``."""

    wait_s: float
    message: str


@dataclass(frozen=True, slots=True)
class Failed:
    """A failure that will not pass (unknown track, refused, bad manifest): the track ends."""

    message: str


SegmentOutcome = Got | Skip | Refetch | TooSlow | Retry | Failed


def rendition_at_most(manifest: Manifest, quality: Quality) -> Quality:
    """The chosen level if the manifest has it, else the best one below it (else the lowest)."""
    have = {r.quality for r in manifest.renditions}
    for level in sorted(Quality, reverse=True):
        if level <= quality and level.label in have:
            return level
    return Quality.parse(manifest.renditions[0].quality)


class SegmentFetcher:
    """Manifests and checked segments from a ``SegmentSource``, with the policy above."""

    def __init__(
        self,
        source: SegmentSource,
        policy: FetchPolicy,
        *,
        emit: EventCallback,
        clock: Callable[[], float] = time.monotonic,
        uniform: Callable[[], float] = random.random,
    ) -> None:
        self.source = source
        self.policy = policy
        self._emit = emit
        self._clock = clock
        self._uniform = uniform

    def manifest(self, track_id: str, attempts: Attempts) -> Manifest | Retry | Failed:
        try:
            manifest = self.source.manifest(track_id)
        except SourceError as exc:
            return self._failed(attempts, exc, f"manifest of {track_id}")
        attempts.failures = 0
        return manifest

    def choose(
        self,
        manifest: Manifest,
        *,
        uri: str,
        current: Quality | None,
        state: Callable[[], BufferState],
    ) -> Choice:
        """The quality for the next segment.  ``state`` is read only when the ABR is
        asked (so a stall is not used up while a held track plays)."""
        held = self.source.held_quality(manifest)
        if held is not None:
            return Choice(held, held=True)
        now = state()
        chosen = choose(
            AbrInput(
                current=current,
                buffer_s=now.buffer_s,
                throughput_bps=self.source.throughput_bps(),
                stalled=now.stalled,
                cap=self.policy.cap,
                pinned=self.policy.pinned,
            ),
            self.policy.abr,
        )
        quality = rendition_at_most(manifest, chosen)
        if current is not None and quality != current:
            self._emit(EventKind.QUALITY_CHANGE, uri, f"{current.label} -> {quality.label}")
        return Choice(quality, held=False)

    def deadline_s(self, quality: Quality, buffer_s: float) -> float | None:
        """How long a fetch may take: most of the audio still queued (no limit at the
        bottom rung or a pinned quality: nothing lower to fall back to)."""
        if quality is Quality.LOW or self.policy.pinned:
            return None
        return max(1.0, 0.8 * buffer_s)

    def segment(
        self,
        manifest: Manifest,
        quality: Quality,
        n: int,
        attempts: Attempts,
        *,
        uri: str,
        deadline_s: float | None = None,
    ) -> SegmentOutcome:
        """Fetch segment ``n`` once and check it."""
        try:
            data = self.source.segment(manifest, quality, n, deadline_s=deadline_s)
        except TooSlowError as exc:
            attempts.failures = 0  # the link answers, slowly: the ABR's business
            logger.info("segment %d of %s: %s; choosing again", n, manifest.track_id, exc)
            return TooSlow(str(exc))
        except SourceError as exc:
            return self._failed(attempts, exc, f"segment {n} of {manifest.track_id}")
        attempts.failures = 0
        if not needs_page_check(data):
            return Got(data)
        rendition = manifest.rendition(quality)
        try:
            check_segment(data, rendition.segments[n].frames, rendition)
        except BadSegmentError as exc:
            if not attempts.refetched:
                attempts.refetched = True
                logger.warning("segment %d of %s: %s; fetching it again", n, manifest.track_id, exc)
                return Refetch(str(exc))
            message = f"skipped segment {n}: {exc}"
            logger.warning("%s: %s", uri, message)
            self._emit(EventKind.ERROR, uri, message)
            return Skip(message)
        return Got(data)

    def fetch_again(self, manifest: Manifest, quality: Quality, n: int) -> bytes:
        """Segment ``n`` once more, as it comes (it passed its check but would not
        decode); raises ``SourceError``."""
        return self.source.segment(manifest, quality, n)

    def _failed(self, attempts: Attempts, exc: SourceError, what: str) -> Retry | Failed:
        if not exc.retryable:
            return Failed(str(exc))
        wait = self.policy.retry.delay_s(attempts.failures, self._uniform())
        attempts.failures += 1
        attempts.retry_at = self._clock() + wait
        logger.info("%s: %s; retrying in %.2f s", what, exc, wait)
        return Retry(wait, str(exc))
