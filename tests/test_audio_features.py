"""Audio features measured at ingest: synthesized signals with known answers, the
demo music (composed with a known tempo and key), and a file through ``legato-hub ingest``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from numpy.typing import NDArray

from hub.context import hub_database
from hub.demo_music import catalog_extras
from hub.demo_music.library import DEMO_LIBRARY, render_demo_library, render_pcm
from hub.ingest import ingest_paths
from hub.ingest.features import FeatureMeter, Measured, estimates, find_key, key_correlations
from hub.media import store
from tests.audio_files import FileTags, write_audio
from tests.system import System, child_env

HUB = str(Path(sys.executable).parent / "legato-hub")
RATE = 44_100
Pcm = NDArray[np.float32]


# --- signals -----------------------------------------------------------------------


def _kick(rate: int) -> NDArray[np.float64]:
    t = np.arange(int(0.08 * rate)) / rate
    sweep = np.sin(2 * np.pi * 60 * t * (1 + 2 * np.exp(-t * 30)))  # a pitch falling fast
    return np.asarray(sweep * np.exp(-t * 25), dtype=np.float64)


def _hat(rate: int) -> NDArray[np.float64]:
    n = int(0.03 * rate)
    noise = np.random.default_rng(0).standard_normal(n)
    return 0.3 * noise * np.exp(-np.arange(n) / rate * 120)


def drums(bpm: float, seconds: float, rate: int = RATE, *, bar: int = 4) -> NDArray[np.float64]:
    """A kick on each bar's first beat, a softer hit on the others, a hi-hat between beats."""
    out = np.zeros(int(seconds * rate))
    kick, hat = _kick(rate), _hat(rate)
    beat_s = 60.0 / bpm
    for n in range(int(seconds / beat_s)):
        start = int(n * beat_s * rate)
        sound = kick if n % bar == 0 else 0.6 * kick[: len(kick) // 4] + 2 * hat[: len(kick) // 4]
        end = min(start + len(sound), len(out))
        out[start:end] += sound[: end - start]
        off = int((n + 0.5) * beat_s * rate)
        end = min(off + len(hat), len(out))
        out[off:end] += hat[: end - off]
    return out


def chords(
    tonic: int, minor: bool, bar_s: float, bars: int, rate: int = RATE
) -> NDArray[np.float64]:
    """I-IV-V-I (i-iv-V-i in minor, with the leading note), as tones of five partials."""
    third = 3 if minor else 4
    progression = [(0, third, 7), (5, 5 + third, 12), (7, 11, 14), (0, third, 7)]
    t = np.arange(int(bar_s * rate)) / rate
    out = []
    for n in range(bars):
        chord = progression[n % 4]
        x = np.zeros_like(t)
        for semitones in (*chord, chord[0] - 12):
            freq = 220.0 * 2 ** ((tonic - 9 + semitones) / 12)
            for k in range(1, 6):
                x += np.sin(2 * np.pi * freq * k * t) / k
        out.append(x * np.exp(-t * 0.8))
    return np.concatenate(out)


def mix(*signals: NDArray[np.float64]) -> NDArray[np.float64]:
    """Signals added, cut to the shortest."""
    frames = min(len(x) for x in signals)
    return np.asarray(np.sum([x[:frames] for x in signals], axis=0), dtype=np.float64)


def stereo(x: NDArray[np.float64], peak: float = 0.5) -> Pcm:
    x = peak * x / np.abs(x).max()
    return np.repeat(x[:, None], 2, axis=1).astype(np.float32)


def measure(pcm: Pcm, rate: int = RATE, block: int = 48_000) -> Measured:
    meter = FeatureMeter(rate, pcm.shape[1])
    for start in range(0, len(pcm), block):
        meter.feed(pcm[start : start + block])
    return meter.measured()


NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


# --- tempo and metre ---------------------------------------------------------------


@pytest.mark.parametrize("bpm", [90.0, 128.0])
def test_tempo_of_a_drum_track(bpm: float) -> None:
    found = measure(stereo(drums(bpm, 30.0)))
    assert abs(found.tempo - bpm) <= 2.0
    assert found.time_signature == 4


def test_a_waltz_counts_three() -> None:
    assert measure(stereo(drums(120.0, 30.0, bar=3))).time_signature == 3


def test_silence_has_no_tempo_and_no_key() -> None:
    found = measure(np.zeros((RATE * 5, 2), dtype=np.float32))
    assert (found.tempo, found.key) == (0.0, -1)


# --- key -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tonic", "minor"), [(0, False), (9, True), (6, False), (3, True)], ids=["C", "Am", "F#", "Ebm"]
)
def test_key_and_mode_of_a_chord_progression(tonic: int, minor: bool) -> None:
    found = measure(stereo(chords(tonic, minor, 2.0, 16)))
    assert (NAMES[found.key], found.mode) == (NAMES[tonic], 0 if minor else 1)


@given(st.lists(st.floats(0.0, 10.0), min_size=12, max_size=12), st.integers(0, 11))
def test_transposing_a_chroma_transposes_its_key(chroma: list[float], shift: int) -> None:
    profile = np.array(chroma)
    ranked = np.sort(key_correlations(profile), axis=None)
    assume(ranked[-1] - ranked[-2] > 1e-6)  # one best key, not a tie broken by position
    key, mode, strength = find_key(profile)
    moved = find_key(np.roll(profile, shift))
    assert moved[:2] == ((key + shift) % 12, mode)
    assert moved[2] == pytest.approx(strength, abs=1e-3)


def test_a_flat_chroma_has_no_key() -> None:
    assert find_key(np.full(12, 3.0))[0] == -1
    assert find_key(np.zeros(12))[0] == -1


# --- level and spectrum ----------------------------------------------------------------


def test_a_louder_copy_is_louder_and_more_energetic() -> None:
    music = mix(drums(110.0, 10.0), 0.3 * chords(7, False, 2.0, 5))
    quiet = FeatureMeter(RATE, 2)
    loud = FeatureMeter(RATE, 2)
    quiet.feed(stereo(music, 0.05))
    loud.feed(stereo(music, 0.8))
    soft, strong = quiet.result(), loud.result()
    assert strong.loudness == pytest.approx(soft.loudness + 20 * np.log10(16), abs=0.1)
    assert strong.energy > soft.energy


def test_white_noise_is_flat_and_a_sine_is_not() -> None:
    noise = np.random.default_rng(1).standard_normal(RATE * 5)
    sine = np.sin(2 * np.pi * 440.0 * np.arange(RATE * 5) / RATE)
    assert measure(stereo(noise)).flatness > 0.95
    assert measure(stereo(sine)).flatness < 0.01


def test_a_brighter_tone_has_a_higher_centroid_and_roll_off() -> None:
    t = np.arange(RATE * 5) / RATE
    dull = np.sum([np.sin(2 * np.pi * 220.0 * k * t) / k**2 for k in range(1, 4)], axis=0)
    bright = np.sum([np.sin(2 * np.pi * 220.0 * k * t) / k for k in range(1, 25)], axis=0)
    a, b = measure(stereo(dull)), measure(stereo(bright))
    assert 220 < a.centroid < b.centroid
    assert a.rolloff < b.rolloff


@given(
    st.builds(
        Measured,
        tempo=st.floats(0.0, 200.0),
        pulse=st.floats(0.0, 1.0),
        key=st.integers(-1, 11),
        mode=st.integers(0, 1),
        key_strength=st.floats(-1.0, 1.0),
        time_signature=st.sampled_from([3, 4]),
        loudness=st.floats(-70.0, 0.0),
        centroid=st.floats(0.0, 12_000.0),
        flatness=st.floats(0.0, 1.0),
        rolloff=st.floats(0.0, 12_000.0),
    )
)
def test_estimates_stay_between_0_and_1(measured: Measured) -> None:
    found = estimates(measured)
    for name in ("energy", "danceability", "valence", "acousticness", "instrumentalness"):
        assert 0.0 <= getattr(found, name) <= 1.0, name
    assert 0.0 <= found.speechiness <= 1.0
    assert 0.0 <= found.liveness <= 1.0


# --- streaming ---------------------------------------------------------------------------


def test_the_blocks_do_not_change_the_answer() -> None:
    pcm = stereo(mix(drums(100.0, 12.0), 0.3 * chords(2, True, 2.4, 5)))
    whole = measure(pcm, block=len(pcm))
    pieces = measure(pcm, block=1_237)
    assert pieces.tempo == pytest.approx(whole.tempo, abs=0.01)
    assert (pieces.key, pieces.mode, pieces.time_signature) == (
        whole.key,
        whole.mode,
        whole.time_signature,
    )
    assert pieces.centroid == pytest.approx(whole.centroid, rel=1e-6)
    assert pieces.loudness == pytest.approx(whole.loudness, abs=0.01)


@pytest.mark.parametrize("rate", [16_000, 22_050, 48_000, 96_000])
def test_every_sample_rate_reads_the_same(rate: int) -> None:
    music = mix(drums(120.0, 16.0, rate), 0.4 * chords(2, False, 2.0, 8, rate))
    found = measure(stereo(music), rate)
    assert abs(found.tempo - 120.0) <= 2
    assert (found.key, found.mode) == (2, 1)


def _state_bytes(meter: object) -> int:
    """The numpy arrays a meter holds, its frame buffers' included."""
    total = 0
    for value in vars(meter).values():
        if isinstance(value, np.ndarray):
            total += value.nbytes
        elif hasattr(value, "__dict__"):
            total += _state_bytes(value)
    return total


def test_an_hour_of_audio_keeps_the_state_small() -> None:
    rate = 22_050  # analysed as it is: the hour costs its FFTs and nothing else
    meter = FeatureMeter(rate, 1)
    block = (0.1 * np.random.default_rng(2).standard_normal((rate * 10, 1))).astype(np.float32)
    meter.feed(block)
    after_ten_seconds = _state_bytes(meter)
    for _ in range(359):
        meter.feed(block)
    assert meter.measured().loudness == pytest.approx(-20.0, abs=0.1)
    # No more than a frame buffer's tail (one long frame, 8192 samples) of difference.
    assert abs(_state_bytes(meter) - after_ten_seconds) <= 8192 * 8
    assert _state_bytes(meter) < 256 * 1024


# --- the demo music ------------------------------------------------------------------------


def test_the_demo_music_measures_as_it_was_composed() -> None:
    """Of the twelve demo tracks (at their own lengths), measured on 2026-12: tempo 10
    exact and 2 doubled (the ambient ones, 64 and 70 BPM, whose shaker plays eighths:
    double time is a fair reading), key and mode 10 (Window Seat in E minor reads as
    its relative G major, Swing Hinge in Ab as C minor), 3/4 for both waltzes."""
    tempo = octave = key = metre = 0
    for album in DEMO_LIBRARY:
        for track in album.tracks:
            pcm = (render_pcm(album, track) / 32768).astype(np.float32)
            found = measure(pcm, track.sample_rate, block=65_536)
            tune = track.tune
            tempo += abs(found.tempo - tune.bpm) <= 2
            octave += any(abs(found.tempo - tune.bpm * k) <= 2 for k in (0.5, 1, 2))
            key += (found.key, found.mode) == (tune.tonic, 0 if tune.minor else 1)
            metre += found.time_signature == (3 if tune.style == "waltz" else 4)
    counts = (tempo, octave, key, metre)
    assert tempo >= 10, counts
    assert octave == 12, counts
    assert key >= 9, counts
    assert metre == 12, counts


# --- through the ingest -----------------------------------------------------------------------


def ingest(data: Path, *paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HUB, "ingest", "--data", str(data), "--json", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=300,
        env=child_env(),
        check=False,
    )


@pytest.mark.integration
def test_an_ingested_file_gets_measured_features(tmp_path: Path) -> None:
    bpm, beat_s = 100.0, 0.6
    music = mix(drums(bpm, 24.0), 0.5 * chords(4, True, 4 * beat_s, 10))
    path = write_audio(
        tmp_path / "song.flac",
        stereo(music, 0.7),
        RATE,
        FileTags(title="Pulse", artist="Test Band", album="Signals", track=1),
    )
    out = ingest(tmp_path / "data", path)
    assert out.returncode == 0, out.stderr
    added = json.loads(out.stdout)
    db = hub_database(tmp_path / "data" / "hub.db")
    with db.reading() as conn:
        row = conn.execute(
            "SELECT * FROM audio_features WHERE track_id = ?", (added["id"],)
        ).fetchone()
    assert row is not None
    assert row["measured"] == 1
    assert abs(row["tempo"] - bpm) <= 2
    assert (NAMES[row["key"]], row["mode"]) == ("E", 0)
    assert row["loudness"] == pytest.approx(added["loudness"]["track_lufs"], abs=0.01)
    assert row["spectral_centroid"] > 0
    assert 0.0 < row["spectral_flatness"] < 1.0


@pytest.mark.integration
def test_the_demo_keeps_what_ingest_measured(tmp_path: Path) -> None:
    """Measured tempo, key and energy stay; the composer's danceability replaces the estimate."""
    data = tmp_path / "data"
    db = hub_database(data / "hub.db")
    db.migrate()
    paths = render_demo_library(tmp_path / "demo", seconds_per_track=12)[:4]
    results = ingest_paths(db, data, paths, jobs=2)
    assert [r.status for r in results] == ["added"] * 4
    with db.reading() as conn:
        before = {r["track_id"]: dict(r) for r in conn.execute("SELECT * FROM audio_features")}
    with db.transaction() as conn:
        assert catalog_extras.apply(conn) == 4
    with db.reading() as conn:
        after = {r["track_id"]: dict(r) for r in conn.execute("SELECT * FROM audio_features")}
        styles = {r["id"]: r["name"] for r in conn.execute("SELECT id, name FROM tracks")}
    assert after.keys() == before.keys()
    assert len(after) == 4
    tunes = {t.title: t.tune for t in DEMO_LIBRARY[0].tracks}
    for track_id, row in after.items():
        tune = tunes[styles[track_id]]
        profile = catalog_extras.STYLE_FEATURES[tune.style]
        assert row["measured"] == 1
        for column in ("tempo", "key", "mode", "loudness", "energy", "spectral_centroid"):
            assert row[column] == before[track_id][column], column
        assert (row["danceability"], row["valence"]) == (profile[0], profile[2])


@pytest.mark.integration
def test_ingesting_again_measures_a_track_that_predates_features(tmp_path: Path) -> None:
    """A catalog from before features were measured gets them when its files are
    ingested again; the track stays "present" with its segments, and a track
    already measured is not measured twice."""
    data = tmp_path / "data"
    db = hub_database(data / "hub.db")
    db.migrate()
    bar_s = 60 / 128 * 4
    music = mix(drums(128.0, 7 * bar_s), 0.4 * chords(0, False, bar_s, 7))
    older = write_audio(tmp_path / "older.flac", stereo(music), RATE, FileTags(title="Older"))
    newer = write_audio(tmp_path / "newer.wav", stereo(drums(90.0, 8.0)), RATE)
    [first, second] = ingest_paths(db, data, [older, newer], jobs=2)
    segments = sorted(p.name for p in store.media_root(data).rglob("*") if p.is_file())
    with db.transaction() as conn:
        conn.execute("DELETE FROM audio_features WHERE track_id = ?", (first.id,))
        conn.execute("UPDATE audio_features SET tempo = 1.0 WHERE track_id = ?", (second.id,))

    again = ingest_paths(db, data, [older, newer], jobs=2)

    assert [r.status for r in again] == ["present", "present"]
    assert sorted(p.name for p in store.media_root(data).rglob("*") if p.is_file()) == segments
    with db.reading() as conn:
        rows = {r["track_id"]: r for r in conn.execute("SELECT * FROM audio_features")}
    assert rows[first.id]["measured"] == 1
    assert abs(rows[first.id]["tempo"] - 128.0) <= 2
    assert (rows[first.id]["key"], rows[first.id]["mode"]) == (0, 1)
    assert rows[second.id]["tempo"] == 1.0  # measured already: left alone


SPOTIFY_KEYS = {
    "danceability",
    "energy",
    "key",
    "loudness",
    "mode",
    "speechiness",
    "acousticness",
    "instrumentalness",
    "liveness",
    "valence",
    "tempo",
    "type",
    "id",
    "uri",
    "track_href",
    "analysis_url",
    "duration_ms",
    "time_signature",
}


@pytest.mark.e2e
@pytest.mark.integration
def test_the_web_api_serves_measured_features_in_spotifys_shape(tmp_path: Path) -> None:
    system = System(tmp_path, embedded=True)
    music = mix(drums(90.0, 16.0), 0.4 * chords(7, False, 60 / 90 * 4, 6))
    path = write_audio(tmp_path / "g.flac", stereo(music), RATE, FileTags(title="In G"))
    [added] = ingest_paths(system.db, system.data, [path], jobs=1)
    with system.running():
        headers = {"Authorization": f"Bearer {system.token()}"}
        one = httpx.get(f"{system.url}/v1/audio-features/{added.id}", headers=headers)
        several = httpx.get(
            f"{system.url}/v1/audio-features", params={"ids": added.id}, headers=headers
        )
    assert one.status_code == 200, one.text
    features = one.json()
    assert set(features) == SPOTIFY_KEYS  # the spectral columns stay in the hub
    assert abs(features["tempo"] - 90.0) <= 2
    assert (features["key"], features["mode"]) == (7, 1)
    assert added.loudness is not None
    assert features["loudness"] == added.loudness.track_lufs
    assert several.json() == {"audio_features": [features]}
