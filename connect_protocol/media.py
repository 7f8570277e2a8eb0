"""The audio contract between the hub's media store and the speaker's engine.

The hub's ingest cuts every track into segments whose boundaries fall on the
same instants in every quality; the manifest (``GET /v1/audio/{id}/manifest``)
tells the speaker, per quality, each segment's exact decoded length and a
signed URL.  Both sides plan with the pure functions here, so "where segment n
starts" has one answer.

Frame counts are exact: a segment decodes to ``frames`` frames (Ogg granule
positions), and the segments of a quality add up to ``Rendition.frames``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class Quality(IntEnum):
    """The ladder, in order; values index ``BITRATES_BPS``."""

    LOW = 0
    NORMAL = 1
    HIGH = 2
    VERY_HIGH = 3

    @classmethod
    def parse(cls, name: str) -> Quality:
        try:
            return cls[name.upper()]
        except KeyError:
            names = ", ".join(q.label for q in cls)
            raise ValueError(f"unknown quality {name!r}; expected one of {names}") from None

    @property
    def label(self) -> str:
        return self.name.lower()


#: Nominal bitrates of the ladder (ARCHITECTURE.md: ~24, 96, 160, 320 kbps).
BITRATES_BPS: tuple[int, ...] = (24_000, 96_000, 160_000, 320_000)

#: Segment lengths: a short first one so sound starts fast, then longer ones.
#: Every segment must span more than one Ogg page (libav does not trim the end
#: of a single-page stream), hence no segment under ``MIN_SEGMENT_S``.
FIRST_SEGMENT_S = 2.0
SEGMENT_S = 6.0
MIN_SEGMENT_S = 2.0


def rendition_rate(quality: Quality, source_rate: int) -> int:
    """The sample rate a quality is stored at: the source's, but ``low`` halves it.

    ``low`` is mono at half the source rate (22.05 kHz for 44.1 kHz): libvorbis
    cannot reach ~24 kbps at 44.1 kHz stereo.  Halving (rather than a fixed
    16 kHz) keeps every even source frame an exact instant in both rates.
    """
    if quality is Quality.LOW and source_rate >= 32_000:
        return source_rate // 2
    return source_rate


def rendition_channels(quality: Quality, source_channels: int) -> int:
    return 1 if quality is Quality.LOW else min(source_channels, 2)


def segment_boundaries(frames: int, rate: int) -> list[int]:
    """Source-frame boundaries ``[0, b1, ..., frames]`` shared by every quality.

    Interior boundaries are even (so they are exact instants at half rate too);
    a tail shorter than ``MIN_SEGMENT_S`` joins the segment before it.  A track
    shorter than the first segment is one segment.
    """
    if frames <= 0:
        raise ValueError("a track needs at least one frame")
    first = 2 * round(FIRST_SEGMENT_S * rate / 2)
    step = 2 * round(SEGMENT_S * rate / 2)
    minimum = MIN_SEGMENT_S * rate
    bounds = [0]
    nxt = first
    while nxt < frames:
        bounds.append(nxt)
        nxt += step
    if len(bounds) > 1 and frames - bounds[-1] < minimum:
        bounds.pop()
    bounds.append(frames)
    return bounds


def scaled_boundaries(bounds: list[int], source_rate: int, rate: int, total: int) -> list[int]:
    """The same instants at another rate; the last one is that rendition's own length.

    ``total`` is what the resampler produced for the whole track, so the
    rendition's segments add up to exactly it.
    """
    if rate == source_rate:
        return [*bounds[:-1], total]
    return [*(b * rate // source_rate for b in bounds[:-1]), total]


@dataclass(frozen=True, slots=True, kw_only=True)
class Segment:
    frames: int  # decoded length, exact
    bytes: int  # size of the .ogg
    url: str = ""  # signed URL (relative to the hub) in a manifest; empty in the store


@dataclass(frozen=True, slots=True, kw_only=True)
class Rendition:
    quality: str  # Quality.label
    sample_rate: int
    channels: int
    bitrate: int  # measured average, bits per second
    frames: int  # sum of the segments' frames
    segments: tuple[Segment, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Loudness:
    """EBU R128: integrated loudness (LUFS) and true peak (dBTP), track and album."""

    track_lufs: float
    track_peak_dbtp: float
    album_lufs: float
    album_peak_dbtp: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Manifest:
    track_id: str
    uri: str
    album_id: str
    frames: int  # the source's length at ``sample_rate``
    sample_rate: int
    channels: int
    duration_ms: int
    loudness: Loudness
    #: Source-frame boundaries shared by every quality (len = segments + 1).
    boundaries: tuple[int, ...]
    renditions: tuple[Rendition, ...]  # in ladder order, low first
    expires_ms: int = 0  # when the signed URLs stop working (0 in the store)

    def rendition(self, quality: Quality) -> Rendition:
        for r in self.renditions:
            if r.quality == quality.label:
                return r
        raise KeyError(quality.label)

    def segment_at(self, frame: int) -> int:
        """Index of the segment holding source frame ``frame`` (clamped)."""
        lo, hi = 0, len(self.boundaries) - 2
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.boundaries[mid] <= frame:
                lo = mid
            else:
                hi = mid - 1
        return lo
