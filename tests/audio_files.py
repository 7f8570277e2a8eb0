"""Small audio files for tests: signals, and writers for WAV, FLAC, MP3 and Ogg with tags.

Signals are float32 (frames, channels).  ``write_audio`` picks the format from
the suffix: WAV, FLAC and Ogg Vorbis through soundfile, MP3 through the
``ffmpeg`` CLI (libmp3lame); tags and cover art are then added with mutagen
the way common taggers store them (ID3 in MP3 and WAV, Vorbis comments and
pictures in FLAC and Ogg).
"""

from __future__ import annotations

import base64
import struct
import subprocess
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mutagen.flac
import mutagen.id3
import mutagen.oggvorbis
import mutagen.wave
import numpy as np
import soundfile as sf
from numpy.typing import NDArray
from scipy.signal import fftconvolve

FFMPEG = ("ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-y")
# mutagen's own types are partial: reach its classes through Any
id3_frames: Any = mutagen.id3
flac_file: Any = mutagen.flac.FLAC
ogg_file: Any = mutagen.oggvorbis.OggVorbis
wave_file: Any = mutagen.wave.WAVE

Pcm = NDArray[np.float32]


@dataclass(frozen=True, slots=True, kw_only=True)
class FileTags:
    title: str | None = None
    artist: str | None = None
    album: str | None = None
    album_artist: str | None = None
    track: int | None = None
    disc: int | None = None
    year: int | None = None
    isrc: str | None = None
    art: bytes | None = None  # PNG or JPEG bytes, stored as the front cover
    art_mime: str = "image/png"


# --- signals ---------------------------------------------------------------------


def sine(
    frames: int,
    rate: int,
    *,
    channels: int = 2,
    freq: float = 1000.0,
    dbfs: float = -20.0,
    phase: float = 0.0,
) -> Pcm:
    """A sine whose peak is ``dbfs`` (so -20 dBFS stereo at 1 kHz reads -20.0 LUFS)."""
    t = np.arange(frames, dtype=np.float64) / rate
    wave = 10.0 ** (dbfs / 20.0) * np.sin(2.0 * np.pi * freq * t + phase)
    return np.repeat(wave[:, None], channels, axis=1).astype(np.float32)


def pink_noise(frames: int, *, channels: int = 2, peak_dbfs: float = -6.0, seed: int = 0) -> Pcm:
    """Noise with a 1/f spectrum, scaled to the given peak."""
    rng = np.random.default_rng(seed)
    spectrum = np.fft.rfft(rng.standard_normal((frames, channels)), axis=0)
    bins = np.arange(spectrum.shape[0], dtype=np.float64)
    bins[0] = 1.0
    noise = np.fft.irfft(spectrum / np.sqrt(bins)[:, None], n=frames, axis=0)
    noise *= 10.0 ** (peak_dbfs / 20.0) / np.abs(noise).max()
    return noise.astype(np.float32)


def music(seconds: float, rate: int = 44100, *, seed: int = 0) -> Pcm:
    """Something like a song (chords, bass, drums, a tune, reverb), stereo, peak -1 dBFS.

    Dense enough that encoders spend bits as they would on real music; for
    bitrate checks and benchmarks.
    """
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    out = np.zeros((n, 2))
    beat = 0.5
    chords = [[57, 60, 64, 67], [53, 57, 60, 64], [55, 59, 62, 67], [52, 55, 59, 64]]

    def hz(midi: float) -> float:
        return float(440.0 * 2.0 ** ((midi - 69) / 12))

    def note(freq: float, dur: float, amp: float, partials: int) -> NDArray[np.float64]:
        t = np.arange(int(dur * rate)) / rate
        env = np.minimum(1.0, t / 0.01) * np.exp(-t * 1.5)
        wave = np.zeros_like(t)
        for k in range(1, partials + 1):
            if freq * k < rate / 2.2:
                wave += np.sin(2 * np.pi * freq * k * t) / k
        return np.asarray(amp * env * wave)

    def add(start: float, sound: NDArray[np.float64], pan: float) -> None:
        i = int(start * rate)
        j = min(n, i + len(sound))
        if i < n:
            out[i:j, 0] += sound[: j - i] * (1 - pan)
            out[i:j, 1] += sound[: j - i] * pan

    hit = np.arange(int(0.3 * rate)) / rate
    tick = np.arange(int(0.08 * rate)) / rate
    for b in range(int(seconds / beat) + 1):
        chord = chords[(b // 8) % 4]
        at = b * beat
        if b % 2 == 0:
            for k, m in enumerate(chord):
                add(at, note(hz(m), 1.2, 0.05, 12), 0.3 + 0.13 * k)
            add(at, 0.5 * np.sin(2 * np.pi * (50 + 100 * np.exp(-hit * 30)) * hit)
                * np.exp(-hit * 12), 0.5)  # fmt: skip
        add(at, note(hz(chord[0] - 12), 0.45, 0.15, 6), 0.5)
        if b % 4 == 2:
            add(at, 0.25 * rng.standard_normal(hit.size) * np.exp(-hit * 18), 0.45)
        for h in range(2):
            hat = np.diff(rng.standard_normal(tick.size), prepend=0.0) * np.exp(-tick * 50)
            add(at + h * beat / 2, 0.06 * hat, 0.65)
        if b % 3 == 0:
            add(at + 0.25, note(hz(chord[int(rng.integers(4))] + 12), 0.7, 0.06, 8), 0.2)
    tail = int(0.8 * rate)
    response = rng.standard_normal((tail, 2)) * np.exp(-np.arange(tail)[:, None] / rate * 6)
    wet = np.stack([fftconvolve(out[:, c], response[:, c] * 0.02)[:n] for c in range(2)], axis=1)
    mix = out + wet
    peak = float(np.abs(mix).max())
    return np.asarray(mix * (10 ** (-1 / 20) / peak), dtype=np.float32)


def png_bytes(rgb: tuple[int, int, int] = (200, 40, 40), size: int = 4) -> bytes:
    """A tiny solid-colour PNG, for cover art."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + bytes(rgb) * size
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(row * size))
        + chunk(b"IEND", b"")
    )


# --- writers ---------------------------------------------------------------------


def write_audio(path: Path, pcm: Pcm, rate: int, tags: FileTags | None = None) -> Path:
    """Write ``pcm`` in the format the suffix names, with ``tags``; returns ``path``."""
    suffix = path.suffix.lower()
    if suffix in {".wav", ".flac"}:
        sf.write(path, pcm, rate, subtype="PCM_16")
    elif suffix == ".ogg":
        sf.write(path, pcm, rate, format="OGG", subtype="VORBIS")
    elif suffix == ".mp3":
        _write_mp3(path, pcm, rate)
    else:
        raise ValueError(f"no writer for {suffix!r}")
    if tags is not None:
        tag_file(path, tags)
    return path


def _write_mp3(path: Path, pcm: Pcm, rate: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "in.wav"
        sf.write(wav, pcm, rate, subtype="PCM_16")
        subprocess.run(
            [*FFMPEG, "-i", str(wav), "-c:a", "libmp3lame", "-b:a", "160k", str(path)],
            check=True,
            timeout=60,
        )


def tag_file(path: Path, tags: FileTags) -> None:
    suffix = path.suffix.lower()
    if suffix in {".mp3", ".wav"}:
        _tag_id3(path, tags)
    else:
        _tag_vorbis(path, tags)


def _picture(tags: FileTags) -> Any:
    picture: Any = mutagen.flac.Picture()  # type: ignore[no-untyped-call]
    picture.type = 3
    picture.mime = tags.art_mime
    picture.data = tags.art
    return picture


def _tag_vorbis(path: Path, tags: FileTags) -> None:
    is_flac = path.suffix.lower() == ".flac"
    audio: Any = flac_file(path) if is_flac else ogg_file(path)
    if audio.tags is None:
        audio.add_tags()
    values = {
        "title": tags.title,
        "artist": tags.artist,
        "album": tags.album,
        "albumartist": tags.album_artist,
        "tracknumber": None if tags.track is None else str(tags.track),
        "discnumber": None if tags.disc is None else str(tags.disc),
        "date": None if tags.year is None else str(tags.year),
        "isrc": tags.isrc,
    }
    for key, value in values.items():
        if value is not None:
            audio[key] = value
    if tags.art is not None:
        if is_flac:
            audio.add_picture(_picture(tags))
        else:
            encoded = base64.b64encode(_picture(tags).write()).decode("ascii")
            audio["metadata_block_picture"] = [encoded]
    audio.save()


def _tag_id3(path: Path, tags: FileTags) -> None:
    container: Any = wave_file(path) if path.suffix.lower() == ".wav" else None
    id3: Any
    if container is not None:
        if container.tags is None:
            container.add_tags()
        id3 = container.tags
    else:
        id3 = id3_frames.ID3()
    frames: list[Any] = []
    if tags.title is not None:
        frames.append(id3_frames.TIT2(encoding=3, text=tags.title))
    if tags.artist is not None:
        frames.append(id3_frames.TPE1(encoding=3, text=tags.artist))
    if tags.album is not None:
        frames.append(id3_frames.TALB(encoding=3, text=tags.album))
    if tags.album_artist is not None:
        frames.append(id3_frames.TPE2(encoding=3, text=tags.album_artist))
    if tags.track is not None:
        frames.append(id3_frames.TRCK(encoding=3, text=str(tags.track)))
    if tags.disc is not None:
        frames.append(id3_frames.TPOS(encoding=3, text=str(tags.disc)))
    if tags.year is not None:
        frames.append(id3_frames.TDRC(encoding=3, text=str(tags.year)))
    if tags.isrc is not None:
        frames.append(id3_frames.TSRC(encoding=3, text=tags.isrc))
    if tags.art is not None:
        frames.append(
            id3_frames.APIC(encoding=3, mime=tags.art_mime, type=3, desc="cover", data=tags.art)
        )
    for frame in frames:
        id3.add(frame)
    if container is not None:
        container.save()
    else:
        id3.save(path)
