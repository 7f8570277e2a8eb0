"""Audio ingest: source files in, the catalog's tracks and their Ogg Vorbis ladder out.

One module per job: ``sources`` (which files, content hash), ``tags``
(mutagen), ``decode`` (PyAV to float PCM, in blocks), ``integrity``
(truncation), ``loudness`` (EBU R128), ``features`` (tempo, key, spectral
shape: the audio features), ``encode`` (the ladder, cut and
verified), ``oggpages`` (a libav trimming quirk), ``limits`` (what one file may
cost: duration, worker memory), ``worker`` (one file), ``processes`` (worker
processes that may die), ``commit`` (the catalog transaction), ``pipeline`` (a
whole run, in parallel), ``model`` (the values passed between them),
``progress`` (what the CLI shows) and ``jobs`` (the dashboard's one background
ingest at a time).

Every file is decoded in a worker process, a block at a time: memory does not
grow with a track's length, a track over the duration limit fails as soon as
its decoded frames pass it, and a file that kills its worker fails alone.

    ingest_paths(db, data_dir, [Path("~/Music")], jobs=None, limits=IngestLimits(),
                 on_progress=..., on_result=...) -> list[IngestResult]
"""

from __future__ import annotations

from hub.errors import IngestError
from hub.ingest.limits import IngestLimits
from hub.ingest.model import IngestResult, Progress
from hub.ingest.pipeline import default_jobs, ingest_paths

__all__ = [
    "IngestError",
    "IngestLimits",
    "IngestResult",
    "Progress",
    "default_jobs",
    "ingest_paths",
]
