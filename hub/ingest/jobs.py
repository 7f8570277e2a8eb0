"""One ingest at a time in the background, for the dashboard to start and watch.

The same pipeline as ``legato-hub ingest`` (hub/ingest/), run on a thread with
one worker process (a dashboard ingest is a handful of files; a whole library
is the CLI's job, with a worker per core).  Nothing is decoded in the hub's own
process, and ``limits`` (the duration limit and the worker's memory, which
``legato-hub up`` and ``serve`` set from their flags) bound what a file costs.  The job
keeps its progress and one line per file (added, already present, or the
error), which the page polls.  Uploaded files live under ``uploads/`` in the
data directory only until their job ends.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from hub.clock import now_ms
from hub.db import Database
from hub.errors import IngestBusy
from hub.ingest.limits import IngestLimits
from hub.listening.imports import rematch

logger = logging.getLogger(__name__)

JobState = Literal["running", "done", "failed"]
MAX_RESULTS = 2000  # lines kept per job; the counts stay exact beyond them


@dataclass(slots=True, kw_only=True)
class FileLine:
    path: str
    status: str
    name: str | None = None
    error: str | None = None


@dataclass(slots=True, kw_only=True)
class Job:
    id: int
    source: str  # what the operator gave: "upload of 3 files" or a server path
    state: JobState = "running"
    stage: str = "scan"
    done: int = 0
    total: int = 0
    started_ms: int = field(default_factory=now_ms)
    finished_ms: int | None = None
    error: str | None = None
    counts: dict[str, int] = field(default_factory=lambda: {"added": 0, "present": 0, "failed": 0})
    files: list[FileLine] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source,
            "state": self.state,
            "stage": self.stage,
            "done": self.done,
            "total": self.total,
            "started_ms": self.started_ms,
            "finished_ms": self.finished_ms,
            "error": self.error,
            "counts": dict(self.counts),
            "files": [_line(f) for f in self.files],
            "errors": [_line(f) for f in self.files if f.status == "failed"],
        }


def _line(f: FileLine) -> dict[str, Any]:
    return {"path": f.path, "status": f.status, "name": f.name, "error": f.error}


class IngestJobs:
    """Start a job (refused while one runs) and read the latest one."""

    def __init__(self, db: Database, data_dir: Path, limits: IngestLimits | None = None) -> None:
        self.db, self.data_dir = db, data_dir
        self.limits = limits or IngestLimits()  # read when a job starts
        self._lock = threading.Lock()
        self._job: Job | None = None
        self._thread: threading.Thread | None = None
        self._next_id = 1

    @property
    def uploads(self) -> Path:
        return self.data_dir / "uploads"

    def current(self) -> dict[str, Any] | None:
        with self._lock:
            return None if self._job is None else self._job.to_json()

    def running(self) -> bool:
        with self._lock:
            return self._job is not None and self._job.state == "running"

    def reserve_upload_dir(self) -> Path:
        """A fresh folder for an upload's files (refused while a job runs)."""
        if self.running():
            raise IngestBusy("An ingest is already running; wait for it to finish")
        self.uploads.mkdir(parents=True, exist_ok=True, mode=0o700)
        with self._lock:
            folder = self.uploads / f"job-{self._next_id}-{now_ms()}"
        folder.mkdir()
        return folder

    def start(self, paths: Sequence[Path], source: str, *, remove: Path | None = None) -> Job:
        """Begin ingesting ``paths``; ``remove`` (an upload folder) goes when it ends."""
        with self._lock:
            if self._job is not None and self._job.state == "running":
                raise IngestBusy("An ingest is already running; wait for it to finish")
            job = self._job = Job(id=self._next_id, source=source)
            self._next_id += 1
            self._thread = threading.Thread(
                target=self._run, args=(job, list(paths), remove), name="ingest-job", daemon=True
            )
        self._thread.start()
        return job

    def wait(self, timeout_s: float | None = None) -> None:
        """Until the running job ends (the hub's shutdown, tests)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout_s)

    # --- the job's thread ----------------------------------------------------------

    def _run(self, job: Job, paths: list[Path], remove: Path | None) -> None:
        # Imported here: numpy, PyAV and scipy are heavy and only ingest needs them.
        from hub.ingest import IngestError, IngestResult, Progress, ingest_paths

        def progress(update: Progress) -> None:
            with self._lock:
                job.stage, job.done, job.total = update.stage, update.done, update.total

        def result(res: IngestResult) -> None:
            shown = res.path.name if remove is not None else str(res.path)
            with self._lock:
                job.counts[res.status] = job.counts.get(res.status, 0) + 1
                if len(job.files) < MAX_RESULTS:
                    job.files.append(
                        FileLine(path=shown, status=res.status, name=res.name, error=res.error)
                    )

        state: JobState = "done"
        error: str | None = None
        try:
            results = ingest_paths(
                self.db,
                self.data_dir,
                paths,
                jobs=1,
                on_progress=progress,
                on_result=result,
                limits=self.limits,
            )
            if not results:
                state, error = "failed", "no .flac, .wav, .mp3 or .ogg files found there"
            elif any(r.status == "added" for r in results):
                rematch(self.db)  # imported plays waiting for these tracks
        except IngestError as exc:
            state, error = "failed", str(exc)
        except Exception as exc:  # the thread must always settle the job
            logger.exception("ingest job %d failed", job.id)
            state, error = "failed", f"ingest stopped: {exc}"
        finally:
            if remove is not None:
                shutil.rmtree(remove, ignore_errors=True)
        with self._lock:
            job.state, job.error, job.finished_ms = state, error, now_ms()
            if job.stage == "scan":
                job.done = job.total
