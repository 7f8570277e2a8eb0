"""The work done per file, in a worker process: scan, then decode, measure, encode.

Both steps return a value and never raise for a bad file, so one corrupt file
cannot take a run (or a process pool) down.  ``encode_file`` leaves a failed
track's directory removed: a track is in the store whole or not at all.
"""

from __future__ import annotations

import logging
import shutil
import signal
from pathlib import Path

from connect_protocol.media import Quality, segment_boundaries
from hub.catalog import resolve as catalog
from hub.errors import IngestError
from hub.files import write_atomic
from hub.ingest import loudness
from hub.ingest.decode import decode
from hub.ingest.encode import encode_rendition
from hub.ingest.integrity import check_complete
from hub.ingest.model import Encoded, Failed, Scanned
from hub.ingest.sources import check_supported, content_hash
from hub.ingest.tags import read_file_info
from hub.media import store

logger = logging.getLogger(__name__)


def ignore_interrupts() -> None:
    """Pool initializer: Ctrl-C is the parent's to handle, not each worker's."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


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


def encode_file(path: Path, digest: str, data_dir: Path) -> Encoded | Failed:
    """Everything but the catalog: segments of every quality in the store, verified."""
    track_id = track_id_for(digest)
    try:
        source = decode(path)
        check_complete(path, source.frames)
        measured = loudness.measure(source.pcm, source.rate)
        bounds = segment_boundaries(source.frames, source.rate)
        renditions = []
        for quality in Quality:

            def put(n: int, blob: bytes, q: Quality = quality) -> None:
                write_atomic(store.segment_path(data_dir, track_id, q, n), blob)

            renditions.append(encode_rendition(source.pcm, source.rate, bounds, quality, put))
    except Exception as exc:  # any failure is this file's, reported by its name
        shutil.rmtree(store.track_dir(data_dir, track_id), ignore_errors=True)
        if isinstance(exc, IngestError):
            return Failed(path, str(exc))
        if isinstance(exc, OSError):
            return Failed(path, f"cannot write the store: {exc.strerror or exc}")
        logger.debug("unexpected failure on %s", path, exc_info=True)
        return Failed(path, f"unexpected {type(exc).__name__}: {exc}")
    return Encoded(
        path=path,
        content_hash=digest,
        track_id=track_id,
        frames=source.frames,
        sample_rate=source.rate,
        channels=source.pcm.shape[1],
        boundaries=tuple(bounds),
        renditions=tuple(renditions),
        loudness=measured,
    )
