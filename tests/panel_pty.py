"""A front panel played by a test on a pseudo-terminal.

The test holds the master end; the speaker is given ``path``, a symlink to the slave,
as it would be given ``/dev/ttyACM0``.  Unplugging closes the master (the speaker's
reads fail with EIO) and removes the symlink; plugging in again makes a new pty behind
the same path.
"""

from __future__ import annotations

import os
import select
import time
import tty
from collections.abc import Callable
from pathlib import Path

from hardware.panel.frames import TO_PANEL, FrameReader, Message, encode, encode_message


class PanelPty:
    def __init__(self, path: Path, *, plugged: bool = True) -> None:
        self.path = path
        self.master = -1
        self.slave = -1
        self.heard: list[Message] = []  # everything the speaker sent, in order
        self.reader = FrameReader(TO_PANEL)
        if plugged:
            self.plug()

    @property
    def plugged(self) -> bool:
        return self.master >= 0

    def plug(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)  # no line discipline: CR and LF pass as they are
        # the slave stays open here too, so the master never reads EIO before the
        # speaker opens its end
        self.path.symlink_to(os.ttyname(self.slave))
        self.reader = FrameReader(TO_PANEL)

    def unplug(self) -> None:
        self.path.unlink()
        os.close(self.master)
        os.close(self.slave)
        self.master = self.slave = -1

    def send(self, *items: Message | bytes | tuple[str, ...]) -> None:
        """Frames (messages, raw bytes, or fields) written to the speaker as one burst."""
        data = b"".join(
            item
            if isinstance(item, bytes)
            else encode(*item)
            if isinstance(item, tuple)
            else encode_message(item)
            for item in items
        )
        os.write(self.master, data)

    def wait_for(
        self, predicate: Callable[[list[Message]], bool], timeout_s: float, what: str
    ) -> list[Message]:
        """Read until ``predicate(heard)`` holds; fail after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while not predicate(self.heard):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"the panel did not hear {what}; heard {self.heard[-8:]}")
            self._read_some(min(left, 0.2))
        return self.heard

    def next_frames(self, n: int, timeout_s: float = 5.0) -> list[Message]:
        """The next ``n`` frames the speaker sends (after those already heard)."""
        start = len(self.heard)
        self.wait_for(lambda h: len(h) >= start + n, timeout_s, f"{n} more frame(s)")
        return self.heard[start : start + n]

    def _read_some(self, timeout_s: float) -> None:
        ready, _, _ = select.select([self.master], [], [], timeout_s)
        if ready:
            self.heard.extend(self.reader.feed(os.read(self.master, 4096)))

    def close(self) -> None:
        if self.plugged:
            self.unplug()
