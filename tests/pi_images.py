"""Disk images laid out as Raspberry Pi OS lays them out, for legato-flash's tests.

An MBR with a FAT32 boot partition (type 0x0c) at 4 MiB (older images, booted with a
firstrun script from cmdline.txt) or 8 MiB (newer ones, with cloud-init seed files),
and a root partition filled with random bytes whose digest a test checks is unchanged.
The FAT is made by mkfs.fat and filled with mtools, independently of the code under test.
"""

from __future__ import annotations

import hashlib
import os
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

MIB = 1 << 20
STOCK_CONFIG = """# For more options and information see
# http://rptl.io/configtxt
# Some settings may impact device functionality. See link above for details

# Uncomment some or all of these to enable the optional hardware interfaces
#dtparam=i2c_arm=on
#dtparam=i2s=on
#dtparam=spi=on

# Enable audio (loads snd_bcm2835)
dtparam=audio=on

# Automatically load overlays for detected cameras
camera_auto_detect=1

# Automatically load overlays for detected DSI displays
display_auto_detect=1

# Automatically load initramfs files, if found
auto_initramfs=1

# Enable DRM VC4 V3D driver
dtoverlay=vc4-kms-v3d
max_framebuffers=2

# Don't have the firmware create an initial video= setting in cmdline.txt.
# Use the kernel's default instead.
disable_fw_kms_setup=1

# Run in 64-bit mode
arm_64bit=1

# Disable compensation for displays with overscan
disable_overscan=1

# Run as fast as firmware / board allows
arm_boost=1

[cm4]
# Enable host mode on the 2711 built-in XHCI USB controller.
otg_mode=1

[cm5]
dtoverlay=dwc2,dr_mode=host

[all]
"""
STOCK_CMDLINE = (
    "console=serial0,115200 console=tty1 root=PARTUUID=4e639091-02 rootfstype=ext4 "
    "fsck.repair=yes rootwait quiet init=/usr/lib/raspberrypi-sys-mods/firstboot\n"
)
STOCK_USER_DATA = "#cloud-config\n# This is the user-data configuration file for cloud-init.\n"
STOCK_META_DATA = "instance-id: rpios-image\n"
STOCK_NETWORK = "network:\n  version: 2\n"


@dataclass(frozen=True, slots=True)
class PiImage:
    path: Path
    boot_start: int
    boot_size: int
    root_start: int
    root_size: int
    root_sha256: str

    def root_digest(self) -> str:
        with self.path.open("rb") as f:
            f.seek(self.root_start)
            return hashlib.sha256(f.read(self.root_size)).hexdigest()


def mtools(*args: str, data: bytes | None = None) -> bytes:
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1", "MTOOLSRC": os.devnull}
    done = subprocess.run(args, input=data, capture_output=True, env=env, check=True)
    return done.stdout


def read_boot_file(image: PiImage, name: str) -> bytes | None:
    target = f"{image.path}@@{image.boot_start}"
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1", "MTOOLSRC": os.devnull}
    done = subprocess.run(
        ["mcopy", "-n", "-i", target, f"::/{name}", "-"], capture_output=True, env=env
    )
    return done.stdout if done.returncode == 0 else None


def boot_names(image: PiImage) -> list[str]:
    out = mtools("mdir", "-/", "-b", "-i", f"{image.path}@@{image.boot_start}", "::/")
    return sorted(line[3:] for line in out.decode().splitlines() if not line.endswith("/"))


def mbr(entries: list[tuple[int, int, int]]) -> bytes:
    """A first sector with up to four (type, first LBA, sectors) entries."""
    sector = bytearray(512)
    struct.pack_into("<I", sector, 440, 0x4E639091)  # disk id, as PARTUUID uses
    for i, (kind, lba, count) in enumerate(entries):
        struct.pack_into(
            "<B3sB3sII", sector, 446 + 16 * i, 0, b"\0\0\0", kind, b"\0\0\0", lba, count
        )
    sector[510:512] = b"\x55\xaa"
    return bytes(sector)


def make_image(
    path: Path,
    *,
    cloud_init: bool,
    boot_mib: int = 64,
    root_mib: int = 8,
    bookworm: bool = True,
    extra_files: dict[str, bytes] | None = None,
) -> PiImage:
    """A Raspberry Pi OS-like image at ``path``."""
    boot_start = (8 if cloud_init else 4) * MIB
    boot_size, root_size = boot_mib * MIB, root_mib * MIB
    root_start = boot_start + boot_size
    fat = path.with_suffix(".bootfs")
    fat.unlink(missing_ok=True)
    subprocess.run(
        ["mkfs.fat", "-F", "32", "-n", "bootfs", "-C", str(fat), str(boot_size // 1024)],
        check=True,
        capture_output=True,
    )
    files = {
        "config.txt": STOCK_CONFIG.encode(),
        "cmdline.txt": STOCK_CMDLINE.encode(),
        "issue.txt": b"Raspberry Pi reference 2025-05-13\n",
        "start4.elf": os.urandom(4096),
    }
    if bookworm:
        files["bcm2712-rpi-5-b.dtb"] = os.urandom(2048)
    if cloud_init:
        files |= {
            "user-data": STOCK_USER_DATA.encode(),
            "meta-data": STOCK_META_DATA.encode(),
            "network-config": STOCK_NETWORK.encode(),
        }
    files |= extra_files or {}
    for name, data in files.items():
        if "/" in name:
            folder = name.rsplit("/", 1)[0]
            subprocess.run(
                ["mmd", "-D", "s", "-i", str(fat), f"::/{folder}"],
                capture_output=True,
                env={**os.environ, "MTOOLS_SKIP_CHECK": "1"},
            )
        staged = path.with_name(name.replace("/", "_"))
        staged.write_bytes(data)
        mtools("mcopy", "-o", "-i", str(fat), str(staged), f"::/{name}")
        staged.unlink()
    root = os.urandom(root_size)
    with path.open("wb") as out:
        out.write(
            mbr(
                [
                    (0x0C, boot_start // 512, boot_size // 512),
                    (0x83, root_start // 512, root_size // 512),
                ]
            )
        )
        out.seek(boot_start)
        out.write(fat.read_bytes())
        out.write(root)
    fat.unlink()
    return PiImage(
        path, boot_start, boot_size, root_start, root_size, hashlib.sha256(root).hexdigest()
    )
