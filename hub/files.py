"""Writing secrets to disk: atomically, and readable by their owner only."""

from __future__ import annotations

import os
import threading
from pathlib import Path


def _private_temp(path: Path, data: bytes, tag: str = "") -> Path:
    """``data`` in a fresh 0600 file next to ``path``, flushed to disk."""
    tmp = path.with_name(f".{path.name}{tag}.tmp")
    tmp.unlink(missing_ok=True)  # a leftover could carry other modes, or be a link
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    os.fchmod(fd, 0o600)  # whatever the umask
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    return tmp


def write_private(path: Path, text: str) -> None:
    """Write a secret file atomically with mode 0600 from the start."""
    os.replace(_private_temp(path, text.encode()), path)


def create_private_once(path: Path, data: bytes) -> bytes:
    """Create a 0600 secret file holding ``data`` unless it exists; returns what it holds.

    Safe against a race with another process doing the same: the file appears
    whole (hard-linked into place, which fails if it exists) and the loser reads
    the winner's bytes, so both go on with one secret.
    """
    if path.exists():
        return path.read_bytes()
    tmp = _private_temp(path, data, f".{os.getpid()}.{threading.get_ident()}")  # racers: one each
    try:
        os.link(tmp, path)
    except FileExistsError:
        return path.read_bytes()
    finally:
        tmp.unlink(missing_ok=True)
    return data
