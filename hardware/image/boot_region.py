"""Edit an image's boot partition as one transaction: all the edits, or none.

The partition's bytes are copied into a scratch file next to the image, edited
there through mtools, and copied back only when every edit succeeded, chunk by
chunk and only the chunks that changed.  The cost follows the boot partition (a
few hundred MiB), never the image (the root partition is neither read nor written).
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

from hardware.errors import FlashError
from hardware.image.fat import FatVolume
from hardware.image.mbr import SECTOR, Partition, boot_partition, partitions

CHUNK = 1 << 20


def find_boot(image: Path) -> Partition:
    """The image's FAT boot partition, or a FlashError saying what is wrong with it."""
    try:
        with image.open("rb") as f:
            first = f.read(SECTOR)
            size = os.fstat(f.fileno()).st_size
    except OSError as exc:
        raise FlashError(f"cannot read {image}: {exc.strerror}") from exc
    return boot_partition(partitions(first), size)


def _copy_range(src: int, dst: int, offset: int, size: int) -> None:
    """``size`` bytes from ``src`` at ``offset`` to the start of ``dst``, in the kernel."""
    done = 0
    while done < size:
        try:
            n = os.copy_file_range(src, dst, size - done, offset + done, done)
        except OSError:  # no copy_file_range across these file systems
            n = os.pwrite(dst, os.pread(src, min(CHUNK, size - done), offset + done), done)
        if n <= 0:
            raise FlashError("the image ended early while copying its boot partition")
        done += n


def write_back(scratch: Path, image: Path, part: Partition) -> int:
    """Copy the chunks of ``scratch`` that differ into ``image`` at the partition; bytes written."""
    changed = 0
    with scratch.open("rb") as src, image.open("r+b") as dst:
        for offset in range(0, part.size, CHUNK):
            length = min(CHUNK, part.size - offset)
            new = os.pread(src.fileno(), length, offset)
            if new != os.pread(dst.fileno(), length, part.start + offset):
                os.pwrite(dst.fileno(), new, part.start + offset)
                changed += length
        os.fsync(dst.fileno())
    return changed


@contextlib.contextmanager
def editing(image: Path, *, commit: bool = True) -> Iterator[FatVolume]:
    """The boot partition of ``image`` as a :class:`FatVolume` to edit; written back
    when the block ends without an exception and ``commit`` is true."""
    part = find_boot(image)
    scratch = image.with_name(f".{image.name}.legato-boot")
    try:
        # 0600: the scratch copy will hold the speaker's secrets and the Wi-Fi key
        fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with image.open("rb") as src, open(fd, "wb") as dst:
            _copy_range(src.fileno(), dst.fileno(), part.start, part.size)
    except OSError as exc:
        scratch.unlink(missing_ok=True)
        raise FlashError(f"cannot copy the boot partition next to {image}: {exc}") from exc
    try:
        yield FatVolume(scratch)
        if commit:
            # Ctrl-C must not leave half a boot partition behind: held until done
            blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
            try:
                write_back(scratch, image, part)
            except OSError as exc:
                raise FlashError(
                    f"writing the edited boot partition into {image} failed: {exc.strerror or exc}"
                ) from exc
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    finally:
        scratch.unlink(missing_ok=True)
