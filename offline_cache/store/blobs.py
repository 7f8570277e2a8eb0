"""The sealed segments on disk: where each blob lives and how it is written whole.

``blobs/<track>/<quality>/<n>.seg`` holds one AES-256-GCM sealed segment;
``tmp/`` holds blobs being written.  A blob is written to ``tmp/``, fsynced,
renamed into place and its directory fsynced, so a blob that exists is whole.
Track ids and qualities become directory names, which is why they are checked
against a narrow alphabet before any path is built from them.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
from pathlib import Path

from offline_cache.errors import StoreError

_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_QUALITY = re.compile(r"[a-z_]{1,16}")


def check_track_id(track_id: str) -> None:
    if not _ID.fullmatch(track_id):
        raise StoreError(f"bad track id {track_id!r}")


def is_quality(quality: str) -> bool:
    return _QUALITY.fullmatch(quality) is not None


class Blobs:
    """The ``blobs/`` and ``tmp/`` directories under the store's root."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "blobs"
        self.tmp = root / "tmp"
        for d in (self.dir, self.tmp):
            d.mkdir(parents=True, exist_ok=True)

    def path(self, track_id: str, quality: str, n: int) -> Path:
        return self.dir / track_id / quality / f"{n}.seg"

    def write(self, track_id: str, quality: str, n: int, blob: bytes) -> None:
        """Temp file, fsync, rename into place, fsync the directory."""
        final = self.path(track_id, quality, n)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.tmp / f"{track_id}.{quality}.{n}.{os.getpid()}.{threading.get_ident()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, blob)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)
        _fsync_dir(final.parent)

    def read(self, track_id: str, quality: str, n: int) -> bytes | None:
        """The blob's bytes, ``None`` if the file is gone."""
        try:
            return self.path(track_id, quality, n).read_bytes()
        except FileNotFoundError:
            return None

    def delete(self, track_id: str, quality: str, n: int) -> None:
        self.path(track_id, quality, n).unlink(missing_ok=True)

    def delete_track(self, track_id: str) -> None:
        shutil.rmtree(self.dir / track_id, ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
