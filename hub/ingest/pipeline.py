"""An ingest run: find files, scan them, encode the new ones in parallel, commit.

1. Scan: content hash, tags, length.  Content the catalog has is "present";
   content that appears twice in the run is encoded once and the copy follows
   its fate.
2. Encode (``encode_file``): decode, loudness, audio features, the ladder.
   Content the catalog has from before ingest measured features is decoded
   once more for those alone (``measure_file``); it stays "present".

Both run in worker processes (``WorkerPool``), always, even for one file: this
process never hands a source file to libav, and a file that crashes its
decoder or exhausts its worker's memory is that file's failure; the run goes
on with a fresh worker.  Then:

3. Commit per album: album loudness gates all the album's blocks from this
   run together, so an album's tracks are committed once all of them are
   encoded (or failed), each track in its own transaction.

Results come back one per file, in the order the files were found;
``on_result`` sees each as it is settled, ``on_progress`` follows each stage.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shutil
from collections import Counter, defaultdict
from collections.abc import Callable, Generator, Iterator, Sequence
from pathlib import Path

from connect_protocol.media import Loudness
from hub.db import Database
from hub.ingest import loudness
from hub.ingest.commit import album_id_for, commit_features, commit_track, describe, unmeasured_lufs
from hub.ingest.limits import IngestLimits
from hub.ingest.model import (
    Encoded,
    EncodeJob,
    Failed,
    IngestResult,
    Progress,
    Remeasured,
    Scanned,
    Status,
)
from hub.ingest.processes import Lost, WorkerPool
from hub.ingest.sources import find_audio
from hub.ingest.tags import TrackInfo, track_info
from hub.ingest.worker import encode_job, scan_file, track_id_for
from hub.media import store

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[Progress], None]
ResultCallback = Callable[[IngestResult], None]


def default_jobs() -> int:
    return os.cpu_count() or 1


def _scan_all(
    pool: WorkerPool, files: list[Path], on_progress: ProgressCallback | None
) -> list[Scanned | Failed]:
    """Each file's hash and tags, in the order of ``files``."""
    found: dict[Path, Scanned | Failed] = {}
    for done, (path, answer) in enumerate(pool.run(scan_file, files), start=1):
        found[path] = Failed(path, answer.reason) if isinstance(answer, Lost) else answer
        if on_progress:
            on_progress(
                Progress(
                    stage="scan",
                    done=done,
                    total=len(files),
                    done_seconds=0.0,
                    total_seconds=0.0,
                    path=path,
                )
            )
    return [found[path] for path in files]


def _encode_all(
    pool: WorkerPool, jobs: list[EncodeJob]
) -> Generator[Encoded | Remeasured | Failed, None, None]:
    """Outcomes in completion order."""
    answers = pool.run(encode_job, jobs)
    with contextlib.closing(answers):
        for job, answer in answers:
            if isinstance(answer, Lost):  # its worker died: clean up what it left
                if job.remeasure_lufs is None:  # (a track measured again keeps its store)
                    track_dir = store.track_dir(job.data_dir, track_id_for(job.content_hash))
                    shutil.rmtree(track_dir, ignore_errors=True)
                yield Failed(job.path, answer.reason)
            else:
                yield answer


class _Run:
    """The parent's bookkeeping: albums waiting for their last track, results so far."""

    def __init__(self, db: Database, data_dir: Path, on_result: ResultCallback | None) -> None:
        self.db, self.data_dir, self.on_result = db, data_dir, on_result
        self.results: dict[Path, IngestResult] = {}
        self.infos: dict[Path, TrackInfo] = {}
        self.album_of: dict[Path, str] = {}
        self.copies: defaultdict[Path, list[Path]] = defaultdict(list)
        self.outstanding: Counter[str] = Counter()
        self.waiting: defaultdict[str, list[Encoded]] = defaultdict(list)
        self.remeasuring: dict[Path, Scanned] = {}  # present, measured for features only

    def settle(self, result: IngestResult) -> None:
        self.results[result.path] = result
        if self.on_result:
            self.on_result(result)
        for copy in self.copies.pop(result.path, []):
            same: Status = "failed" if result.status == "failed" else "present"
            self.settle(dataclasses.replace(result, path=copy, status=same))

    def expect(self, scanned: Scanned) -> None:
        info = track_info(scanned.info.tags, scanned.path)
        self.infos[scanned.path] = info
        self.album_of[scanned.path] = album = album_id_for(info)
        self.outstanding[album] += 1

    def finished(self, outcome: Encoded | Remeasured | Failed) -> None:
        if outcome.path in self.remeasuring:
            self.remeasured(outcome)
            return
        assert not isinstance(outcome, Remeasured)
        album = self.album_of[outcome.path]
        if isinstance(outcome, Failed):
            self.settle(IngestResult(path=outcome.path, status="failed", error=outcome.error))
        else:
            self.waiting[album].append(outcome)
        self.outstanding[album] -= 1
        if self.outstanding[album] == 0:
            self.commit_album(self.waiting.pop(album, []))

    def needs_features(self, item: Scanned, track_id: str) -> float | None:
        """A present track's loudness if it has no measured features (once per content)."""
        if any(s.content_hash == item.content_hash for s in self.remeasuring.values()):
            return None
        lufs = unmeasured_lufs(self.db, track_id)
        if lufs is not None:
            self.remeasuring[item.path] = item
        return lufs

    def remeasured(self, outcome: Encoded | Remeasured | Failed) -> None:
        """A present track's features: written, or logged (the track itself is fine)."""
        if isinstance(outcome, Remeasured):
            try:
                commit_features(self.db, outcome)
            except Exception:
                logger.exception("cannot store the features of %s", outcome.path)
        elif isinstance(outcome, Failed):
            logger.warning("cannot measure the features of %s: %s", outcome.path, outcome.error)

    def encode(
        self,
        outcomes: Iterator[Encoded | Remeasured | Failed],
        on_progress: ProgressCallback | None,
        seconds: dict[Path, float],
    ) -> None:
        total_seconds, done_seconds = sum(seconds.values()), 0.0

        def report(done: int, path: Path | None) -> None:
            if on_progress and seconds:
                on_progress(
                    Progress(
                        stage="encode",
                        done=done,
                        total=len(seconds),
                        done_seconds=done_seconds,
                        total_seconds=total_seconds,
                        path=path,
                    )
                )

        report(0, None)  # the stage starts now (for the ETA), not at its first file
        for done, outcome in enumerate(outcomes, start=1):
            self.finished(outcome)
            done_seconds += seconds[outcome.path]
            report(done, outcome.path)

    def discard_uncommitted(self, todo: list[Scanned]) -> None:
        """After an interruption: remove the segments of tracks that never made it in."""
        for item in todo:
            result = self.results.get(item.path)
            added = result is not None and result.status == "added"
            if not added and store.track_for_hash(self.db, item.content_hash) is None:
                track_dir = store.track_dir(self.data_dir, track_id_for(item.content_hash))
                shutil.rmtree(track_dir, ignore_errors=True)

    def commit_album(self, tracks: list[Encoded]) -> None:
        album_lufs, album_peak = loudness.album([t.loudness for t in tracks])
        for track in tracks:
            loud = Loudness(
                track_lufs=track.loudness.lufs,
                track_peak_dbtp=track.loudness.peak_dbtp,
                album_lufs=album_lufs,
                album_peak_dbtp=album_peak,
            )
            try:
                result = commit_track(self.db, self.data_dir, track, self.infos[track.path], loud)
            except Exception as exc:  # a catalog failure is this track's; the run goes on
                logger.debug("commit of %s failed", track.path, exc_info=True)
                if store.track_for_hash(self.db, track.content_hash) is None:
                    shutil.rmtree(
                        store.track_dir(self.data_dir, track.track_id), ignore_errors=True
                    )
                result = IngestResult(
                    path=track.path, status="failed", error=f"cannot add to the catalog: {exc}"
                )
            self.settle(result)


def _job(
    item: Scanned, data_dir: Path, limits: IngestLimits, remeasure_lufs: float | None = None
) -> EncodeJob:
    return EncodeJob(
        path=item.path,
        content_hash=item.content_hash,
        data_dir=data_dir,
        limits=limits,
        remeasure_lufs=remeasure_lufs,
    )


def ingest_paths(
    db: Database,
    data_dir: Path,
    paths: Sequence[Path],
    *,
    jobs: int | None = None,
    on_progress: ProgressCallback | None = None,
    on_result: ResultCallback | None = None,
    limits: IngestLimits | None = None,
) -> list[IngestResult]:
    """Ingest files and folders (recursively); one result per file, in the order found.

    Raises ``IngestError`` only for a path that does not exist; any problem with
    a file is that file's "failed" result.  ``db`` must be migrated.  ``jobs``
    worker processes scan and encode (default: one per CPU), each within ``limits``.
    """
    workers = jobs or default_jobs()
    limits = limits or IngestLimits()
    files = find_audio(paths)
    run = _Run(db, data_dir, on_result)
    todo: list[Scanned] = []
    remeasure: list[EncodeJob] = []
    first_with: dict[str, Path] = {}
    pool = WorkerPool(min(workers, len(files)), memory_bytes=limits.worker_memory_bytes)
    with pool:  # on Ctrl-C the workers go now, not when the traceback is freed
        for item in _scan_all(pool, files, on_progress):
            if isinstance(item, Failed):
                run.settle(IngestResult(path=item.path, status="failed", error=item.error))
            elif (known := store.track_for_hash(db, item.content_hash)) is not None:
                run.settle(describe(db, item.path, known))
                if (lufs := run.needs_features(item, known)) is not None:
                    remeasure.append(_job(item, data_dir, limits, lufs))
            elif item.content_hash in first_with:
                run.copies[first_with[item.content_hash]].append(item.path)
            else:
                first_with[item.content_hash] = item.path
                run.expect(item)
                todo.append(item)
        seconds = {
            item.path: max(item.info.seconds, 1.0) for item in [*todo, *run.remeasuring.values()]
        }
        work = [_job(item, data_dir, limits) for item in todo] + remeasure
        try:
            with contextlib.closing(_encode_all(pool, work)) as outcomes:
                run.encode(outcomes, on_progress, seconds)
        except BaseException:
            run.discard_uncommitted(todo)
            raise
    return [run.results[path] for path in files]
