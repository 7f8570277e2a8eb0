"""The Ogg Vorbis ladder: each quality cut into independent, exactly sized segments.

Every segment is its own Ogg Vorbis stream encoded (libsndfile's libvorbis)
from exactly its slice of PCM, so it decodes to exactly that many frames and a
player can start at any segment.  ``low`` is mono at half rate: the whole track
is resampled once (soxr), and that output is cut at the same
instants (``scaled_boundaries``); its length is that rendition's length.

Each encoded segment is decoded again with PyAV (the speaker's decoder) and a
length that is not exact fails the track: exactness is the contract.
"""

from __future__ import annotations

import io
import itertools
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
    """The whole track as this quality stores it: (pcm, rate)."""
    channels = rendition_channels(quality, pcm.shape[1])
    out_rate = rendition_rate(quality, rate)
    if channels == 1 and pcm.shape[1] > 1:
        pcm = pcm.mean(axis=1, keepdims=True, dtype=np.float32)
    if out_rate != rate:
        pcm = soxr.resample(pcm, rate, out_rate).astype(np.float32, copy=False)
    return np.ascontiguousarray(pcm), out_rate


def encode_rendition(
    pcm: NDArray[np.float32],
    rate: int,
    bounds: list[int],
    quality: Quality,
    store: Callable[[int, bytes], None],
) -> Rendition:
    """Encode and verify each segment, handing it to ``store`` (segment number, bytes)."""
    data, out_rate = rendition_pcm(pcm, rate, quality)
    cuts = scaled_boundaries(bounds, rate, out_rate, data.shape[0])
    level = COMPRESSION_LEVEL[quality]
    segments: list[Segment] = []
    for n, (start, end) in enumerate(itertools.pairwise(cuts)):
        if end <= start:
            raise IngestError(f"{quality.label} segment {n} would be empty")
        blob = encode_segment(data[start:end], out_rate, level)
        verify_segment(blob, end - start, out_rate, data.shape[1], f"{quality.label} segment {n}")
        store(n, blob)
        segments.append(Segment(frames=end - start, bytes=len(blob)))
    total = sum(s.bytes for s in segments)
    return Rendition(
        quality=quality.label,
        sample_rate=out_rate,
        channels=data.shape[1],
        bitrate=round(total * 8 * out_rate / data.shape[0]),
        frames=data.shape[0],
        segments=tuple(segments),
    )
