"""``legato-flash --write DEVICE``: the customised image onto a card, read back.

Before a byte is written the target is refused if it is mounted (it or any of its
partitions), if it holds the running system's root, or if it is smaller than the
image.  :func:`refusal` is that rule over plain values; the rest reads the system
(``/proc/self/mounts``, ``/proc/self/mountinfo``, ``/sys/dev/block``) and writes.
A regular file is accepted as a target too (a card image to write later).
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from hardware.errors import FlashError
from hardware.progress import Progress

CHUNK = 4 << 20
SYNC_EVERY = 64 << 20
T = TypeVar("T")


def _plain(path: Path, flags: int, use: Callable[[int], None]) -> None:
    """A regular file as the target (a card image to write later)."""
    try:
        fd = os.open(path, flags | os.O_CLOEXEC)
    except OSError as exc:
        raise FlashError(f"cannot open {path}: {exc.strerror}") from exc
    try:
        use(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True, slots=True)
class Target:
    path: str
    size: int
    block: bool
    mounted: tuple[str, ...]  # mount points of the target or its partitions
    holds_root: bool


def refusal(image_size: int, target: Target) -> str | None:
    """Why ``target`` must not be written with an image of ``image_size`` bytes, or None."""
    if target.holds_root:
        return f"{target.path} holds the system this computer is running from: not writing it"
    if target.mounted:
        where = ", ".join(target.mounted)
        return f"{target.path} is mounted ({where}): unmount it first (e.g. udisksctl unmount)"
    if target.size < image_size:
        return (
            f"{target.path} is too small: {target.size:,} bytes for an image of "
            f"{image_size:,} bytes"
        )
    return None


def _disk_of(dev: int) -> str:
    """The whole disk (``sdb``, ``mmcblk0``) a block device number belongs to."""
    sys_path = Path(f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}").resolve()
    return sys_path.parent.name if (sys_path / "partition").exists() else sys_path.name


def _root_device() -> int | None:
    try:
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            fields = line.split()
            if len(fields) > 4 and fields[4] == "/":
                major, minor = fields[2].split(":")
                return os.makedev(int(major), int(minor))
    except OSError:
        return None
    return None


def mounted_from(target_disk: str, mounts: list[tuple[str, str]]) -> tuple[str, ...]:
    """Mount points whose source is ``/dev/<target_disk>`` or one of its partitions."""
    found = []
    for source, point in mounts:
        name = os.path.basename(os.path.realpath(source)) if source.startswith("/dev/") else ""
        if name and (name == target_disk or _is_partition_of(name, target_disk)):
            found.append(point)
    return tuple(found)


def _is_partition_of(name: str, disk: str) -> bool:
    rest = name.removeprefix(disk)
    return rest != name and (rest.isdigit() or (rest.startswith("p") and rest[1:].isdigit()))


def _mounts() -> list[tuple[str, str]]:
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return []
    return [(f[0], f[1]) for f in (line.split() for line in lines) if len(f) > 1]


def inspect(path: Path) -> Target:
    """What ``path`` is: its size, whether it is a disk, mounted, or the system's own."""
    try:
        info = path.stat()
    except OSError as exc:
        raise FlashError(f"cannot use {path} as a card: {exc.strerror}") from exc
    if stat.S_ISREG(info.st_mode):
        return Target(str(path), info.st_size, block=False, mounted=(), holds_root=False)
    if not stat.S_ISBLK(info.st_mode):
        raise FlashError(f"{path} is neither a block device nor a file")
    sys_path = Path(f"/sys/dev/block/{os.major(info.st_rdev)}:{os.minor(info.st_rdev)}")
    if (sys_path / "partition").exists():
        raise FlashError(
            f"{path} is a partition ({os.path.realpath(path)}): name the whole card, "
            f"e.g. /dev/{_disk_of(info.st_rdev)}"
        )
    size = _open_exclusive(path, os.O_RDONLY, lambda fd: os.lseek(fd, 0, os.SEEK_END))
    disk = _disk_of(info.st_rdev)
    root = _root_device()
    holds_root = root is not None and _disk_of(root) == disk
    return Target(str(path), size, True, mounted_from(disk, _mounts()), holds_root)


def _open_exclusive(path: Path, flags: int, use: Callable[[int], T]) -> T:
    """``use`` an fd of ``path`` opened with O_EXCL: for a block device the kernel then
    refuses (EBUSY) a disk that is mounted or held (LVM, RAID, LUKS, swap)."""
    try:
        fd = os.open(path, flags | os.O_EXCL | os.O_CLOEXEC)
    except PermissionError as exc:
        raise FlashError(
            f"no permission to open {path}: run with sudo, or join the 'disk' group"
        ) from exc
    except OSError as exc:
        if exc.errno == errno.EBUSY:
            raise FlashError(
                f"{path} is in use (mounted, or part of LVM, RAID, encryption or swap)"
            ) from exc
        raise FlashError(f"cannot open {path}: {exc.strerror}") from exc
    try:
        return use(fd)
    finally:
        os.close(fd)


def write(image: Path, target: Path) -> str:
    """Copy ``image`` onto ``target``, then read it back and compare; the image's SHA-256."""
    size = image.stat().st_size
    written = hashlib.sha256()
    progress = Progress(f"writing {target}", size)

    def copy(fd: int) -> None:
        with image.open("rb") as src:
            since_sync = 0
            while chunk := src.read(CHUNK):
                os.write(fd, chunk)
                written.update(chunk)
                since_sync += len(chunk)
                if since_sync >= SYNC_EVERY:  # the bar follows the card, not the cache
                    os.fdatasync(fd)
                    since_sync = 0
                progress.update(len(chunk))
            os.fsync(fd)
            # Read the card, not the page cache the write just filled.
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)

    flags = os.O_WRONLY if target.is_block_device() else os.O_WRONLY | os.O_CREAT
    try:
        _open_exclusive(target, flags, copy) if target.is_block_device() else _plain(
            target, flags, copy
        )
    except OSError as exc:
        raise FlashError(f"writing {target} failed: {exc.strerror or exc}") from exc
    progress.close()
    verify = Progress(f"verifying {target}", size)
    read_back = hashlib.sha256()
    with target.open("rb") as f:  # (opened already once: permissions are not the issue)
        left = size
        while left and (chunk := f.read(min(CHUNK, left))):
            read_back.update(chunk)
            verify.update(len(chunk))
            left -= len(chunk)
    verify.close()
    if read_back.digest() != written.digest():
        raise FlashError(f"{target} does not read back what was written: the card may be failing")
    return written.hexdigest()
