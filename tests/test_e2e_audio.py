"""Real audio from ingest to the sink: hub, broker and a native speaker as processes.

A continuous sweep is cut into tracks at frame positions that fall
mid-segment (one of them rendered at 48 kHz), ingested through the hub's own
pipeline, fetched by the speaker over signed URLs and played back to back
through the file sink and through ALSA's ``file`` PCM.  The raw output is then
checked numerically: every frame present, joins continuous.  A loopback proxy
between speaker and hub makes the network fail and come back.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from device.audio.dsp import resampled_length
from hub.ingest.pipeline import ingest_paths
from tests.audio_files import FileTags, write_audio
from tests.media_fixtures import sweep_span
from tests.system import Api, System, retained_state, wait_for
from tests.throttle_proxy import ThrottleProxy

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

RATE = 44100
#: (seconds, rate): cut points fall inside segments (2 s first, then 6 s)
PIECES = [(3.37, 44100), (4.71, 48000), (2.93, 44100), (3.11, 44100)]
TOTAL_S = sum(s for s, _ in PIECES)


def write_album(folder: Path) -> list[tuple[int, int]]:
    """FLAC files of one continuous sweep; returns (frames, rate) per track."""
    folder.mkdir(parents=True, exist_ok=True)
    out, at = [], 0.0
    for i, (seconds, rate) in enumerate(PIECES):
        frames = round(seconds * rate)
        pcm = sweep_span(at, frames, rate, f0=110, f1=880, total_s=TOTAL_S)
        tags = FileTags(
            title=f"Sweep {i + 1}", artist="Test Signals", album="Continuous Sweep", track=i + 1
        )
        write_audio(folder / f"{i + 1:02d}.flac", pcm, rate, tags)
        out.append((frames, rate))
        at += frames / rate
    return out


def expected_frames(pieces: list[tuple[int, int]]) -> list[int]:
    return [n if r == RATE else resampled_length(n, r, RATE) for n, r in pieces]


def read_raw(path: Path) -> NDArray[np.float32]:
    pcm: NDArray[np.float32] = np.fromfile(path, dtype="<i2").reshape(-1, 2).astype(np.float32)
    return pcm / np.float32(32768)


@pytest.fixture
def audio_system(tmp_path: Path) -> Iterator[tuple[System, list[tuple[int, int]]]]:
    sysm = System(tmp_path)
    pieces = write_album(tmp_path / "album")
    results = ingest_paths(sysm.db, sysm.data, [tmp_path / "album"], jobs=2)
    assert all(r.status == "added" for r in results), results
    for device in ("den", "a", "b"):
        sysm.provision(device, engine="native")
    try:  # started inside, so a start that fails still stops what did start
        sysm.start_broker()
        sysm.start_hub()
        yield sysm, pieces
    finally:
        sysm.stop()


def play_album(api: Api, device: str) -> None:
    with api.system.db.reading() as conn:
        album = conn.execute("SELECT album_id FROM tracks LIMIT 1").fetchone()[0]
    r = api.client.put(
        "/v1/me/player/play",
        params={"device_id": device},
        json={"context_uri": f"legato:album:{album}"},
    )
    assert r.status_code == 204, r.text


def finished(system: System, device: str) -> bool:
    """Back at the album's start, paused: the reducer's end of a context."""
    state: dict[str, Any] = retained_state(system, device)
    return not state["is_playing"] and state["revision"] > 1 and state["index"] == 0


def check_continuous(out: NDArray[np.float32], lengths: list[int], slack: float = 1.5) -> None:
    assert out.shape[0] == sum(lengths)  # every frame of every track, nothing inserted
    steps = np.abs(np.diff(out[:, 0]))
    typical = float(np.percentile(steps, 99.9))
    joins = np.cumsum(lengths)[:-1]
    for join in joins:
        assert steps[join - 64 : join + 64].max() <= typical * slack, f"click at {join}"


def test_an_album_plays_gapless_and_sample_exact_through_the_file_sink(
    audio_system: tuple[System, list[tuple[int, int]]], tmp_path: Path
) -> None:
    system, pieces = audio_system
    out = tmp_path / "out.raw"
    system.start_speaker(
        "den", "--sink", f"file:{out}", "--quality", "normal", "--normalisation", "off"
    )
    api = Api(system)
    try:
        api.wait_online("den")
        play_album(api, "den")
        wait_for(lambda: finished(system, "den"), 60, "the album to finish", system.logs)
    finally:
        api.close()
    check_continuous(read_raw(out), expected_frames(pieces))


def test_the_alsa_sink_is_byte_exact_through_alsa_libs_file_pcm(
    audio_system: tuple[System, list[tuple[int, int]]], tmp_path: Path
) -> None:
    system, pieces = audio_system
    via_file, via_alsa = tmp_path / "file.raw", tmp_path / "alsa.raw"
    common = ("--quality", "high", "--normalisation", "off", "--as-fast-as-possible")
    system.start_speaker("a", "--sink", f"file:{via_file}", *common)
    system.start_speaker("b", "--sink", f"alsa:file:FILE={via_alsa},FORMAT=raw", *common)
    api = Api(system)
    try:
        api.wait_online("a", "b")
        play_album(api, "a")
        play_album(api, "b")
        wait_for(lambda: finished(system, "a") and finished(system, "b"), 60, "both", system.logs)
    finally:
        api.close()
    for device in ("a", "b"):  # closing drains what alsa-lib still holds (one buffer)
        assert system.speakers[device].stop() == 0
    alsa_bytes, file_bytes = via_alsa.read_bytes(), via_file.read_bytes()
    assert len(alsa_bytes) == len(file_bytes)
    assert alsa_bytes == file_bytes
    check_continuous(read_raw(via_alsa), expected_frames(pieces))


def test_a_failing_network_is_retried_and_playback_starts_when_it_returns(
    audio_system: tuple[System, list[tuple[int, int]]], tmp_path: Path
) -> None:
    system, pieces = audio_system
    out = tmp_path / "out.raw"
    proxy = ThrottleProxy("127.0.0.1", system.hub_port).start()
    try:
        proxy.fail(True)  # the speaker's media path is down; control (MQTT) is up
        system.start_speaker(
            "den",
            *("--hub", proxy.url, "--sink", f"file:{out}", "--quality", "normal"),
            *("--normalisation", "off", "--as-fast-as-possible"),
        )
        api = Api(system)
        try:
            api.wait_online("den")
            play_album(api, "den")
            wait_for(lambda: "retrying" in (system.root / "den.log").read_text(), 20, "retries")
            assert not out.exists() or out.stat().st_size == 0
            proxy.fail(False)
            proxy.throttle(2_000_000)
            wait_for(lambda: finished(system, "den"), 60, "the album to finish", system.logs)
        finally:
            api.close()
    finally:
        proxy.stop()
    check_continuous(read_raw(out), expected_frames(pieces))


def test_a_slow_and_stalling_link_changes_quality_but_never_the_audio(
    audio_system: tuple[System, list[tuple[int, int]]], tmp_path: Path
) -> None:
    """Through a 120 kbit/s link that also stalls for a while, with the quality left to
    the ABR: whatever quality each segment arrives in, every frame is played once."""
    system, pieces = audio_system
    out = tmp_path / "out.raw"
    proxy = ThrottleProxy("127.0.0.1", system.hub_port).start()
    try:
        proxy.throttle(120_000)  # carries low (~30 kbit/s) but not normal with margin
        system.start_speaker(
            "den",
            *("--hub", proxy.url, "--sink", f"file:{out}", "--quality", "auto"),
            *("--normalisation", "off", "--as-fast-as-possible"),
        )
        api = Api(system)
        try:
            api.wait_online("den")
            play_album(api, "den")
            wait_for(lambda: out.exists() and out.stat().st_size > 0, 20, "first audio")
            proxy.stall(True)
            log = system.root / "den.log"
            wait_for(lambda: "underrun" in log.read_text(), 20, "an underrun", system.logs)
            proxy.stall(False)
            wait_for(lambda: finished(system, "den"), 90, "the album to finish", system.logs)
        finally:
            api.close()
    finally:
        proxy.stop()
    assert "quality normal -> low" in log.read_text()  # the ABR dropped on the slow link
    # exact in length; at the joins of low-rate renditions each track's resampler starts
    # and ends on its own, which leaves a small edge (far from the jump of a gap)
    check_continuous(read_raw(out), expected_frames(pieces), slack=4.0)
