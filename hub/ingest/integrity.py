"""Catch a truncated file that its decoder would quietly play short.

PyAV decodes what is there: a WAV cut short, an MP3 missing its end or an Ogg
without its last page all decode without an error.  Where the container says
how long it is (WAV's data chunk, FLAC's STREAMINFO, an MP3's Xing/VBRI
header) the decoded length must reach that; an Ogg stream must end with its
end-of-stream page.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mutagen import MutagenError
from mutagen.flac import FLAC
from mutagen.mp3 import MP3, BitrateMode
from mutagen.wave import WAVE

from hub.errors import IngestError

#: An MP3's header count is of whole frames; decoders trim delay and padding.
MP3_SLACK_FRAMES = 2 * 1152
_OGG_TAIL = 65536
_STREAMING_WAV_SIZE = 0xFFFF_0000


def _info(kind: Any, path: Path) -> Any:
    """Stream info of a mutagen file type (mutagen's types are partial)."""
    return kind(path).info


def declared_frames(path: Path) -> tuple[int, int] | None:
    """(frames, slack) the container declares, or None when it does not say."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".flac":
            flac = _info(FLAC, path)
            return (int(flac.total_samples), 0) if flac.total_samples else None
        if suffix == ".wav":
            wave = _info(WAVE, path)
            frames = round(wave.length * wave.sample_rate)
            if frames * wave.channels * wave.bits_per_sample // 8 >= _STREAMING_WAV_SIZE:
                return None  # written by a streaming tool that never filled the size in
            return frames, 1
        if suffix == ".mp3":
            mp3 = _info(MP3, path)
            if mp3.bitrate_mode is BitrateMode.UNKNOWN or mp3.sketchy:
                return None  # length estimated from the file size: nothing declared
            return round(mp3.length * mp3.sample_rate), MP3_SLACK_FRAMES
    except (MutagenError, ValueError, ZeroDivisionError):
        return None  # the decoder has the final word on unreadable headers
    return None


def ogg_has_end(path: Path) -> bool:
    """Whether the file's last Ogg page carries the end-of-stream flag."""
    with path.open("rb") as fh:
        size = fh.seek(0, 2)
        fh.seek(max(0, size - _OGG_TAIL))
        tail = fh.read()
    at = tail.rfind(b"OggS")
    return at >= 0 and len(tail) > at + 5 and bool(tail[at + 5] & 0x04)


def check_complete(path: Path, decoded: int) -> None:
    """Raise ``IngestError`` when fewer frames decoded than the file declares."""
    if path.suffix.lower() in {".ogg", ".oga"}:
        if not ogg_has_end(path):
            raise IngestError("truncated: the Ogg stream has no end-of-stream page")
        return
    declared = declared_frames(path)
    if declared is not None and decoded < declared[0] - declared[1]:
        raise IngestError(f"truncated: {decoded} of {declared[0]} frames decoded")
