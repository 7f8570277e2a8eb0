"""Source file to float PCM with PyAV: the one decoder for every input format.

The result is what every later step works from: ``pcm`` is float32 of shape
(frames, channels) at the source rate, already down-mixed to stereo when the
source has more channels (every rendition is mono or stereo, and loudness is
measured on what is delivered).  Decoders' own trims apply, so an MP3 is its
gapless length.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from numpy.typing import NDArray

from hub.errors import IngestError

_SCALE = {"u8": 128.0, "s16": 32768.0, "s32": 2147483648.0, "s64": 9223372036854775808.0}
_CENTRE = 0.7071067811865476  # -3 dB, as ITU-R BS.775 down-mixes centre and surrounds
_LEFT = {"FL", "FLC", "BL", "SL", "TFL", "TBL", "WL", "SDL", "TSL"}
_RIGHT = {"FR", "FRC", "BR", "SR", "TFR", "TBR", "WR", "SDR", "TSR"}
_DROPPED = {"LFE", "LFE2", "LFE1"}
#: What a file that does not name its channels (a WAV without a channel mask) most
#: likely holds, by channel count.
_USUAL_LAYOUTS = {3: "3.0", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}


@dataclass(frozen=True, slots=True)
class Decoded:
    pcm: NDArray[np.float32]  # (frames, channels), channels 1 or 2
    rate: int
    source_channels: int
    codec: str

    @property
    def frames(self) -> int:
        return int(self.pcm.shape[0])


def channel_names(layout: av.AudioLayout) -> list[str]:
    names = [c.name for c in layout.channels]
    if any(n in {"NONE", "UNKNOWN", "USR0"} for n in names) and len(names) in _USUAL_LAYOUTS:
        return [c.name for c in av.AudioLayout(_USUAL_LAYOUTS[len(names)]).channels]
    return names


def downmix_matrix(names: list[str]) -> NDArray[np.float32]:
    """(channels, 2) gains taking a layout to stereo; LFE is dropped."""
    matrix = np.zeros((len(names), 2), dtype=np.float32)
    for i, name in enumerate(names):
        if name in _LEFT:
            matrix[i, 0] = 1.0 if name in {"FL", "FLC"} else _CENTRE
        elif name in _RIGHT:
            matrix[i, 1] = 1.0 if name in {"FR", "FRC"} else _CENTRE
        elif name not in _DROPPED:  # centres and anything unnamed go to both sides
            matrix[i, :] = _CENTRE
    return matrix


def frame_to_float(frame: av.AudioFrame) -> NDArray[np.float32]:
    """One decoded frame as float32 (samples, channels), whatever its sample format."""
    fmt = frame.format
    channels = len(frame.layout.channels)
    raw = frame.to_ndarray()
    data = raw if fmt.is_planar else raw.reshape(-1, channels).T
    base = fmt.name.rstrip("p")
    if base == "u8":
        out = (data.astype(np.float32) - 128.0) / _SCALE["u8"]
    elif base in _SCALE:
        out = data.astype(np.float32) / np.float32(_SCALE[base])
    else:
        out = data.astype(np.float32)
    return np.ascontiguousarray(out.T)


class _Buffer:
    """Frames appended into one array sized from the container's duration.

    Collecting chunks and concatenating them needs twice the track in memory;
    with a good estimate this needs it once (a 10-minute stereo track is 200 MB).
    """

    def __init__(self, estimate: int, channels: int) -> None:
        self.data = np.empty((max(estimate, 1), channels), dtype=np.float32)
        self.frames = 0

    def append(self, pcm: NDArray[np.float32]) -> None:
        end = self.frames + pcm.shape[0]
        if end > self.data.shape[0]:
            grown = np.empty(
                (max(end, self.data.shape[0] * 3 // 2), self.data.shape[1]), np.float32
            )
            grown[: self.frames] = self.data[: self.frames]
            self.data = grown
        self.data[self.frames : end] = pcm
        self.frames = end

    def result(self) -> NDArray[np.float32]:
        if self.frames < self.data.shape[0] * 0.9:
            return self.data[: self.frames].copy()  # do not keep a large unused tail
        return self.data[: self.frames]


def _estimate_frames(stream: av.AudioStream, rate: int) -> int:
    if stream.duration and stream.time_base:
        return int(stream.duration * stream.time_base * rate * 1.01) + 4096
    return rate * 60 * 10


def decode(path: Path) -> Decoded:
    """Decode the first audio stream; raise ``IngestError`` with a one-line reason."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise IngestError("no audio stream")
            stream = container.streams.audio[0]
            buffer: _Buffer | None = None
            rate = channels = 0
            matrix: NDArray[np.float32] | None = None
            for frame in container.decode(stream):
                if buffer is None:
                    rate, channels = frame.sample_rate, len(frame.layout.channels)
                    if channels > 2:
                        matrix = downmix_matrix(channel_names(frame.layout))
                    buffer = _Buffer(_estimate_frames(stream, rate), min(channels, 2))
                elif (frame.sample_rate, len(frame.layout.channels)) != (rate, channels):
                    raise IngestError("sample rate or channels change mid-stream")
                pcm = frame_to_float(frame)
                buffer.append(pcm if matrix is None else pcm @ matrix)
            codec = stream.codec_context.name
    except av.FFmpegError as exc:
        raise IngestError(f"cannot decode: {exc.strerror or exc}") from exc
    except OSError as exc:
        raise IngestError(f"cannot read: {exc.strerror or exc}") from exc
    if buffer is None or not buffer.frames:
        raise IngestError("no audio could be decoded")
    pcm = buffer.result()
    if not np.isfinite(np.sum(pcm, dtype=np.float64)):  # NaN and inf survive a sum
        raise IngestError("decoded audio contains NaN or infinity")
    return Decoded(pcm=pcm, rate=rate, source_channels=channels, codec=codec)
