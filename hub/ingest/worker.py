"""The work done per file, in a worker process: scan, then check, measure and encode.

Both steps return a value and never raise for a bad file, so one corrupt file
cannot take a run down.  ``encode_file`` reads the file twice, a block at a
time, so its memory does not depend on the track's length:

1. check: decode to the end keeping nothing, stopping at the duration limit;
   samples must be finite and the length what the container declares
   (``integrity``).  A file that fails here has cost no encoding and no store.
2. encode: decode again into the loudness and feature meters and the four
   renditions, whose segment boundaries follow from the length found in step 1.

A failed track's directory is removed: a track is in the store whole or not at
all.  (A worker that dies mid-file cannot do that; the pipeline does it then.)
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path

from connect_protocol.media import Quality, segment_boundaries
from hub.catalog import resolve as catalog
from hub.errors import IngestError
from hub.files import write_atomic
from hub.ingest.decode import PcmReader
from hub.ingest.encode import RenditionEncoder
from hub.ingest.features import FeatureMeter
from hub.ingest.integrity import check_complete
from hub.ingest.limits import IngestLimits
from hub.ingest.loudness import LoudnessMeter
from hub.ingest.model import Encoded, EncodeJob, Failed, Remeasured, Scanned
from hub.ingest.sources import check_supported, content_hash
from hub.ingest.tags import read_file_info
from hub.media import store

logger = logging.getLogger(__name__)


def track_id_for(content: str) -> str:
    return catalog.base62_id(content)


def scan_file(path: Path) -> Scanned | Failed:
    try:
        check_supported(path)
        digest = content_hash(path)
    except IngestError as exc:
        return Failed(path, str(exc))
    except OSError as exc:
        return Failed(path, f"cannot read: {exc.strerror or exc}")
    return Scanned(path=path, content_hash=digest, info=read_file_info(path))


def encode_job(job: EncodeJob) -> Encoded | Remeasured | Failed:
    """``encode_file`` (or ``measure_file``) for one job of a worker pool."""
    if job.remeasure_lufs is not None:
        return measure_file(job.path, job.content_hash, job.remeasure_lufs, job.limits)
    return encode_file(job.path, job.content_hash, job.data_dir, job.limits)


def measure_file(
    path: Path, digest: str, lufs: float, limits: IngestLimits | None = None
) -> Remeasured | Failed:
    """Only the audio features of a track already in the store (one decode, nothing written)."""
    limits = limits or IngestLimits()
    try:
        with PcmReader(path, limits=limits) as reader:
            meter = FeatureMeter(reader.rate, reader.channels)
            for block in reader.blocks():
                meter.feed(block)
    except Exception as exc:  # this file's failure; its track stays as it is
        if isinstance(exc, MemoryError):
            return Failed(path, limits.out_of_memory())
        return Failed(path, str(exc) if isinstance(exc, IngestError) else repr(exc))
    return Remeasured(path=path, track_id=track_id_for(digest), features=meter.result(lufs))


def encode_file(
    path: Path, digest: str, data_dir: Path, limits: IngestLimits | None = None
) -> Encoded | Failed:
    """Everything but the catalog: segments of every quality in the store, verified."""
    limits = limits or IngestLimits()
    track_id = track_id_for(digest)
    try:
        return _encode(path, digest, data_dir, limits, track_id)
    except Exception as exc:  # any failure is this file's, reported by its name
        shutil.rmtree(store.track_dir(data_dir, track_id), ignore_errors=True)
        if isinstance(exc, IngestError):
            return Failed(path, str(exc))
        if isinstance(exc, MemoryError):
            return Failed(path, limits.out_of_memory())
        if isinstance(exc, OSError):
            return Failed(path, f"cannot write the store: {exc.strerror or exc}")
        logger.debug("unexpected failure on %s", path, exc_info=True)
        return Failed(path, f"unexpected {type(exc).__name__}: {exc}")


def _encode(
    path: Path, digest: str, data_dir: Path, limits: IngestLimits, track_id: str
) -> Encoded:
    with PcmReader(path, limits=limits) as reader:
        frames = reader.check()
    check_complete(path, frames)
    with PcmReader(path, limits=limits) as reader:
        bounds = segment_boundaries(frames, reader.rate)
        meter = LoudnessMeter(reader.rate, reader.channels)
        features = FeatureMeter(reader.rate, reader.channels)
        ladder = [
            RenditionEncoder(
                quality, reader.rate, reader.channels, bounds, _put(data_dir, track_id, quality)
            )
            for quality in Quality
        ]
        for block in reader.blocks():
            if reader.frames > frames:
                break
            meter.feed(block)
            features.feed(block)
            for rendition in ladder:
                rendition.feed(block)
        if reader.frames != frames:
            raise IngestError(
                f"decoded {frames} frames, then {reader.frames}: the decoder is not repeatable"
            )
    loudness = meter.result()
    return Encoded(
        path=path,
        content_hash=digest,
        track_id=track_id,
        frames=frames,
        sample_rate=reader.rate,
        channels=reader.channels,
        boundaries=tuple(bounds),
        renditions=tuple(rendition.finish() for rendition in ladder),
        loudness=loudness,
        features=features.result(loudness.lufs),
    )


def _put(data_dir: Path, track_id: str, quality: Quality) -> Callable[[int, bytes], None]:
    def put(n: int, blob: bytes) -> None:
        write_atomic(store.segment_path(data_dir, track_id, quality, n), blob)

    return put
