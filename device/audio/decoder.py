"""Ogg Vorbis segment bytes to float PCM, exactly as long as the manifest says.

PyAV (libavcodec's Vorbis decoder) is the fastest binding measured here and
reads from memory.  Each segment is an independent stream whose decoded
length the manifest states; the decoder holds it to that length, so a broken
segment is an error, never noise: too few frames, an undecodable packet or
non-finite samples all raise ``DecodeFailed``.
"""

from __future__ import annotations

import io

import av
import numpy as np
from numpy.typing import NDArray

Pcm = NDArray[np.float32]  # shape (frames, channels)


class DecodeFailedError(Exception):
    """The segment is not what the manifest promised; fetch it again or skip it."""


def decode_segment(data: bytes, frames: int, channels: int) -> Pcm:
    """Decode one segment to ``(frames, channels)`` float32.

    A stream may decode a few frames long when it fits one Ogg page (libav
    does not trim its end); the surplus is past the true end, so it is cut.
    """
    fifo = av.AudioFifo()  # gathers the frames in C; one conversion at the end
    try:
        with av.open(io.BytesIO(data), mode="r", format="ogg") as container:
            stream = container.streams.audio[0]
            if stream.channels != channels:
                raise DecodeFailedError(
                    f"segment has {stream.channels} channels, the manifest says {channels}"
                )
            for frame in container.decode(stream):
                if frame.format.name != "fltp":
                    raise DecodeFailedError(f"unexpected sample format {frame.format.name}")
                frame.pts = None  # the fifo checks continuity of pts; segments start at 0
                fifo.write(frame)
                if fifo.samples >= frames:
                    break
            got = fifo.samples
            whole = fifo.read() if got else None
    except (av.FFmpegError, IndexError, ValueError) as exc:
        raise DecodeFailedError(f"cannot decode segment: {exc}") from exc
    if got < frames or whole is None:
        raise DecodeFailedError(f"segment decoded to {got} frames, expected {frames}")
    planar = whole.to_ndarray()
    pcm: Pcm = np.ascontiguousarray(planar[:, :frames].T, dtype=np.float32)
    if not np.isfinite(pcm).all():
        raise DecodeFailedError("segment decoded to non-finite samples")
    return pcm
