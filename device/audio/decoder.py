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
    parts: list[NDArray[np.float32]] = []
    got = 0
    try:
        with av.open(io.BytesIO(data), mode="r", format="ogg") as container:
            stream = container.streams.audio[0]
            if stream.channels != channels:
                raise DecodeFailedError(
                    f"segment has {stream.channels} channels, the manifest says {channels}"
                )
            for frame in container.decode(stream):
                raw = frame.to_ndarray()
                if raw.dtype != np.float32:
                    raise DecodeFailedError(f"unexpected sample format {frame.format.name}")
                arr: NDArray[np.float32] = raw.astype(np.float32, copy=False)
                if not frame.format.is_planar:
                    arr = arr.reshape(-1, channels).T
                parts.append(arr)
                got += arr.shape[1]
                if got >= frames:
                    break
    except (av.FFmpegError, IndexError, ValueError) as exc:
        raise DecodeFailedError(f"cannot decode segment: {exc}") from exc
    if got < frames:
        raise DecodeFailedError(f"segment decoded to {got} frames, expected {frames}")
    pcm = np.concatenate(parts, axis=1)[:, :frames].T
    if not np.isfinite(pcm).all():
        raise DecodeFailedError("segment decoded to non-finite samples")
    return np.ascontiguousarray(pcm, dtype=np.float32)
