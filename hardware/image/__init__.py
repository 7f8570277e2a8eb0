"""Disk images as Raspberry Pi OS lays them out: an MBR, a FAT boot partition, a root.

``mbr`` reads the partition table (pure), ``fat`` edits files in a FAT volume
through mtools (no root, no mount), ``boot_region`` copies the boot partition out,
lets it be edited, and puts it back only when every edit succeeded.
"""
