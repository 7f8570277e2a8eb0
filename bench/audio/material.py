"""The music the bench plays: the hub's demo library, ingested once and cached.

Rendering the demo albums takes seconds and is skipped for files already rendered by
the same generator; ingesting them (four Vorbis renditions each, loudness, segments)
takes about a minute on two cores.  The ingested data directory (``hub.db`` with the
catalog and manifests, ``media/`` with the segments) is therefore kept under
``bench/out/cache/audio/`` (git ignores ``bench/out/``), keyed by the rendered files'
bytes and the source of everything that decides what ingest writes.  Each run copies
it into its own temporary hub data directory (segments hard-linked when possible).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from connect_protocol.media import Manifest
from connect_protocol.messages import TrackRef

from .common import REPO, BenchError

CACHE = REPO / "bench" / "out" / "cache" / "audio"
KEEP_LIBRARIES = 5  # cached ingests kept (full-length and smoke-run material, test tones)
#: What decides ingest's output, besides the audio: a change here re-ingests.
CODE = ("hub/ingest", "hub/media/store.py", "hub/db.py", "connect_protocol/media.py")
ORDER_FILE = "bench-tracks.json"  # the track ids in album order, written after ingest


@dataclass(frozen=True, slots=True)
class Track:
    id: str
    name: str
    artist: str
    album: str
    album_id: str
    duration_ms: int
    manifest: Manifest  # as stored: no signed URLs

    @property
    def uri(self) -> str:
        return f"legato:track:{self.id}"

    def ref(self) -> TrackRef:
        return TrackRef(
            uri=self.uri,
            duration_ms=self.duration_ms,
            name=self.name,
            artists=(self.artist,),
            album=self.album,
        )


@dataclass(frozen=True, slots=True)
class Library:
    dir: Path  # the cached data directory: hub.db, media/, art/
    tracks: tuple[Track, ...]  # album order
    cached: bool  # found in the cache (False: ingested by this run)
    prepare_s: float

    @property
    def seconds(self) -> float:
        return sum(t.duration_ms for t in self.tracks) / 1000


def _digest(flacs: list[Path]) -> str:
    h = hashlib.sha256()
    for path in flacs:
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    for name in CODE:
        base = REPO / name
        for src in sorted(base.rglob("*.py")) if base.is_dir() else [base]:
            h.update(str(src.relative_to(REPO)).encode() + b"\0" + src.read_bytes())
    return h.hexdigest()[:20]


def prepare(track_seconds: float | None, jobs: int | None, say: Callable[[str], None]) -> Library:
    """The ingested demo library: from the cache, or rendered and ingested now."""
    try:
        from hub.demo_music import render_demo_library
    except ImportError as exc:  # pragma: no cover - the hub's demo music is part of the product
        raise BenchError(f"the hub's demo music is not available: {exc}") from exc

    t0 = time.perf_counter()
    label = "full" if track_seconds is None else f"{track_seconds:g}s"
    flacs = render_demo_library(CACHE / "flac" / label, seconds_per_track=track_seconds)
    return ingested(flacs, f"{len(flacs)} demo tracks ({label})", jobs, say, t0)


def ingested(
    flacs: list[Path],
    what: str,
    jobs: int | None,
    say: Callable[[str], None],
    started_s: float | None = None,
) -> Library:
    """These files as an ingested library: from the cache, or ingested now and cached.

    Any bench's own material goes through here (the control bench's test tone too), so
    every bench's hub serves audio that the hub's own pipeline made.
    """
    try:
        from hub.ingest.pipeline import ingest_paths
    except ImportError as exc:  # pragma: no cover - the hub's ingest is part of the product
        raise BenchError(f"the hub's ingest is not available: {exc}") from exc
    from hub.server import open_database

    t0 = time.perf_counter() if started_s is None else started_s
    key = _digest(flacs)
    target = CACHE / f"library-{key}"
    cached = (target / ORDER_FILE).exists()
    if not cached:
        say(f"ingesting {what} once; cached in {target}")
        build = CACHE / f".build-{key}-{os.getpid()}"
        shutil.rmtree(build, ignore_errors=True)
        try:
            db = open_database(build)
            results = ingest_paths(db, build, flacs, jobs=jobs)
            bad = [r for r in results if r.status != "added" or r.id is None]
            if bad:
                raise BenchError(f"ingest of {bad[0].path} failed: {bad[0].error}")
            (build / ORDER_FILE).write_text(json.dumps([r.id for r in results]) + "\n")
            if not (target / ORDER_FILE).exists():  # another run may have made it meanwhile
                shutil.rmtree(target, ignore_errors=True)  # a broken leftover, never in use
                build.rename(target)
        finally:
            shutil.rmtree(build, ignore_errors=True)
    os.utime(target)  # most recently used: kept by _prune
    _prune()
    return Library(target, _tracks(target), cached, time.perf_counter() - t0)


def _prune() -> None:
    """Drop all but the most recently used libraries, unless used within the hour (by a
    run still going, perhaps)."""
    libraries = sorted(CACHE.glob("library-*"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in libraries[KEEP_LIBRARIES:]:
        if time.time() - old.stat().st_mtime > 3600:
            shutil.rmtree(old, ignore_errors=True)


def _tracks(data: Path) -> tuple[Track, ...]:
    from hub.context import hub_database
    from hub.media import store

    db = hub_database(data / "hub.db")
    order = json.loads((data / ORDER_FILE).read_text())
    out = []
    with db.reading() as conn:
        for track_id in order:
            row = conn.execute("SELECT * FROM tracks WHERE id = ?", (track_id,)).fetchone()
            manifest = store.load_manifest(db, track_id)
            if row is None or manifest is None:
                raise BenchError(f"the cached library in {data} lacks track {track_id}")
            out.append(
                Track(
                    id=track_id,
                    name=row["name"],
                    artist=row["artist"],
                    album=row["album"],
                    album_id=row["album_id"],
                    duration_ms=row["duration_ms"],
                    manifest=manifest,
                )
            )
    return tuple(out)


def install(library: Library, data: Path) -> None:
    """A hub data directory holding the library (before the hub opens it)."""

    def link_or_copy(src: str, dst: str) -> object:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)
        return dst

    data.mkdir(parents=True)
    data.chmod(0o700)
    for name in ("media", "art"):
        if (library.dir / name).exists():
            shutil.copytree(library.dir / name, data / name, copy_function=link_or_copy)
    for name in ("hub.db", "hub.db-wal"):  # the hub writes to its database: a copy
        if (library.dir / name).exists():
            shutil.copy2(library.dir / name, data / name)


def prepare_announced(track_seconds: float | None, jobs: int | None) -> Library:
    """``prepare`` with its progress and a line saying what the material is."""
    library = prepare(track_seconds, jobs, lambda s: print(s, flush=True))
    print(
        f"material: {len(library.tracks)} demo tracks, {library.seconds / 60:.1f} min "
        f"({'cached' if library.cached else 'ingested now'}, {library.prepare_s:.1f} s)",
        flush=True,
    )
    return library
