"""Secrets on disk: written atomically, readable by their owner only from the start.

Here (in the package that depends on nothing of ours) so that the speaker's keys
and the hub's secrets are written by the same few lines.
"""

from __future__ import annotations

import os
from pathlib import Path


def private_temp(path: Path, data: bytes, tag: str = "") -> Path:
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


def write_private_bytes(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically, mode 0600 from the start."""
    os.replace(private_temp(path, data), path)
