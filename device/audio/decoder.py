"""Ogg Vorbis segment bytes to float PCM, exactly as long as the manifest says.

Each segment is an independent stream whose decoded length the manifest
states; the decoder holds it to that length, so a broken segment is an error,
never noise: too few frames, an undecodable packet or non-finite samples all
raise ``DecodeFailedError``.  ``SegmentDecoder`` hands the audio out a block
at a time (the engine keeps only a few seconds decoded and the rest
compressed); ``decode_segment`` is the whole segment at once.
"""

from __future__ import annotations

import numpy as np

from device.audio.vorbis import Pcm, VorbisError, VorbisStream
from device.errors import DeviceError

__all__ = ["DecodeFailedError", "Pcm", "SegmentDecoder", "decode_segment"]


class DecodeFailedError(DeviceError):
    """The segment is not what the manifest promised; fetch it again or skip it."""


class SegmentDecoder:
    """Blocks of one segment's ``(frames, channels)`` float32, ``frames`` in all, exactly."""

    def __init__(self, data: bytes, frames: int, channels: int) -> None:
        self.frames = frames
        self.done = 0  # frames handed out so far
        try:
            self._stream: VorbisStream | None = VorbisStream(data)
        except VorbisError as exc:
            raise DecodeFailedError(f"cannot decode segment: {exc}") from exc
        if self._stream.channels != channels:
            got = self._stream.channels
            self.close()
            raise DecodeFailedError(f"segment has {got} channels, the manifest says {channels}")

    @property
    def finished(self) -> bool:
        return self.done >= self.frames

    def read(self, max_frames: int) -> Pcm:
        """The next block (at most ``max_frames``); empty once all ``frames`` are out."""
        want = min(max_frames, self.frames - self.done)
        stream = self._stream
        if want <= 0 or stream is None:
            self.close()
            return np.zeros((0, 0 if stream is None else stream.channels), np.float32)
        try:
            block = stream.read(want)
        except VorbisError as exc:
            self.close()
            raise DecodeFailedError(f"cannot decode segment: {exc}") from exc
        got = int(block.shape[0])
        if got < want and stream.ended:
            self.close()
            raise DecodeFailedError(
                f"segment decoded to {self.done + got} frames, expected {self.frames}"
            )
        self.done += got
        if self.finished:
            self.close()
        return block

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    def __enter__(self) -> SegmentDecoder:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def decode_segment(data: bytes, frames: int, channels: int) -> Pcm:
    """Decode one whole segment to ``(frames, channels)`` float32."""
    with SegmentDecoder(data, frames, channels) as decoder:
        block = decoder.read(frames)
    return np.ascontiguousarray(block)
