"""The file sink: raw S16LE stereo, byte-exact, paced to real time (``file:PATH``)."""

from __future__ import annotations

from pathlib import Path
from typing import IO

import numpy as np
from numpy.typing import NDArray

from device.audio.sinks.base import PacedSink, SinkError


class FileSink(PacedSink):
    """Raw S16LE stereo interleaved, byte-exact: what a card would have been sent.

    ``drop`` cannot take back bytes already in the file, so the file holds
    everything written, which keeps it deterministic for tests.
    """

    def __init__(
        self, path: Path, rate: int, fast: bool = False, *, buffer_frames: int = 4096
    ) -> None:
        super().__init__(f"file:{path}", rate, fast, buffer_frames)
        self.path = Path(path)
        self._file: IO[bytes] | None = None

    def _open_output(self) -> None:
        try:
            self._file = self.path.open("wb")
        except OSError as exc:
            raise SinkError(f"cannot write audio to {self.path}: {exc.strerror}") from exc

    def _write_output(self, pcm: NDArray[np.int16]) -> None:
        assert self._file is not None
        try:
            self._file.write(pcm.data)
            self._file.flush()  # what was "played" is in the file, for whoever reads it now
        except OSError as exc:
            raise SinkError(f"cannot write audio to {self.path}: {exc.strerror}") from exc

    def _close_output(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except OSError as exc:
                raise SinkError(f"cannot finish writing {self.path}: {exc.strerror}") from exc
            finally:
                self._file = None
