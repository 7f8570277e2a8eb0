"""The front panel's serial port: the I/O around ``FrameReader`` and ``PanelSession``.

Two threads, so that nothing here ever blocks the speaker's event loop:

- the reader opens the port (waiting for it, with back-off, if it is not there),
  feeds what it reads to the ``FrameReader``, hands control events to ``submit`` and
  queues the session's replies; when the port goes away (the panel unplugged: a read
  fails) it lets every held button go (``release_all``), closes, and opens the same
  path again until the panel is back;
- the writer sends queued frames, each write bounded by ``write_timeout_s``.

``show`` (called on the loop) only updates the session and queues frames.  ``submit``
and ``release_all`` are called from the reader thread and must be safe there.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
from collections.abc import Callable
from typing import Any

import serial

from connect_protocol.backoff import Backoff
from hardware.controls.keymap import ControlEvent
from hardware.controls.status import View
from hardware.panel.frames import (
    Button,
    DropReason,
    Encoder,
    FrameReader,
    Hello,
    Ping,
    ToPanel,
    encode_message,
)
from hardware.panel.session import PanelSession

logger = logging.getLogger(__name__)

#: Between attempts to open a missing port: 0.5-1 s (half-jitter on 1 s).
REOPEN_BACKOFF = Backoff(initial_s=1.0, maximum_s=1.0)
#: Frames waiting for the writer; beyond this the panel is not reading (what is lost is
#: sent again with the next change: the session forgets what it told).
MAX_QUEUED_FRAMES = 64
#: Most bytes taken from the port per read (a burst is fed in pieces this big).
READ_CHUNK_BYTES = 4096

_STOP = (-1, b"")  # the writer's sentinel


class PanelLink:
    """A front panel on ``port``: a ``ControlDevice`` (see ``device.control_devices``)."""

    name = "panel"

    def __init__(
        self,
        port: str,
        baud: int,
        *,
        submit: Callable[[ControlEvent], None],
        release_all: Callable[[], None],
        read_timeout_s: float = 0.1,
        write_timeout_s: float = 1.0,
        backoff: Backoff = REOPEN_BACKOFF,
    ) -> None:
        self.port = port
        self.baud = baud
        self._submit = submit
        self._release_all = release_all
        self._read_timeout_s = read_timeout_s
        self._write_timeout_s = write_timeout_s
        self._backoff = backoff
        self._lock = threading.Lock()  # the session, the reader's counts, the open port
        self._port_lock = threading.Lock()  # a write and the port's close never overlap
        self._session = PanelSession()
        self._reader = FrameReader()
        self._serial: serial.Serial | None = None
        # (connection number, frame): a frame meant for a connection that has gone is not sent
        self._outbox: queue.Queue[tuple[int, bytes]] = queue.Queue(MAX_QUEUED_FRAMES)
        self._stopping = threading.Event()
        self._logged: set[DropReason] = set()
        self.opens = 0
        self.frames_sent = 0
        self.frames_unsent = 0  # queue full, or the write failed or timed out
        self._threads = [
            threading.Thread(target=self._read_loop, name="panel-reader", daemon=True),
            threading.Thread(target=self._write_loop, name="panel-writer", daemon=True),
        ]

    def start(self) -> PanelLink:
        for t in self._threads:
            t.start()
        return self

    # --- the ControlDevice interface (called on the loop) ---------------------------------

    def show(self, view: View) -> None:
        """Never blocks: the frames for what changed are queued for the writer."""
        with self._lock:
            self._queue(self._session.show(view))

    def diagnostics(self) -> dict[str, Any]:
        with self._lock:
            hello = self._session.hello
            return {
                "port": self.port,
                "baud": self.baud,
                "connected": self._serial is not None,
                "firmware": hello.firmware if hello is not None else None,
                "frames_received": self._reader.received,
                "dropped": {r.value: n for r, n in self._reader.dropped.items()},
                "frames_sent": self.frames_sent,
                "frames_unsent": self.frames_unsent,
                "reopens": max(0, self.opens - 1),
            }

    def close(self, timeout_s: float = 2.0) -> None:
        """Stop both threads (each within ``timeout_s``) and close the port."""
        self._stopping.set()
        self._put(_STOP)
        for t in self._threads:
            if t.is_alive():
                t.join(timeout_s)
            if t.is_alive():
                logger.warning("panel: thread %s did not stop within %.1f s", t.name, timeout_s)

    # --- the reader thread ----------------------------------------------------------------

    def _read_loop(self) -> None:
        attempt = 0
        quiet = False  # this outage is logged already
        while not self._stopping.is_set():
            port = self._open(quiet=quiet)
            if port is None:
                quiet = True
                self._stopping.wait(self._backoff.delay_s(attempt, random.random()))
                attempt += 1
                continue
            attempt = 0
            try:
                self._pump(port)
            finally:
                self._disconnected(port)
            quiet = True  # "went away" said it

    def _open(self, *, quiet: bool) -> serial.Serial | None:
        """The port, open; ``None`` (logged once per outage, not per try) if it is not there."""
        try:
            port = serial.Serial(
                self.port,
                self.baud,
                timeout=self._read_timeout_s,
                write_timeout=self._write_timeout_s,
            )
        except (serial.SerialException, OSError, ValueError) as exc:
            if not quiet:
                logger.warning("panel: %s not available (%s); waiting for it", self.port, exc)
            return None
        with self._lock:
            self._serial = port
            self._session.connected()
            self.opens += 1
            again = self.opens > 1
        logger.info("panel: %s %s; waiting for it to speak", self.port, "back" if again else "open")
        return port

    def _pump(self, port: serial.Serial) -> None:
        """Read and apply frames until the port goes away or the link closes."""
        while not self._stopping.is_set():
            try:
                data = port.read(1)  # returns at the first byte, or after the read timeout
                if data and port.in_waiting:
                    data += port.read(min(port.in_waiting, READ_CHUNK_BYTES))
            except (serial.SerialException, OSError) as exc:
                logger.warning("panel: %s went away (%s); reopening it when back", self.port, exc)
                return
            if data:
                self._received(data)

    def _received(self, data: bytes) -> None:
        with self._lock:
            messages = self._reader.feed(data)
            events: list[ControlEvent] = []
            for message in messages:
                if not isinstance(message, Hello | Button | Encoder | Ping):
                    continue  # the reader parses only the panel's messages
                reaction = self._session.receive(message)
                events.extend(reaction.events)
                self._queue(reaction.replies)
            hello = self._session.hello
        self._log_new_drops()
        if hello is not None and any(m is hello for m in messages):
            logger.info("panel: HELLO from firmware %s", hello.firmware)
        for event in events:
            self._call(self._submit, event)

    def _log_new_drops(self) -> None:
        """Each reason's first drop in words, once; later ones only counted."""
        for reason, detail in list(self._reader.first_drop.items()):
            if reason not in self._logged:
                self._logged.add(reason)
                logger.warning("panel: dropped a frame (%s): %s", reason.value, detail)

    def _disconnected(self, port: serial.Serial) -> None:
        with self._lock:
            self._serial = None
        try:
            with self._port_lock:
                port.close()
        except (serial.SerialException, OSError) as exc:
            logger.debug("panel: closing %s: %s", self.port, exc)
        if not self._stopping.is_set():
            self._call(self._release_all)

    def _call(self, callback: Callable[..., None], *args: Any) -> None:
        """A callback's failure is logged; it never ends the reader."""
        try:
            callback(*args)
        except Exception:
            logger.exception("panel: %r failed", callback)

    # --- the writer thread ----------------------------------------------------------------

    def _queue(self, messages: tuple[ToPanel, ...]) -> None:
        """With the lock held: queue frames in the session's order, or note they are lost."""
        if self._serial is None:
            return  # nobody to tell: a new connection starts from nothing told
        for message in messages:
            if not self._put((self.opens, encode_message(message))):
                self.frames_unsent += 1
                self._session.forget()

    def _put(self, frame: tuple[int, bytes]) -> bool:
        try:
            self._outbox.put_nowait(frame)
        except queue.Full:
            return False
        return True

    def _write_loop(self) -> None:
        while True:
            connection, frame = self._outbox.get()
            if connection == _STOP[0] or self._stopping.is_set():
                return
            with self._lock:
                port = self._serial if connection == self.opens else None
            if port is None:
                continue
            try:
                with self._port_lock:
                    port.write(frame)  # on a closed port: PortNotOpenError
                sent = True
            except (serial.SerialException, OSError) as exc:  # incl. SerialTimeoutException
                logger.debug("panel: write to %s failed: %s", self.port, exc)
                sent = False
            with self._lock:
                if sent:
                    self.frames_sent += 1
                else:
                    self.frames_unsent += 1
