"""The null sink: audio discarded in real time."""

from __future__ import annotations

from device.audio.sinks.base import PacedSink


class NullSink(PacedSink):
    """Discards the audio in real time: a speaker with no sound card still keeps time."""

    def __init__(self, rate: int, fast: bool = False, *, buffer_frames: int = 4096) -> None:
        super().__init__("null", rate, fast, buffer_frames)
