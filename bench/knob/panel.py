"""The front panel as the speaker sees it: a pseudo-terminal, and the panel's wire format.

The frames are written here from the issue's definition (``$`` + payload + ``*`` + two
upper-case hex digits of the XOR of the payload's bytes + CR LF), not with the speaker's
own codec: the bench speaks to the speaker as any panel firmware would.  A thread drains
what the speaker sends back (``STATE``, ``VOL``, ``LED``, ``PONG``) and keeps each frame
with the time it was read, so the volume the panel would show is checked too.

``raw_latency`` is the floor under the panel's figures: a frame written to a
pseudo-terminal and read back by a plain blocking reader in another process, with no
speaker in the path.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import select
import threading
import time
import tty
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from .common import BenchError, now_ns

MAX_FRAME_BYTES = 82


def frame(payload: str) -> bytes:
    """One frame of the panel protocol around ``payload`` (ASCII)."""
    body = payload.encode("ascii")
    checksum = 0
    for byte in body:
        checksum ^= byte
    out = b"$" + body + b"*" + f"{checksum:02X}".encode() + b"\r\n"
    if len(out) > MAX_FRAME_BYTES:
        raise ValueError(f"frame over {MAX_FRAME_BYTES} bytes: {payload!r}")
    return out


def parse(line: bytes) -> str | None:
    """The payload of a well-formed frame (without CR LF), else None."""
    start = line.rfind(b"$")
    if start < 0 or len(line) - start < 4 or line[-3:-2] != b"*":
        return None
    body = line[start + 1 : -3]
    checksum = 0
    for byte in body:
        checksum ^= byte
    if f"{checksum:02X}".encode() != line[-2:]:
        return None
    return body.decode("ascii", "replace")


@dataclass(frozen=True, slots=True)
class Received:
    at_ns: int
    payload: str


class PanelPty:
    """A pseudo-terminal pair: the speaker opens ``port``; the bench is the panel."""

    def __init__(self) -> None:
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo, no line editing: bytes as a UART carries them
        self.port = os.ttyname(self._slave)
        self.received: list[Received] = []
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drain, name="panel-reader", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def send(self, payload: str) -> int:
        """Write one frame; the time just before the write (ns)."""
        data = frame(payload)
        at_ns = now_ns()
        written = os.write(self.master, data)
        if written != len(data):
            raise BenchError(f"the pseudo-terminal took {written} of {len(data)} bytes")
        self.sent += 1
        return at_ns

    def volumes(self) -> list[int]:
        """The volumes the speaker told the panel, in order."""
        out = []
        for r in list(self.received):
            kind, _, value = r.payload.partition(",")
            if kind == "VOL" and value.isdigit():
                out.append(int(value))
        return out

    def _drain(self) -> None:
        """Read what the speaker sends, so its writes never block on a full terminal."""
        buffer = b""
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if not ready:
                continue
            try:
                data = os.read(self.master, 4096)
            except OSError:  # no process has the port open just now
                time.sleep(0.05)
                continue
            at_ns = now_ns()
            buffer += data
            *lines, buffer = buffer.split(b"\n")
            buffer = buffer[-MAX_FRAME_BYTES * 4 :]  # garbage without a newline stays small
            for line in lines:
                payload = parse(line.rstrip(b"\r"))
                if payload is not None:
                    self.received.append(Received(at_ns, payload))

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(2)
        for fd in (self.master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)


def _read_lines(port: str, conn: Connection, count: int, max_s: float) -> None:
    """The plain reader: ``count`` lines from ``port``, each with the time it was read."""
    fd = os.open(port, os.O_RDONLY | os.O_NOCTTY)
    tty.setraw(fd)
    deadline = time.monotonic() + max_s
    seen: list[int] = []
    buffer = b""
    conn.send("ready")
    while len(seen) < count and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if not ready:
            continue
        data = os.read(fd, 4096)
        at_ns = time.monotonic_ns()
        buffer += data
        lines = buffer.count(b"\n")
        buffer = buffer[buffer.rfind(b"\n") + 1 :]
        seen.extend([at_ns] * lines)
    os.close(fd)
    conn.send(seen)


def raw_latency(count: int, gap_s: float) -> list[int]:
    """Write ``count`` frames to a fresh pseudo-terminal, ``gap_s`` apart; the ns each
    took to reach a plain reader in another process."""
    master, slave = os.openpty()
    tty.setraw(slave)
    ctx = multiprocessing.get_context("spawn")
    ours, theirs = ctx.Pipe()
    proc = ctx.Process(
        target=_read_lines, args=(os.ttyname(slave), theirs, count, 60 + count * gap_s * 2)
    )
    sent: list[int] = []
    try:
        proc.start()
        if not ours.poll(30) or ours.recv() != "ready":
            raise BenchError("the plain pseudo-terminal reader did not start")
        for k in range(count):
            data = frame(f"ENC,{'+1' if k % 2 == 0 else '-1'}")
            sent.append(now_ns())
            os.write(master, data)
            time.sleep(gap_s)
        if not ours.poll(30):
            raise BenchError("the plain pseudo-terminal reader did not answer")
        seen: Any = ours.recv()
    finally:
        proc.join(5)
        if proc.is_alive():
            proc.kill()
        for fd in (master, slave):
            with contextlib.suppress(OSError):
                os.close(fd)
    if len(seen) != count:
        raise BenchError(f"the plain reader saw {len(seen)} of {count} frames")
    return [b - a for a, b in zip(sent, seen, strict=True)]
