"""Writing files whole or not at all, and secrets readable by their owner only."""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path

from offline_cache.private_files import private_temp, write_private_bytes


def keys_dir(data_dir: Path) -> Path:
    """``DATA/keys``, mode 0700: where every secret the hub makes is kept."""
    path = data_dir / "keys"
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def write_private(path: Path, text: str) -> None:
    """Write a secret file atomically with mode 0600 from the start."""
    write_private_bytes(path, text.encode())


def create_private_once(path: Path, data: bytes) -> bytes:
    """Create a 0600 secret file holding ``data`` unless it exists; returns what it holds.

    Safe against a race with another process doing the same: the file appears
    whole (hard-linked into place, which fails if it exists) and the loser reads
    the winner's bytes, so both go on with one secret.
    """
    if path.exists():
        return path.read_bytes()
    tmp = private_temp(path, data, f".{os.getpid()}.{threading.get_ident()}")  # racers: one each
    try:
        os.link(tmp, path)
    except FileExistsError:
        return path.read_bytes()
    finally:
        tmp.unlink(missing_ok=True)
    return data


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary name beside ``path``, then rename over it.

    A reader (the hub serving a segment) sees the old file or the new one,
    never a part; a crash leaves at most a ``.tmp`` beside it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
