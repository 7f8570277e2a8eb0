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
