"""What a file says about itself: title, artists, album, numbers, cover art.

mutagen reads Vorbis comments (FLAC, Ogg) and ID3 (MP3, WAV); what it does not
find is taken from the container metadata libav reads (a WAV's RIFF INFO
chunk, for one).  Reading never fails: a file whose tags are unreadable gets
the defaults, and its decoder decides whether it is audio at all.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import mutagen
from mutagen.flac import Picture
from mutagen.id3 import ID3

from connect_protocol.messages import MAX_NAME_LEN

UNKNOWN_ARTIST = "Unknown artist"
UNKNOWN_ALBUM = "Unknown album"
MAX_ART_BYTES = 16 * 1024 * 1024
FRONT_COVER = 3

_VORBIS_KEYS = {
    "title": ("title",),
    "artist": ("artist",),
    "album": ("album",),
    "album_artist": ("albumartist", "album artist", "album_artist"),
    "track": ("tracknumber", "track"),
    "disc": ("discnumber", "disc"),
    "date": ("date", "year", "originaldate"),
    "isrc": ("isrc",),
}
_ID3_FRAMES = {
    "title": ("TIT2",),
    "artist": ("TPE1",),
    "album": ("TALB",),
    "album_artist": ("TPE2",),
    "track": ("TRCK",),
    "disc": ("TPOS",),
    "date": ("TDRC", "TYER", "TDOR"),
    "isrc": ("TSRC",),
}
_LIBAV_KEYS = {
    "title": ("title",),
    "artist": ("artist",),
    "album": ("album",),
    "album_artist": ("album_artist", "album artist", "albumartist"),
    "track": ("track", "tracknumber"),
    "disc": ("disc", "discnumber"),
    "date": ("date", "year"),
    "isrc": ("isrc", "tsrc"),
}
_NUMBER = re.compile(r"\s*(\d{1,6})")
_YEAR = re.compile(r"\s*(\d{4})")


@dataclass(frozen=True, slots=True, kw_only=True)
class Tags:
    title: str | None = None
    artist: str | None = None
    album: str | None = None
    album_artist: str | None = None
    track_number: int | None = None
    disc_number: int | None = None
    year: int | None = None
    isrc: str | None = None

    def filled_from(self, other: Tags) -> Tags:
        """These tags, with the gaps taken from ``other``."""
        return Tags(
            **{
                f.name: getattr(self, f.name)
                if getattr(self, f.name) is not None
                else getattr(other, f.name)
                for f in dataclasses.fields(self)
            }
        )


@dataclass(frozen=True, slots=True)
class TrackInfo:
    """The catalog's view of a file's tags, with defaults where they are silent."""

    name: str
    artist: str
    album: str
    album_artist: str
    track_number: int
    disc_number: int | None
    year: int | None
    isrc: str | None


@dataclass(frozen=True, slots=True)
class Art:
    data: bytes
    mime: str  # image/jpeg or image/png, from the bytes themselves

    @property
    def extension(self) -> str:
        return "jpg" if self.mime == "image/jpeg" else "png"


def _text(value: Any) -> str | None:
    """A tag value (str, list, ID3 frame) as one clean line, or None if empty."""
    if value is None:
        return None
    if hasattr(value, "text"):
        value = value.text
    if isinstance(value, list | tuple):
        parts = [str(v).strip() for v in value if str(v).strip()]
        text = ", ".join(dict.fromkeys(parts))
    else:
        text = str(value).strip()
    text = " ".join(text.replace("\x00", " ").split())
    return text[:MAX_NAME_LEN] or None


def _number(text: str | None) -> int | None:
    match = _NUMBER.match(text or "")
    return int(match.group(1)) if match else None


def _year(text: str | None) -> int | None:
    match = _YEAR.match(text or "")
    return int(match.group(1)) if match else None


def _build(get: Callable[[tuple[str, ...]], str | None], keys: dict[str, tuple[str, ...]]) -> Tags:
    def one(field: str) -> str | None:
        return get(keys[field])

    return Tags(
        title=one("title"),
        artist=one("artist"),
        album=one("album"),
        album_artist=one("album_artist"),
        track_number=_number(one("track")),
        disc_number=_number(one("disc")),
        year=_year(one("date")),
        isrc=one("isrc"),
    )


def _from_mapping(mapping: Any, keys: dict[str, tuple[str, ...]]) -> Tags:
    def get(names: tuple[str, ...]) -> str | None:
        for name in names:
            try:
                value = _text(mapping[name])
            except (KeyError, ValueError):
                continue
            if value:
                return value
        return None

    return _build(get, keys)


def _from_id3(id3: Any) -> Tags:
    def get(names: tuple[str, ...]) -> str | None:
        for name in names:
            frames: list[Any] = id3.getall(name)
            for frame in frames:
                value = _text(frame)
                if value:
                    return value
        return None

    return _build(get, _ID3_FRAMES)


def _open(path: Path) -> Any:
    try:
        return mutagen.File(path)
    except (mutagen.MutagenError, OSError, ValueError, EOFError):
        return None


def libav_tags(path: Path) -> Tags:
    """Container metadata as libav reads it (RIFF INFO and friends)."""
    try:
        with av.open(str(path)) as container:
            metadata = {k.lower(): v for k, v in container.metadata.items()}
            if container.streams.audio:
                stream_meta = container.streams.audio[0].metadata.items()
                metadata |= {k.lower(): v for k, v in stream_meta if k.lower() not in metadata}
    except (av.FFmpegError, OSError):
        return Tags()
    return _from_mapping(metadata, _LIBAV_KEYS)


@dataclass(frozen=True, slots=True)
class FileInfo:
    tags: Tags
    seconds: float  # length as the headers tell it, 0.0 if they do not: for progress only


def read_file_info(path: Path) -> FileInfo:
    audio = _open(path)
    tags = getattr(audio, "tags", None)
    if tags is None:
        found = Tags()
    elif isinstance(tags, ID3):
        found = _from_id3(tags)
    else:
        found = _from_mapping(tags, _VORBIS_KEYS)
    if None in (found.title, found.artist, found.album, found.track_number):
        found = found.filled_from(libav_tags(path))
    seconds = float(getattr(getattr(audio, "info", None), "length", 0.0) or 0.0)
    return FileInfo(found, seconds if math.isfinite(seconds) else 0.0)


def read_tags(path: Path) -> Tags:
    return read_file_info(path).tags


def track_info(tags: Tags, path: Path) -> TrackInfo:
    """Defaults for what the tags leave out: the file name, unknown artist and album."""
    artist = tags.artist or tags.album_artist or UNKNOWN_ARTIST
    return TrackInfo(
        name=tags.title or path.stem[:MAX_NAME_LEN] or path.name,
        artist=artist,
        album=tags.album or UNKNOWN_ALBUM,
        album_artist=tags.album_artist or artist,
        track_number=tags.track_number or 0,
        disc_number=tags.disc_number,
        year=tags.year,
        isrc=tags.isrc,
    )


def image_mime(data: bytes) -> str | None:
    """The image type from its first bytes: the declared MIME type is often wrong."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    return None


def _pictures(audio: Any) -> list[tuple[int, bytes]]:
    """(picture type, bytes) of every embedded picture we know how to find."""
    found: list[tuple[int, bytes]] = [(p.type, p.data) for p in getattr(audio, "pictures", [])]
    tags = getattr(audio, "tags", None)
    if isinstance(tags, ID3):
        id3: Any = tags  # mutagen's types are partial
        apic: list[Any] = id3.getall("APIC")
        found += [(frame.type, frame.data) for frame in apic]
    elif tags is not None:
        for key in ("metadata_block_picture", "coverart"):
            try:
                values = tags[key]
            except (KeyError, ValueError):
                continue
            for value in values:
                try:
                    raw = base64.b64decode(value)
                    if key == "coverart":  # the old, bare form: no picture type
                        found.append((FRONT_COVER, raw))
                    else:
                        picture = _picture(raw)
                        found.append((picture.type, picture.data))
                except (binascii.Error, ValueError, mutagen.MutagenError):
                    continue
    return found


def _picture(raw: bytes) -> Any:
    parse: Any = Picture  # mutagen's types are partial
    return parse(raw)


def read_art(path: Path) -> Art | None:
    """The embedded front cover (else the first picture), if it is a JPEG or PNG."""
    pictures = _pictures(_open(path))
    pictures.sort(key=lambda p: p[0] != FRONT_COVER)  # stable: front covers first
    for _type, data in pictures:
        mime = image_mime(data)
        if mime and len(data) <= MAX_ART_BYTES:
            return Art(data, mime)
    return None
