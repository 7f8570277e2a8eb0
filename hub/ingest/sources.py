"""Which files an ingest run takes, and the content hash that names each track.

Folders are walked recursively for the four formats we ingest; a file named
explicitly is taken whatever its suffix, so that a mistyped one is reported
rather than silently ignored.  The track id derives from the SHA-256 of the
file's bytes, which makes ingest idempotent: the same content is one track
however often and from wherever it is added.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from hub.errors import IngestError

SUFFIXES = frozenset({".flac", ".wav", ".mp3", ".ogg", ".oga"})
_CHUNK = 1 << 20


def find_audio(paths: Iterable[Path]) -> list[Path]:
    """Files to ingest, in a stable order, each once; a missing path is an error."""
    found: dict[Path, None] = {}
    for path in paths:
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file() and child.suffix.lower() in SUFFIXES:
                    found.setdefault(child, None)
        elif path.exists():
            found.setdefault(path, None)
        else:
            raise IngestError(f"{path}: no such file or directory")
    return list(found)


def check_supported(path: Path) -> None:
    if path.suffix.lower() not in SUFFIXES:
        names = ", ".join(sorted(SUFFIXES))
        raise IngestError(f"unsupported file type {path.suffix or '(none)'!r}: expected {names}")


def content_hash(path: Path) -> str:
    """SHA-256 of the file's bytes, hex."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
