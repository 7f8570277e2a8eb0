"""A loopback TCP proxy that shapes the network between a speaker and its hub.

Tests and the bandwidth benchmark put it between the engine and the hub's
HTTP port to get a slow link (a token bucket on the download direction), a
stall (bytes held, connections kept open, as when Wi-Fi drops) or failures
(connections reset).  It runs its own event loop in a thread so synchronous
tests can change the link while a speaker plays.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from dataclasses import dataclass


@dataclass
class Link:
    rate_bps: float | None = None  # None: unlimited
    stalled: bool = False  # hold every byte until cleared
    failing: bool = False  # reset connections (and refuse new ones)
    bytes_down: int = 0


class ThrottleProxy:
    def __init__(self, upstream_host: str, upstream_port: int, *, chunk: int = 4096) -> None:
        self.link = Link()
        self._upstream = (upstream_host, upstream_port)
        self._chunk = chunk
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="proxy", daemon=True)
        self._writers: set[asyncio.StreamWriter] = set()
        self._bucket_time = time.monotonic()
        self._bucket = 0.0
        self.port = 0

    def start(self) -> ThrottleProxy:
        self._thread.start()
        fut = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        fut.result(5)
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def throttle(self, rate_bps: float | None) -> None:
        """Limit the download direction to ``rate_bps`` bits per second (None: unlimited)."""
        self.link.rate_bps = rate_bps

    def stall(self, on: bool) -> None:
        """Hold every byte (connections stay open) until called with False."""
        self.link.stalled = on

    def fail(self, on: bool) -> None:
        """Reset every connection and refuse new ones until called with False."""
        self.link.failing = on
        if on:
            self._loop.call_soon_threadsafe(self._reset_all)

    def stop(self) -> None:
        fut = asyncio.run_coroutine_threadsafe(self._stop(), self._loop)
        with contextlib.suppress(Exception):
            fut.result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
        self._reset_all()
        if self._server is not None:
            await self._server.wait_closed()

    def _reset_all(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.link.failing:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._upstream)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        try:
            await asyncio.gather(
                self._pump(reader, up_writer, shaped=False),
                self._pump(up_reader, writer, shaped=True),
            )
        finally:
            for w in (writer, up_writer):
                self._writers.discard(w)
                w.transport.abort()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, shaped: bool
    ) -> None:
        try:
            while True:
                data = await reader.read(self._chunk)
                if not data:
                    with contextlib.suppress(OSError):
                        writer.write_eof()
                    return
                while self.link.stalled and not self.link.failing:  # noqa: ASYNC110 - polled flag
                    await asyncio.sleep(0.02)
                if shaped:
                    await self._spend(len(data))
                    self.link.bytes_down += len(data)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            writer.transport.abort()

    async def _spend(self, nbytes: int) -> None:
        """Token bucket (one link): pass ``nbytes`` once earlier sends are paid for.

        The balance may go into debt by one chunk; the next chunk waits until the
        debt is repaid at the link's rate, so the average is exactly the rate.
        """
        while True:
            rate = self.link.rate_bps
            if rate is None:
                return
            now = time.monotonic()
            burst = rate / 8 * 0.05  # at most 50 ms of credit saved up
            self._bucket = min(burst, self._bucket + (now - self._bucket_time) * rate / 8)
            self._bucket_time = now
            if self._bucket >= 0:
                self._bucket -= nbytes
                return
            await asyncio.sleep(max(0.002, -self._bucket / (rate / 8)))
