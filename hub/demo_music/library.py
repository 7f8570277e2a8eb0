"""The demo library: three albums of generated music as tagged FLAC files with cover art.

`legato-hub up` ingests these on first start, so the library renders fast (a few seconds
for about ten minutes of music) and is byte-for-byte the same every time; files already
rendered by the same generator are left alone.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import mutagen.flac
import numpy as np
import soundfile as sf

from hub.demo_music.compose import Pcm, Tune, render, seed_of

COVER_SIZE = 300
FINGERPRINT_TAG = "legato_demo_render"  # what made the file: skip re-rendering when it matches


@dataclass(frozen=True)
class DemoTrack:
    title: str
    tune: Tune
    seconds: float
    peak_db: float  # levels differ a little, so loudness normalisation has work to do
    sample_rate: int = 44_100


@dataclass(frozen=True)
class DemoAlbum:
    title: str
    artist: str
    year: int
    genre: str
    colours: tuple[tuple[int, int, int], tuple[int, int, int]]  # cover gradient, top to bottom
    tracks: tuple[DemoTrack, ...]


# Names as in hub.demo_music.seed.DEMO_ALBUMS; twelve tracks in twelve different keys and tempos.
DEMO_LIBRARY: tuple[DemoAlbum, ...] = (
    DemoAlbum("Harbour Lights", "The Quay Ensemble", 2023, "Ambient",
              ((18, 42, 84), (236, 170, 80)), (
        DemoTrack("Low Tide", Tune.of("ambient", "D", 70, "I V vi IV"), 56, -4.0),
        DemoTrack("Gulls at Dawn", Tune.of("pop", "G", 104, "I V vi IV"), 50, -1.0),
        DemoTrack("Rope and Anchor", Tune.of("groove", "Am", 110, "i VI III VII"), 48, -2.5),
        DemoTrack("Lanterns", Tune.of("waltz", "Eb", 84, "I vi IV V"), 52, -5.0),
    )),
    DemoAlbum("Night Bus", "Mira Okafor", 2024, "Electronic",
              ((20, 10, 40), (250, 120, 30)), (
        DemoTrack("Last Stop", Tune.of("electronic", "Fm", 124, "i VI III VII"), 56, -1.0),
        DemoTrack("Sodium Glow", Tune.of("electronic", "Cm", 118, "i iv VI V"), 50, -2.0),
        DemoTrack("Window Seat", Tune.of("downtempo", "Em", 88, "i VI III VII"), 48, -3.5),
    )),
    DemoAlbum("Field Recordings", "Paloma Reyes Trio", 2022, "Jazz",
              ((40, 90, 50), (230, 220, 160)), (
        DemoTrack("Meadow Waltz", Tune.of("waltz", "Bb", 150, "I vi ii V"), 50, -3.0),
        DemoTrack("Swing Hinge", Tune.of("swing", "Ab", 132, "ii V I vi"), 52, -2.0),
        DemoTrack("Barley", Tune.of("pop", "B", 96, "I IV I V"), 46, -4.5, 48_000),
        DemoTrack("Evening Shift", Tune.of("swing", "C#m", 92, "iv V i i"), 54, -3.0),
        DemoTrack("Coda", Tune.of("ambient", "F#", 64, "I IV vi V"), 38, -6.0),
    )),
)  # fmt: skip


def render_demo_library(out_dir: Path, *, seconds_per_track: float | None = None) -> list[Path]:
    """Write one FLAC per demo track under out_dir/<artist>/<album>/; paths in album order.

    `seconds_per_track` replaces every track's own length (tests use short ones). Files this
    generator already made for the same track and length are left as they are.
    """
    if seconds_per_track is not None and not seconds_per_track > 0:
        raise ValueError(f"seconds_per_track must be positive, not {seconds_per_track}")
    paths = []
    for album in DEMO_LIBRARY:
        folder = out_dir / _safe(album.artist) / _safe(album.title)
        folder.mkdir(parents=True, exist_ok=True)
        for number, track in enumerate(album.tracks, start=1):
            path = folder / f"{number:02d} {_safe(track.title)}.flac"
            _ensure(path, album, number, seconds_per_track or track.seconds)
            paths.append(path)
    return paths


def render_pcm(album: DemoAlbum, track: DemoTrack, seconds: float | None = None) -> Pcm:
    """A track's audio as 16-bit frames x channels: what its FLAC holds."""
    seed = seed_of(f"{album.artist}/{album.title}/{track.title}")
    return render(track.tune, seconds or track.seconds, track.sample_rate, seed, track.peak_db)


def _ensure(path: Path, album: DemoAlbum, number: int, seconds: float) -> None:
    """Render a track unless its file is already what this code makes for it."""
    fingerprint = _fingerprint(album, number, seconds)
    if _tag(path, FINGERPRINT_TAG) == fingerprint:
        return  # no need to render just to compare
    data = _flac(album, number, seconds, fingerprint)
    if not path.exists() or path.read_bytes() != data:
        _write_atomically(path, data)


def _flac(album: DemoAlbum, number: int, seconds: float, fingerprint: str) -> bytes:
    """The bytes of one tagged track with its cover, made in memory."""
    track = album.tracks[number - 1]
    pcm = render_pcm(album, track, seconds)
    buffer = io.BytesIO()
    sf.write(buffer, pcm, track.sample_rate, format="FLAC", subtype="PCM_16")
    buffer.seek(0)
    flac = mutagen.flac.FLAC(buffer)  # type: ignore[no-untyped-call]
    if flac.tags is None:
        flac.add_tags()  # type: ignore[no-untyped-call]
    tags = flac.tags
    assert isinstance(tags, mutagen.flac.VCFLACDict)  # libsndfile writes an empty one
    for key, value in {
        "title": track.title,
        "artist": album.artist,
        "album": album.title,
        "albumartist": album.artist,
        "tracknumber": str(number),
        "tracktotal": str(len(album.tracks)),
        "date": str(album.year),
        "genre": album.genre,
        FINGERPRINT_TAG: fingerprint,
    }.items():
        tags[key] = value
    picture = mutagen.flac.Picture()  # type: ignore[no-untyped-call]
    picture.type, picture.mime, picture.desc = 3, "image/png", "Front cover"
    picture.width = picture.height = COVER_SIZE
    picture.depth = 24
    picture.data = cover_png(album)
    flac.add_picture(picture)  # type: ignore[no-untyped-call]
    buffer.seek(0)
    flac.save(buffer, padding=lambda info: 1024)
    return buffer.getvalue()


def _fingerprint(album: DemoAlbum, number: int, seconds: float) -> str:
    """Everything the bytes depend on: the track, its length, the libraries and this code
    (so a change to the synthesis re-renders without anyone remembering a version)."""
    spec = repr((album, number, seconds, np.__version__, sf.__libsndfile_version__))
    return hashlib.sha256(_code_digest() + spec.encode()).hexdigest()[:32]


@functools.cache
def _code_digest() -> bytes:
    code = b"".join(p.read_bytes() for p in sorted(Path(__file__).parent.glob("*.py")))
    return hashlib.sha256(code).digest()


def _tag(path: Path, key: str) -> str | None:
    """One tag of an existing FLAC, or None when the file is missing or unreadable."""
    try:
        tags = mutagen.flac.FLAC(path).tags  # type: ignore[no-untyped-call]
    except (OSError, mutagen.MutagenError):
        return None
    if not isinstance(tags, mutagen.flac.VCFLACDict):
        return None
    values = tags.get(key)  # type: ignore[no-untyped-call]
    return str(values[0]) if values else None


def _write_atomically(path: Path, data: bytes) -> None:
    """A reader (the ingest) never sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in " -_.,'" else "_" for c in name).strip()


@functools.cache
def cover_png(album: DemoAlbum) -> bytes:
    """A square cover: the album's gradient with soft rings, as a hand-written PNG."""
    n = COVER_SIZE
    y, x = np.mgrid[0:n, 0:n] / (n - 1)
    top, bottom = (np.array(c, dtype=np.float64) for c in album.colours)
    image = top + (bottom - top) * y[..., None]
    cx, cy = 0.3 + 0.4 * (seed_of(album.title) % 100) / 100, 0.62
    rings = 0.5 + 0.5 * np.cos(np.hypot(x - cx, y - cy) * 60) * np.exp(
        -np.hypot(x - cx, y - cy) * 4
    )
    image = image * (0.65 + 0.35 * rings[..., None])
    return _png(np.clip(image, 0, 255).astype(np.uint8))


def _png(rgb: np.ndarray[tuple[int, int, int], np.dtype[np.uint8]]) -> bytes:
    """Encode an RGB image as PNG: a signature and IHDR, IDAT and IEND chunks."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    height, width, _ = rgb.shape
    rows = np.hstack([np.zeros((height, 1), np.uint8), rgb.reshape(height, -1)])  # filter 0
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows.tobytes(), 9))
        + chunk(b"IEND", b"")
    )
