"""The sink's far end: a named pipe the speaker plays into (``--sink file:FIFO``), read by
a process of its own that timestamps every read.

The reader is a separate process so that nothing in the bench (its event loop, its
WebSocket clients) can hold up a read: each read is stamped with CLOCK_MONOTONIC as it
returns, and each 64-frame window's level is appended to a file of ``(ns, dB)``
records that the bench reads when it needs them.  Reads are as large as the pipe can
hold, so a read returns whatever the speaker has written (its writes of 2 KiB are
atomic); a window's time is that of the read holding its last frame.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import select
import struct
import time
from array import array
from multiprocessing.synchronize import Event
from pathlib import Path

from .common import BenchError
from .levels import WINDOW_BYTES, window_levels_db

RECORD = struct.Struct("<qd")  # arrival ns, level dB
READ_BYTES = 1 << 16  # a pipe's whole buffer


def _read_fifo(fifo: str, records: str, stop: Event, max_s: float) -> None:
    """The reader process: until ``stop`` (or ``max_s``), windows' levels to ``records``."""
    deadline = time.monotonic() + max_s
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # no writer yet: do not block
    pending = b""
    with open(records, "ab", buffering=0) as out:
        while not stop.is_set() and time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.1)
            if not ready:
                continue
            data = os.read(fd, READ_BYTES)
            at_ns = time.monotonic_ns()
            if not data:  # the writer closed: wait for it to open the pipe again
                os.close(fd)
                fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
                time.sleep(0.01)
                continue
            data = pending + data
            whole = len(data) - len(data) % WINDOW_BYTES
            pending = data[whole:]
            levels = window_levels_db(data[:whole])
            if levels:
                out.write(b"".join(RECORD.pack(at_ns, db) for db in levels))
    os.close(fd)


class SinkReader:
    """The FIFO, its reader process, and the windows read so far."""

    def __init__(self, root: Path, max_s: float) -> None:
        self.fifo = root / "sink.fifo"
        self.records = root / "sink-levels.bin"
        os.mkfifo(self.fifo)
        self.records.touch()
        ctx = multiprocessing.get_context("spawn")
        self._stop = ctx.Event()
        self._proc = ctx.Process(
            target=_read_fifo,
            args=(str(self.fifo), str(self.records), self._stop, max_s),
            name="sink-reader",
            daemon=True,
        )
        self._offset = 0
        self.at_ns: array[int] = array("q")
        self.level_db: array[float] = array("d")

    def start(self) -> None:
        self._proc.start()

    @property
    def sink_spec(self) -> str:
        return f"file:{self.fifo}"

    def check(self) -> None:
        if not self._proc.is_alive():
            raise BenchError(f"the sink's reader process ended (exit {self._proc.exitcode})")

    def poll(self) -> int:
        """Take in the windows read since the last poll; how many there are now."""
        with self.records.open("rb") as fh:
            fh.seek(self._offset)
            data = fh.read()
        whole = len(data) - len(data) % RECORD.size
        for at_ns, db in RECORD.iter_unpack(data[:whole]):
            self.at_ns.append(at_ns)
            self.level_db.append(db)
        self._offset += whole
        return len(self.at_ns)

    def recent_db(self, windows: int) -> list[float]:
        self.poll()
        return list(self.level_db[-windows:])

    def stop(self) -> None:
        self._stop.set()
        if self._proc.pid is None:  # never started
            return
        self._proc.join(5)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join()
        self.poll()
        with contextlib.suppress(OSError):
            self.fifo.unlink()
