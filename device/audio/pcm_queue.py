"""The decoded-audio buffer between the producer (fetch, decode, DSP) and the sink.

Chunks carry which play item they belong to (``gen``) and where in the track
they start, so the sink thread can report a position from frames actually
written and the producer can withdraw audio of an item that changed (a new
"next track") without touching what is already playing.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(slots=True)
class Chunk:
    gen: int  # the play item it belongs to
    uri: str
    start: int  # first frame's position in the track, at the sink rate
    pcm: NDArray[np.int16]  # (frames, 2) at the sink rate, normalised, before volume
    last: bool = False  # the item's final chunk: the track ends after it

    @property
    def frames(self) -> int:
        return int(self.pcm.shape[0])


class PcmQueue:
    def __init__(self) -> None:
        self.cond = threading.Condition()
        self._chunks: deque[Chunk] = deque()
        self._frames = 0

    @property
    def frames(self) -> int:
        return self._frames

    def put(self, chunk: Chunk) -> None:
        with self.cond:
            self._chunks.append(chunk)
            self._frames += chunk.frames
            self.cond.notify_all()

    def take(self, max_frames: int) -> Chunk | None:
        """Up to ``max_frames`` from the front chunk (the rest stays queued)."""
        with self.cond:
            if not self._chunks:
                return None
            head = self._chunks[0]
            if head.frames <= max_frames:
                self._chunks.popleft()
                self._frames -= head.frames
                self.cond.notify_all()
                return head
            piece = Chunk(head.gen, head.uri, head.start, head.pcm[:max_frames], last=False)
            head.pcm = head.pcm[max_frames:]
            head.start += max_frames
            self._frames -= max_frames
            self.cond.notify_all()
            return piece

    def peek(self) -> Chunk | None:
        """The front chunk, left queued (the sink thread aligns before it takes)."""
        with self.cond:
            return self._chunks[0] if self._chunks else None

    def has_end_of(self, gen: int) -> bool:
        with self.cond:
            return any(c.gen == gen and c.last for c in self._chunks)

    def drop(self, keep: set[int] | None = None) -> None:
        """Discard every chunk (or those of items not in ``keep``)."""
        with self.cond:
            if keep is None:
                self._chunks.clear()
            else:
                self._chunks = deque(c for c in self._chunks if c.gen in keep)
            self._frames = sum(c.frames for c in self._chunks)
            self.cond.notify_all()
