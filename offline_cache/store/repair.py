"""Repair after a crash: make the index and the blobs on disk agree again.

A blob is renamed into place before its index row is inserted, so after an
unclean stop the files can only be ahead of the index: leftovers in ``tmp/``
and blobs with no row are removed.  Rows whose blob is gone (a disk that lost
writes, someone deleting files) are removed too, so the segment is fetched again.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass

from offline_cache.store.blobs import Blobs
from offline_cache.store.index import Address, Index


@dataclass(frozen=True, slots=True)
class Consistency:
    """What a scan found (and removed): for the crash tests and ``legato-speaker cache check``."""

    rows_without_blob: int
    blobs_without_row: int
    temp_files: int


def repair(index: Index, blobs: Blobs) -> Consistency:
    """Make the index and the files agree (after a crash); returns what was removed."""
    temp = 0
    for leftover in blobs.tmp.iterdir():
        leftover.unlink(missing_ok=True)
        temp += 1
    indexed = index.segment_addresses()
    tracks = index.track_ids()
    on_disk: set[Address] = set()
    orphans = 0
    for track_dir in blobs.dir.iterdir():
        if track_dir.name not in tracks:
            shutil.rmtree(track_dir, ignore_errors=True)
            orphans += 1
            continue
        for quality_dir in track_dir.iterdir():
            for blob in quality_dir.iterdir():
                address = (track_dir.name, quality_dir.name, int(blob.stem))
                if address in indexed:
                    on_disk.add(address)
                else:
                    blob.unlink(missing_ok=True)
                    orphans += 1
    missing = indexed - on_disk
    if missing:
        index.delete_segments(sorted(missing))
    return Consistency(rows_without_blob=len(missing), blobs_without_row=orphans, temp_files=temp)
