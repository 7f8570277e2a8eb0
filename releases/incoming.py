"""The bundle the speaker downloaded, taken into root's hands before anything reads it.

The speaker's user owns ``<state>`` and ``<state>/incoming``: between a check and an
open it could swap a name for a FIFO (root would block), a link to a root-only file
(root would parse it, and say what it found in a result the speaker reads), or a
bundle whose tar header claims gigabytes of long name (``tarfile`` reads that into
memory).  So the installer opens each directory and the bundle without following
links and without blocking, takes only a regular file of at most
``MAX_BUNDLE_BYTES``, copies it through that one descriptor into a root-only
directory, checks every tar header of the copy is a plain USTAR file, and verifies
and unpacks only that copy.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from releases.errors import BundleRefusedError
from releases.manifest import MAX_FILES

INCOMING = "incoming"
MAX_BUNDLE_BYTES = 512 * 1024**2
#: a bundle's name in ``incoming``: nothing hidden, no directory
PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")
BLOCK = 512
CHUNK = 1 << 20
#: a copy left by an installer killed mid-way is deleted by the next one after this
STALE_S = 3600.0


@contextlib.contextmanager
def open_dir(path: Path, dir_fd: int | None = None) -> Iterator[int]:
    """A directory's descriptor; ``OSError`` if it is a symbolic link (or not a
    directory)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dir_fd)
    try:
        yield fd
    finally:
        os.close(fd)


def open_regular(name: str, dir_fd: int) -> tuple[int, os.stat_result]:
    """``name`` in the directory ``dir_fd``, opened read-only without following a link
    nor blocking; ``ValueError`` unless it is a regular file."""
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise ValueError(f"{name} is not a regular file")
    return fd, info


def read_small(name: str, dir_fd: int, limit: int) -> bytes:
    """At most ``limit + 1`` bytes of the regular file ``name`` (the caller refuses
    more)."""
    fd, _ = open_regular(name, dir_fd)
    with os.fdopen(fd, "rb") as f:
        return f.read(limit + 1)


def take(state: Path, name: str, dest: Path) -> Path:
    """A root-only copy, in ``dest``, of ``<state>/incoming/<name>``; ``ValueError``
    naming the problem (a link, not a regular file, too large), ``BundleRefusedError``
    for a copy that is not a plain USTAR archive."""
    where = state / INCOMING
    try:
        with open_dir(state) as state_fd, open_dir(Path(INCOMING), state_fd) as in_fd:
            fd, info = open_regular(name, in_fd)
    except OSError as exc:
        raise ValueError(
            f"the install request's bundle must be a file in {where} (no links): "
            f"{exc.strerror or exc}"
        ) from exc
    with os.fdopen(fd, "rb") as source:
        if info.st_size > MAX_BUNDLE_BYTES:
            raise ValueError(f"{name} is larger than {MAX_BUNDLE_BYTES // 1024**2} MiB")
        copy = _private_file(dest, name)
        try:
            with open(copy, "r+b") as out:
                _copy(source, out, name)
                out.seek(0)
                check_headers(out)
        except BaseException:
            copy.unlink(missing_ok=True)
            raise
    return copy


def _private_file(dest: Path, name: str) -> Path:
    """A fresh 0600 file in ``dest`` (made 0700, root's), stale copies removed first."""
    dest.mkdir(mode=0o700, parents=True, exist_ok=True)
    if dest.is_symlink() or not dest.is_dir():
        raise ValueError(f"{dest} is not a directory")
    os.chmod(dest, 0o700)
    now = time.time()
    for old in dest.iterdir():
        with contextlib.suppress(OSError):
            if now - old.lstat().st_mtime > STALE_S:
                old.unlink()
    copy = dest / f"{name}.{os.getpid()}.{time.monotonic_ns()}"
    os.close(os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))
    return copy


def _copy(source: BinaryIO, out: BinaryIO, name: str) -> None:
    copied = 0
    while chunk := source.read(CHUNK):
        copied += len(chunk)
        if copied > MAX_BUNDLE_BYTES:
            raise ValueError(f"{name} is larger than {MAX_BUNDLE_BYTES // 1024**2} MiB")
        out.write(chunk)
    out.flush()


def check_headers(f: BinaryIO) -> None:
    """Every header of the tar in ``f`` is a POSIX USTAR regular file (what
    :func:`releases.bundle.make` writes), and there are at most a bundle's few:
    no pax or GNU extension whose length ``tarfile`` would believe.  A short read
    stops here; verification then calls the bundle cut short."""
    offset = 0
    for _ in range(MAX_FILES + 3):
        f.seek(offset)
        header = f.read(BLOCK)
        if len(header) < BLOCK or header == bytes(BLOCK):
            return  # the end (two zero blocks), or cut short
        if header[257:265] != b"ustar\x0000" or header[156:157] not in (b"0", b"\0"):
            raise BundleRefusedError(
                "format", "not a Legato bundle: it holds a tar entry that is not a plain file"
            )
        try:
            size = int(header[124:136].rstrip(b"\0 ").decode("ascii") or "0", 8)
        except ValueError as exc:
            raise BundleRefusedError("format", "not a Legato bundle: a bad tar header") from exc
        offset += BLOCK + -(-size // BLOCK) * BLOCK
    raise BundleRefusedError("format", "not a Legato bundle: it holds too many entries")
