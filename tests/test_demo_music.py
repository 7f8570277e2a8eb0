"""The demo library: tagged FLACs with covers, the same bytes every time, and music.

"Music" is checked the way a listener would hear it, from the rendered audio alone:
chords (several pitches at once, moving with the progression), a beat at the track's
tempo, clean starts and endings.
"""

from __future__ import annotations

import itertools
import struct
import time
import zlib
from pathlib import Path

import mutagen.flac
import numpy as np
import pytest
import soundfile as sf
from numpy.typing import NDArray

from hub.demo_music import DEMO_LIBRARY, DemoAlbum, DemoTrack, render_demo_library
from hub.demo_music.library import COVER_SIZE, render_pcm
from hub.demo_music.seed import DEMO_ALBUMS

SHORT = 3.0  # seconds per track where only the files matter
PITCH_CLASSES = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")
Signal = NDArray[np.float64]


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return render_demo_library(tmp_path_factory.mktemp("demo"), seconds_per_track=SHORT)


def flac(path: Path) -> mutagen.flac.FLAC:
    return mutagen.flac.FLAC(path)  # type: ignore[no-untyped-call]


def tag(path: Path, key: str) -> str:
    tags = flac(path).tags
    assert isinstance(tags, mutagen.flac.VCFLACDict)
    values = tags.get(key)  # type: ignore[no-untyped-call]
    assert values, f"{path.name} has no {key}"
    return str(values[0])


def demo_track(title: str) -> tuple[DemoAlbum, DemoTrack]:
    return next((a, t) for a in DEMO_LIBRARY for t in a.tracks if t.title == title)


def audio(title: str, seconds: float | None = None) -> tuple[Signal, int, DemoTrack]:
    """A track's audio as floats in [-1, 1], frames x channels."""
    album, track = demo_track(title)
    return render_pcm(album, track, seconds) / 32768.0, track.sample_rate, track


def db(x: Signal) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(x**2)) + 1e-12))


def test_one_flac_per_catalog_track_in_album_order(library: list[Path]) -> None:
    expected = [
        (album, artist, title) for album, artist, tracks in DEMO_ALBUMS for title, _ in tracks
    ]
    assert [(tag(p, "album"), tag(p, "artist"), tag(p, "title")) for p in library] == expected
    assert all(p.suffix == ".flac" and p.is_file() for p in library)


def test_files_are_16_bit_stereo_at_44_1_khz_but_one_at_48(library: list[Path]) -> None:
    infos = {p: sf.info(str(p)) for p in library}
    assert {(i.format, i.subtype, i.channels) for i in infos.values()} == {("FLAC", "PCM_16", 2)}
    assert all(i.frames == round(SHORT * i.samplerate) for i in infos.values())
    at_48k = [p for p, i in infos.items() if i.samplerate == 48_000]
    assert [tag(p, "album") for p in at_48k] == ["Field Recordings"]  # a rate change mid-album
    assert {i.samplerate for p, i in infos.items() if p not in at_48k} == {44_100}


def test_every_file_is_tagged_and_has_a_cover(library: list[Path]) -> None:
    numbers = [int(tag(p, "tracknumber")) for p in library]
    assert numbers == [n for _, _, tracks in DEMO_ALBUMS for n in range(1, len(tracks) + 1)]
    for path in library:
        assert tag(path, "albumartist") == tag(path, "artist")
        assert len(tag(path, "date")) == 4
        assert tag(path, "date").isdigit()
        assert tag(path, "genre")
        [picture] = flac(path).pictures
        assert (picture.type, picture.mime) == (3, "image/png")  # 3: front cover
        assert (picture.width, picture.height) == (COVER_SIZE, COVER_SIZE)
        assert decode_png(picture.data).shape == (COVER_SIZE, COVER_SIZE, 3)
    covers = {flac(p).pictures[0].data for p in library}
    assert len(covers) == len(DEMO_ALBUMS)  # one per album, and the albums' differ


def decode_png(data: bytes) -> NDArray[np.uint8]:
    """A strict reader for the PNGs the library writes (8-bit RGB, no row filters)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + body) == crc
        chunks[kind] = body
        pos += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (depth, colour) == (8, 2)
    rows = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), np.uint8).reshape(height, -1)
    assert not rows[:, 0].any()
    return rows[:, 1:].reshape(height, width, 3)


def test_rendering_twice_gives_the_same_bytes(library: list[Path], tmp_path: Path) -> None:
    again = render_demo_library(tmp_path, seconds_per_track=SHORT)
    assert [p.relative_to(tmp_path) for p in again] == [
        p.relative_to(library[0].parents[2]) for p in library
    ]
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in library]


def test_files_already_rendered_are_left_alone_and_damaged_ones_replaced(
    library: list[Path], tmp_path: Path
) -> None:
    first = render_demo_library(tmp_path, seconds_per_track=SHORT)
    stats = [(p.stat().st_ino, p.stat().st_mtime_ns) for p in first]
    assert render_demo_library(tmp_path, seconds_per_track=SHORT) == first
    assert [(p.stat().st_ino, p.stat().st_mtime_ns) for p in first] == stats

    first[3].write_bytes(first[3].read_bytes()[:5000])  # an interrupted copy, say
    render_demo_library(tmp_path, seconds_per_track=SHORT)
    assert first[3].read_bytes() == library[3].read_bytes()
    after = [(p.stat().st_ino, p.stat().st_mtime_ns) for p in first]
    assert after[:3] + after[4:] == stats[:3] + stats[4:]

    render_demo_library(tmp_path, seconds_per_track=2.0)  # another length is another file
    assert sf.info(str(first[0])).duration == 2.0


def test_a_length_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="positive"):
        render_demo_library(tmp_path, seconds_per_track=0)


def test_nothing_clips_and_levels_differ(library: list[Path]) -> None:
    levels = []
    for path in library:
        pcm, _ = sf.read(str(path), dtype="int16")
        assert np.max(np.abs(pcm.astype(np.int32))) <= 10 ** (-1 / 20) * 32768  # -1 dBFS
        levels.append(db(pcm / 32768.0))
    assert max(levels) - min(levels) > 3  # something for loudness normalisation to do


def test_the_default_library_is_about_ten_minutes_in_different_keys_and_tempos() -> None:
    tracks = [t for album in DEMO_LIBRARY for t in album.tracks]
    assert 8 * 60 <= sum(t.seconds for t in tracks) <= 12 * 60
    assert all(30 <= t.seconds <= 80 for t in tracks)
    assert len({t.tune.tonic for t in tracks}) == len(tracks)
    assert len({t.tune.bpm for t in tracks}) == len(tracks)
    assert len({t.tune.style for t in tracks}) >= 5


def chroma(x: Signal, sr: int, start: float, end: float) -> Signal:
    """Energy per pitch class between 150 Hz and 1.2 kHz, relative to the strongest."""
    segment = x[round(start * sr) : round(end * sr)].mean(axis=1)
    power = np.abs(np.fft.rfft(segment * np.hanning(len(segment)))) ** 2
    freqs = np.fft.rfftfreq(len(segment), 1 / sr)
    band = (freqs > 150) & (freqs < 1200)
    classes = np.round(69 + 12 * np.log2(freqs[band] / 440)).astype(int) % 12
    energy = np.bincount(classes, weights=power[band], minlength=12)
    return np.asarray(energy / energy.max())


def test_pads_play_chords_that_move_with_the_progression() -> None:
    x, sr, track = audio("Rope and Anchor")  # A minor, i VI III VII; an intro of pads and keys
    bar = 4 * 60 / track.tune.bpm
    heard = []
    for number in range(4):
        energy = chroma(x, sr, number * bar + 0.7, number * bar + 1.2)  # half a second
        heard.append({PITCH_CLASSES[pc] for pc in range(12) if energy[pc] > 0.25})
    # Three pitches at once, changing with each bar: A minor (its C is no overtone of A),
    # F major, C major, G major.
    assert heard == [{"A", "C", "E"}, {"F", "A", "C"}, {"C", "E", "G"}, {"G", "B", "D"}]


def onset_autocorrelation(x: Signal, sr: int, hop: int = 512) -> tuple[Signal, float]:
    """Autocorrelation of spectral flux (how much new sound each frame brings), with the
    seconds per lag step: drums make it peak at the beat."""
    mono = x.mean(axis=1)
    frames = np.lib.stride_tricks.sliding_window_view(mono, 2048)[::hop] * np.hanning(2048)
    spectrum = np.log1p(100 * np.abs(np.fft.rfft(frames, axis=1)))
    flux = np.maximum(np.diff(spectrum, axis=0), 0).sum(axis=1)
    flux -= flux.mean()
    ac = np.correlate(flux, flux, "full")[len(flux) - 1 :]
    return np.asarray(ac / ac[0]), hop / sr


def test_the_drums_keep_each_tracks_tempo_and_styles_differ_in_it() -> None:
    beats = {}
    curves = {}
    for title in ("Last Stop", "Gulls at Dawn"):  # electronic at 124 BPM, pop at 104
        x, sr, track = audio(title, 16)
        curves[title], step = onset_autocorrelation(x, sr)
        lags = np.arange(len(curves[title])) * step
        window = (lags > 0.35) & (lags < 0.8)
        beats[title] = float(lags[window][np.argmax(curves[title][window])])
        assert beats[title] == pytest.approx(60 / track.tune.bpm, abs=step)
    assert 60 / beats["Last Stop"] - 60 / beats["Gulls at Dawn"] > 15  # BPM apart
    # Each track's pulse is its own: at the other's beat period its onsets do not line up.
    for title, other in (("Last Stop", "Gulls at Dawn"), ("Gulls at Dawn", "Last Stop")):
        at = round(beats[other] / step)
        assert curves[title][at] < 0.3 * curves[title][round(beats[title] / step)]


@pytest.mark.parametrize("title", ["Low Tide", "Last Stop", "Swing Hinge"])
def test_a_track_fades_in_and_rings_out(title: str) -> None:
    x, sr, _ = audio(title)
    assert not x[0].any()
    assert not x[-1].any()
    # A short fade-in, not a click: a millisecond in, still under 5% of the opening's level.
    assert np.max(np.abs(x[: sr // 1000])) < 0.05 * np.max(np.abs(x[:sr]))
    assert db(x[-sr // 20 :]) < -60  # silent at the very end
    windows = [db(x[len(x) - (i + 1) * sr // 4 : len(x) - i * sr // 4]) for i in range(12)]
    # The last three seconds: the final chord dying away with no new attack (its detuned
    # voices beat, so a dB or two of wobble is allowed).
    tail = windows[::-1]
    assert tail[-1] < tail[0] - 30
    assert all(b < a + 3 for a, b in itertools.pairwise(tail))


def test_a_full_length_track_renders_in_a_fraction_of_its_length() -> None:
    album, track = max(((a, t) for a in DEMO_LIBRARY for t in a.tracks), key=lambda p: p[1].seconds)
    start = time.process_time()
    render_pcm(album, track)
    # About 0.3 s of CPU for 56 s of music (the whole library takes a few seconds): slack
    # for a busy machine, but a per-sample Python loop would be far over.
    assert time.process_time() - start < 1.5
