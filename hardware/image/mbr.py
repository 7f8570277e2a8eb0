"""The MBR partition table of a disk image, read from its first sector.

Raspberry Pi OS images are MBR disks: partition 1 is the FAT boot partition (type
0x0c), partition 2 the ext4 root.  A GPT disk (a protective MBR with type 0xee) or
anything else is refused with a message that says what was found.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from hardware.errors import FlashError

SECTOR = 512
#: FAT12/16/32 partition types, CHS and LBA variants.
FAT_TYPES = frozenset({0x01, 0x04, 0x06, 0x0B, 0x0C, 0x0E})
GPT_PROTECTIVE = 0xEE
_ENTRY = struct.Struct("<B3sB3sII")


@dataclass(frozen=True, slots=True)
class Partition:
    number: int  # 1-4
    kind: int  # the MBR type byte
    start: int  # bytes from the start of the disk
    size: int  # bytes

    @property
    def end(self) -> int:
        return self.start + self.size

    @property
    def is_fat(self) -> bool:
        return self.kind in FAT_TYPES


def partitions(first_sector: bytes) -> list[Partition]:
    """The primary partitions in an MBR, in table order; FlashError if it is not one."""
    if len(first_sector) < SECTOR:
        raise FlashError("the image is shorter than one sector: not a disk image")
    if first_sector[510:512] != b"\x55\xaa":
        raise FlashError(
            "no MBR partition table (boot signature 55 AA missing): "
            "is this a Raspberry Pi OS .img (not a .zip or a single partition)?"
        )
    found = []
    for number in range(1, 5):
        offset = 446 + 16 * (number - 1)
        _status, _chs1, kind, _chs2, lba, sectors = _ENTRY.unpack_from(first_sector, offset)
        if kind == GPT_PROTECTIVE:
            raise FlashError(
                "this is a GPT disk; legato-flash edits MBR images like Raspberry Pi OS's"
            )
        if kind and sectors:
            found.append(Partition(number, kind, lba * SECTOR, sectors * SECTOR))
    if not found:
        raise FlashError("the partition table is empty")
    return found


def boot_partition(parts: list[Partition], image_size: int) -> Partition:
    """The first FAT partition, which must lie wholly inside the image."""
    fat = [p for p in parts if p.is_fat]
    if not fat:
        kinds = ", ".join(f"0x{p.kind:02x}" for p in parts)
        raise FlashError(f"no FAT boot partition in the image (partition types: {kinds})")
    boot = fat[0]
    last = max(p.end for p in parts)
    if last > image_size:
        raise FlashError(
            f"the image is truncated: its partitions need {last:,} bytes, "
            f"the file has {image_size:,} (download it again)"
        )
    return boot
