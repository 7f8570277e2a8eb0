"""A progress bar on stderr for long work (decompressing, writing a card): redrawn at
most ten times a second on a terminal, one line at the start and end otherwise."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


class Progress:
    def __init__(self, label: str, total: int, stream: TextIO | None = None) -> None:
        self.label = label
        self.total = max(1, total)
        self.done = 0
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.started = time.monotonic()
        self._drawn = 0.0
        if not self.tty:
            print(f"{label}: {_size(total)}…", file=self.stream, flush=True)

    def update(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if self.tty and now - self._drawn >= 0.1:
            self._drawn = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        share = min(1.0, self.done / self.total)
        bar = "#" * int(share * 30)
        rate = self.done / max(1e-6, now - self.started)
        line = (
            f"\r{self.label} [{bar:<30}] {share:4.0%} "
            f"{_size(self.done)}/{_size(self.total)} {_size(rate)}/s"
        )
        print(line, end="", file=self.stream, flush=True)

    def close(self) -> None:
        elapsed = time.monotonic() - self.started
        if self.tty:
            self._draw(time.monotonic())
            print(file=self.stream)
        print(f"{self.label}: done in {elapsed:.1f} s", file=self.stream, flush=True)
