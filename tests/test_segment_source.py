"""The speaker's HTTP segment source on a real socket, through a throttled link."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator

import pytest

from connect_protocol.media import Loudness, Manifest, Quality, Rendition, Segment
from device.audio.source import HubMedia, Throughput, TooSlowError
from tests.throttle_proxy import ThrottleProxy

BLOB = bytes(range(256)) * 400  # 100 KB


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(BLOB)))
        self.end_headers()
        self.wfile.write(BLOB)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[http.server.ThreadingHTTPServer]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def manifest() -> Manifest:
    seg = Segment(frames=44100 * 6, bytes=len(BLOB), url="/seg.ogg")
    rendition = Rendition(
        quality="very_high",
        sample_rate=44100,
        channels=2,
        bitrate=320_000,
        frames=seg.frames,
        segments=(seg,),
    )
    return Manifest(
        track_id="t" * 22,
        uri="legato:track:" + "t" * 22,
        album_id="a",
        frames=seg.frames,
        sample_rate=44100,
        channels=2,
        duration_ms=6000,
        loudness=Loudness(track_lufs=-14, track_peak_dbtp=-1, album_lufs=-14, album_peak_dbtp=-1),
        boundaries=(0, seg.frames),
        renditions=(rendition,),
        expires_ms=2**52,
    )


def test_a_fetch_that_cannot_beat_the_buffer_is_abandoned_and_the_estimate_collapses(
    server: http.server.ThreadingHTTPServer,
) -> None:
    proxy = ThrottleProxy("127.0.0.1", server.server_address[1]).start()
    source = HubMedia(proxy.url, "speaker", "secret")
    try:
        assert source.segment(manifest(), Quality.VERY_HIGH, 0) == BLOB  # fast link
        fast = source.throughput_bps()
        assert fast is not None
        assert fast > 2_000_000
        proxy.throttle(200_000)  # 100 KB now takes 4 s
        started = time.monotonic()
        with pytest.raises(TooSlowError):
            source.segment(manifest(), Quality.VERY_HIGH, 0, deadline_s=1.5)
        assert time.monotonic() - started < 1.5  # gave up early, not at the deadline
        slow = source.throughput_bps()
        assert slow is not None
        assert slow < 400_000  # the ABR sees the collapse at once
    finally:
        source.close()
        proxy.stop()


def test_throughput_takes_the_lower_of_a_fast_and_a_slow_average() -> None:
    t = Throughput()
    for _ in range(20):
        t.add(250_000, 1.0)  # 2 Mbit/s, steady
    assert t.bps == pytest.approx(2_000_000)
    t.add(6_000, 1.0)  # one second at 48 kbit/s
    dropped = t.bps
    assert dropped is not None
    assert dropped < 1_700_000  # falls at once (the fast average)
    for _ in range(3):
        t.add(250_000, 1.0)  # the link is back
    recovered = t.bps
    assert recovered is not None
    assert dropped < recovered < 2_000_000  # rises only as the slow average allows


class _CountingHandler(http.server.BaseHTTPRequestHandler):
    """Keeps connections alive (HTTP/1.1) and counts them; ``close_every`` closes some."""

    protocol_version = "HTTP/1.1"
    connections = 0
    requests = 0
    close_every = 0
    silent = False  # close without saying so (as a server timing out an idle connection)

    def setup(self) -> None:
        super().setup()
        type(self).connections += 1

    def do_GET(self) -> None:
        cls = type(self)
        cls.requests += 1
        closing = bool(cls.close_every) and cls.requests % cls.close_every == 0
        self.send_response(200)
        self.send_header("Content-Length", str(len(BLOB)))
        if closing and not cls.silent:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(BLOB)
        if closing:
            self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def counting() -> Iterator[tuple[http.server.ThreadingHTTPServer, type[_CountingHandler]]]:
    handler = type("Handler", (_CountingHandler,), {})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd, handler
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def test_segments_are_fetched_over_one_kept_alive_connection(
    counting: tuple[http.server.ThreadingHTTPServer, type[_CountingHandler]],
) -> None:
    httpd, handler = counting
    source = HubMedia(f"http://127.0.0.1:{httpd.server_address[1]}", "speaker", "secret")
    try:
        for _ in range(5):
            assert source.segment(manifest(), Quality.VERY_HIGH, 0) == BLOB
    finally:
        source.close()
    assert handler.requests == 5
    assert handler.connections == 1


@pytest.mark.parametrize("silent", [False, True], ids=["announced", "silent"])
def test_a_connection_the_hub_closed_is_replaced_without_an_error(
    counting: tuple[http.server.ThreadingHTTPServer, type[_CountingHandler]], silent: bool
) -> None:
    """Servers close idle keep-alive connections (uvicorn after 5 s): the next fetch
    opens a new one instead of failing."""
    httpd, handler = counting
    handler.close_every = 2
    handler.silent = silent
    source = HubMedia(f"http://127.0.0.1:{httpd.server_address[1]}", "speaker", "secret")
    try:
        for _ in range(6):
            assert source.segment(manifest(), Quality.VERY_HIGH, 0) == BLOB
            time.sleep(0.02)  # let a silent close reach the client first
    finally:
        source.close()
    assert handler.requests == 6
    assert handler.connections == 3
