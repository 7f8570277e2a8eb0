"""The Ogg Vorbis ladder: each quality cut into independent, exactly sized segments.

Every segment is its own Ogg Vorbis stream encoded (libsndfile's libvorbis)
from exactly its slice of PCM, so it decodes to exactly that many frames and a
player can start at any segment.  ``low`` is mono at half rate: the whole track
goes through one streaming resampler (soxr, the same output as resampling it
at once), and that output is cut at the same instants (``scaled_boundaries``);
its length is that rendition's length.

``RenditionEncoder`` takes the track in blocks and encodes each segment as
soon as its last frame arrives, so it holds at most a segment and a block.

Each encoded segment is decoded again with PyAV (the speaker's decoder) and a
length that is not exact fails the track: exactness is the contract.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import av
import numpy as np
import soundfile as sf
import soxr
from numpy.typing import NDArray

from connect_protocol.media import (
    Quality,
    Rendition,
    Segment,
    rendition_channels,
    rendition_rate,
    scaled_boundaries,
)
from connect_protocol.ogg import OggError
from hub.errors import IngestError
from hub.ingest.oggpages import split_single_page

#: libsndfile's compression level per quality (Vorbis quality ~ 1 - 1.1 * level).
#: Chosen from libvorbis' nominal bitrates: q-0.1 mono 22.05 kHz ~24 kbps, q2
#: ~96, q5 ~160, q9 ~320 kbps stereo 44.1 kHz.  The measured average is stored.
COMPRESSION_LEVEL: dict[Quality, float] = {
    Quality.LOW: 1.0,
    Quality.NORMAL: 0.8,
    Quality.HIGH: 0.5,
    Quality.VERY_HIGH: 0.1,
}


def encode_segment(pcm: NDArray[np.float32], rate: int, level: float) -> bytes:
    """One independent Ogg Vorbis stream, paged so that libav trims it exactly."""
    buf = io.BytesIO()
    with sf.SoundFile(
        buf,
        "w",
        samplerate=rate,
        channels=pcm.shape[1],
        format="OGG",
        subtype="VORBIS",
        compression_level=level,
    ) as out:
        out.write(pcm)
    try:
        return split_single_page(buf.getvalue())
    except OggError as exc:
        raise IngestError(f"unexpected encoder output: {exc}") from exc


def decoded_frames(data: bytes) -> tuple[int, int, int]:
    """(frames, rate, channels) PyAV decodes from one segment."""
    with av.open(io.BytesIO(data), mode="r") as container:
        stream = container.streams.audio[0]
        frames = sum(frame.samples for frame in container.decode(stream))
        context = stream.codec_context
        return frames, context.sample_rate, context.channels


def verify_segment(data: bytes, frames: int, rate: int, channels: int, where: str) -> None:
    try:
        got = decoded_frames(data)
    except (av.FFmpegError, IndexError) as exc:
        raise IngestError(f"{where} does not decode: {exc}") from exc
    if got != (frames, rate, channels):
        raise IngestError(
            f"{where} decodes to {got[0]} frames at {got[1]} Hz x{got[2]},"
            f" expected {frames} at {rate} Hz x{channels}"
        )


def rendition_pcm(
    pcm: NDArray[np.float32], rate: int, quality: Quality
) -> tuple[NDArray[np.float32], int]:
    """The whole track as this quality stores it: (pcm, rate), all at once."""
    channels = rendition_channels(quality, pcm.shape[1])
    out_rate = rendition_rate(quality, rate)
    if channels == 1 and pcm.shape[1] > 1:
        pcm = pcm.mean(axis=1, keepdims=True, dtype=np.float32)
    if out_rate != rate:
        pcm = soxr.resample(pcm, rate, out_rate).astype(np.float32, copy=False)
    return np.ascontiguousarray(pcm), out_rate


class RenditionEncoder:
    """One quality of the ladder, fed the source in blocks at its own rate.

    ``bounds`` are the track's ``segment_boundaries`` (the whole length is known
    before encoding starts).  Each segment is encoded, verified and handed to
    ``store`` (segment number, bytes) once its last frame is in; ``finish``
    encodes the last one, whose end is the rendition's own length.
    """

    def __init__(
        self,
        quality: Quality,
        rate: int,
        channels: int,
        bounds: list[int],
        store: Callable[[int, bytes], None],
    ) -> None:
        self.quality, self.store = quality, store
        self.out_rate = rendition_rate(quality, rate)
        self.channels = rendition_channels(quality, channels)
        self._mono = self.channels == 1 and channels > 1
        self._resampler = (
            soxr.ResampleStream(rate, self.out_rate, self.channels, dtype="float32")
            if self.out_rate != rate
            else None
        )
        # Interior cuts at this rate; the last one is what the resampler gives in all.
        self._cuts = scaled_boundaries(bounds, rate, self.out_rate, 0)[1:-1]
        self._held: list[NDArray[np.float32]] = []
        self._held_frames = 0
        self._start = 0  # rendition frame where the held audio starts
        self._segments: list[Segment] = []

    def feed(self, pcm: NDArray[np.float32]) -> None:
        data = pcm.mean(axis=1, keepdims=True, dtype=np.float32) if self._mono else pcm
        if self._resampler is not None:
            data = self._resampler.resample_chunk(data)
        self._take(data)

    def finish(self) -> Rendition:
        if self._resampler is not None:
            self._take(self._resampler.resample_chunk(self._empty(), last=True))
        total = self._start + self._held_frames
        if len(self._segments) < len(self._cuts):
            raise IngestError(f"{self.quality.label} segment {len(self._segments)} would be empty")
        self._encode(total)
        size = sum(s.bytes for s in self._segments)
        return Rendition(
            quality=self.quality.label,
            sample_rate=self.out_rate,
            channels=self.channels,
            bitrate=round(size * 8 * self.out_rate / total),
            frames=total,
            segments=tuple(self._segments),
        )

    def _empty(self) -> NDArray[np.float32]:
        return np.zeros((0, self.channels), dtype=np.float32)

    def _take(self, data: NDArray[np.float32]) -> None:
        if data.shape[0]:
            self._held.append(data)
            self._held_frames += data.shape[0]
        while len(self._segments) < len(self._cuts):
            end = self._cuts[len(self._segments)]
            if self._start + self._held_frames < end:
                return
            self._encode(end)

    def _encode(self, end: int) -> None:
        """Encode held frames up to rendition frame ``end`` as the next segment."""
        n, frames = len(self._segments), end - self._start
        where = f"{self.quality.label} segment {n}"
        if frames <= 0:
            raise IngestError(f"{where} would be empty")
        held = self._held[0] if len(self._held) == 1 else np.concatenate(self._held)
        blob = encode_segment(np.ascontiguousarray(held[:frames]), self.out_rate, self.level)
        verify_segment(blob, frames, self.out_rate, self.channels, where)
        self.store(n, blob)
        self._segments.append(Segment(frames=frames, bytes=len(blob)))
        rest = held[frames:]
        self._held = [rest] if rest.shape[0] else []
        self._held_frames, self._start = rest.shape[0], end

    @property
    def level(self) -> float:
        return COMPRESSION_LEVEL[self.quality]


def encode_rendition(
    pcm: NDArray[np.float32],
    rate: int,
    bounds: list[int],
    quality: Quality,
    store: Callable[[int, bytes], None],
    *,
    block_frames: int = 1 << 16,
) -> Rendition:
    """A whole array through ``RenditionEncoder``, ``block_frames`` at a time."""
    encoder = RenditionEncoder(quality, rate, pcm.shape[1], bounds, store)
    for start in range(0, pcm.shape[0], block_frames):
        encoder.feed(pcm[start : start + block_frames])
    return encoder.finish()
