"""Source file to float PCM with PyAV: the one decoder for every input format.

What every later step works from is float32 of shape (frames, channels) at the
source rate, already down-mixed to stereo when the source has more channels
(every rendition is mono or stereo, and loudness is measured on what is
delivered).  Decoders' own trims apply, so an MP3 is its gapless length.

``PcmReader`` hands it over in blocks (ingest never holds a whole track) and
stops at the duration limit; ``decode`` collects a whole track into one array.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from numpy.typing import NDArray

from hub.errors import IngestError
from hub.ingest.limits import IngestLimits

_SCALE = {"u8": 128.0, "s16": 32768.0, "s32": 2147483648.0, "s64": 9223372036854775808.0}
_CENTRE = 0.7071067811865476  # -3 dB, as ITU-R BS.775 down-mixes centre and surrounds
_LEFT = {"FL", "FLC", "BL", "SL", "TFL", "TBL", "WL", "SDL", "TSL"}
_RIGHT = {"FR", "FRC", "BR", "SR", "TFR", "TBR", "WR", "SDR", "TSR"}
_DROPPED = {"LFE", "LFE2", "LFE1"}
#: What a file that does not name its channels (a WAV without a channel mask) most
#: likely holds, by channel count.
_USUAL_LAYOUTS = {3: "3.0", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}
_FLOAT_FORMATS = {"flt", "dbl"}
#: Frames handed to the later steps at a time: ~1.5 s at 44.1 kHz, 0.5 MB in stereo.
BLOCK_FRAMES = 1 << 16


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


class PcmReader:
    """One pass over a file's first audio stream, as float32 (frames, 1 or 2) pieces.

    Entering opens the file and decodes its first frame, whose rate and channels
    are the track's; every later frame must agree.  ``frames`` counts what has
    been decoded so far, and decoding fails with ``IngestError`` as soon as it
    passes ``limits.max_duration_s`` (decoded frames are counted, not the
    container's claim).  Nothing is kept between pieces, so memory does not
    depend on the track's length.

        with PcmReader(path, limits=limits) as reader:
            for block in reader.blocks():  # about 1.5 s each
                ...
    """

    def __init__(self, path: Path, *, limits: IngestLimits | None) -> None:
        self.path, self.limits = path, limits
        self.frames = 0
        self.rate = self.source_channels = self.channels = 0
        self.codec = ""
        self._max_frames: int | None = None
        self._matrix: NDArray[np.float32] | None = None
        self._container: av.container.InputContainer | None = None
        self._stream: av.AudioStream | None = None
        self._pending: Iterator[av.AudioFrame] = iter(())

    def __enter__(self) -> PcmReader:
        with _translated():
            container = self._container = av.open(str(self.path))
            try:
                if not container.streams.audio:
                    raise IngestError("no audio stream")
                stream = self._stream = container.streams.audio[0]
                decoded = container.decode(stream)
                first = next(decoded, None)
            except BaseException:
                container.close()
                raise
        if first is None:
            container.close()
            raise IngestError("no audio could be decoded")
        self.rate, self.source_channels = first.sample_rate, len(first.layout.channels)
        self.channels = min(self.source_channels, 2)
        if self.source_channels > 2:
            self._matrix = downmix_matrix(channel_names(first.layout))
        self.codec = stream.codec_context.name
        if self.limits is not None:
            self._max_frames = math.floor(self.limits.max_duration_s * self.rate)
        self._pending = itertools.chain([first], decoded)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._container is not None:
            self._container.close()

    def estimated_frames(self) -> int:
        """The container's idea of the length (it may be wrong), for sizing a buffer."""
        stream = self._stream
        if stream is not None and stream.duration and stream.time_base:
            return int(stream.duration * stream.time_base * self.rate * 1.01) + 4096
        return self.rate * 60 * 10

    def _decoded(self) -> Iterator[av.AudioFrame]:
        frames, self._pending = self._pending, iter(())  # one pass only
        with _translated():
            for frame in frames:
                if (frame.sample_rate, len(frame.layout.channels)) != (
                    self.rate,
                    self.source_channels,
                ):
                    raise IngestError("sample rate or channels change mid-stream")
                self.frames += frame.samples
                if self._max_frames is not None and self.frames > self._max_frames:
                    assert self.limits is not None
                    raise IngestError(self.limits.too_long())
                yield frame

    def _delivered(self, frame: av.AudioFrame) -> NDArray[np.float32]:
        pcm = frame_to_float(frame)
        return pcm if self._matrix is None else pcm @ self._matrix

    def pieces(self) -> Iterator[NDArray[np.float32]]:
        """Each decoded frame's PCM (codecs' frames: 1152 to 65535 samples)."""
        for frame in self._decoded():
            yield self._delivered(frame)

    def blocks(self, frames: int = BLOCK_FRAMES) -> Iterator[NDArray[np.float32]]:
        """The PCM in blocks of about ``frames`` (at most one codec frame more)."""
        held: list[NDArray[np.float32]] = []
        count = 0
        for piece in self.pieces():
            held.append(piece)
            count += piece.shape[0]
            if count >= frames:
                yield held[0] if len(held) == 1 else np.concatenate(held)
                held, count = [], 0
        if held:
            yield held[0] if len(held) == 1 else np.concatenate(held)

    def check(self) -> int:
        """Decode to the end keeping nothing; return the frames.

        Raises ``IngestError`` for a track over the limit, a format change, or
        samples that are NaN or infinite (only float formats can hold them).
        """
        for frame in self._decoded():
            if frame.format.name.rstrip("p") in _FLOAT_FORMATS and not _finite(
                self._delivered(frame)
            ):
                raise IngestError("decoded audio contains NaN or infinity")
        if not self.frames:
            raise IngestError("no audio could be decoded")
        return self.frames


def _finite(pcm: NDArray[np.float32]) -> bool:
    return bool(np.isfinite(np.sum(pcm, dtype=np.float64)))  # NaN and inf survive a sum


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    """PyAV's and the OS's errors as the file's one-line reason; memory stays MemoryError."""
    try:
        yield
    except MemoryError:
        raise
    except av.FFmpegError as exc:
        raise IngestError(f"cannot decode: {exc.strerror or exc}") from exc
    except OSError as exc:
        raise IngestError(f"cannot read: {exc.strerror or exc}") from exc


def decode(path: Path, limits: IngestLimits | None = None) -> Decoded:
    """The whole track in one array: for tests and the memory benchmark's baseline.

    Ingest itself streams (``PcmReader``): this holds 1.3 GB per hour of 44.1 kHz stereo.
    """
    with PcmReader(path, limits=limits) as reader:
        buffer = _Buffer(reader.estimated_frames(), reader.channels)
        for piece in reader.pieces():
            buffer.append(piece)
    if not buffer.frames:
        raise IngestError("no audio could be decoded")
    pcm = buffer.result()
    if not _finite(pcm):
        raise IngestError("decoded audio contains NaN or infinity")
    return Decoded(
        pcm=pcm, rate=reader.rate, source_channels=reader.source_channels, codec=reader.codec
    )
