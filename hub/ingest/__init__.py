"""Audio ingest: source files in, the catalog's tracks and their Ogg Vorbis ladder out.

One module per job: ``sources`` (which files, content hash), ``tags``
(mutagen), ``decode`` (PyAV to float PCM), ``integrity`` (truncation),
``loudness`` (EBU R128), ``encode`` (the ladder, cut and verified),
``oggpages`` (a libav trimming quirk), ``worker`` (one file), ``commit`` (the
catalog transaction), ``pipeline`` (a whole run, in parallel), ``model`` (the
values passed between them), ``progress`` (what the CLI shows) and ``jobs``
(the dashboard's one background ingest at a time).

    ingest_paths(db, data_dir, [Path("~/Music")], jobs=None,
                 on_progress=..., on_result=...) -> list[IngestResult]
"""

from __future__ import annotations

from hub.errors import IngestError
from hub.ingest.model import IngestResult, Progress
from hub.ingest.pipeline import default_jobs, ingest_paths

__all__ = ["IngestError", "IngestResult", "Progress", "default_jobs", "ingest_paths"]
