"""A whole ingest run through the Python API: catalog rows, store files, failures."""

from __future__ import annotations

import io
import shutil
import sqlite3
from pathlib import Path

import av
import numpy as np
import pytest

from connect_protocol.media import Manifest, Quality, segment_boundaries
from hub.context import hub_database
from hub.db import Database
from hub.ingest import IngestResult, Progress, ingest_paths, loudness
from hub.ingest.decode import decode
from hub.ingest.model import Failed
from hub.ingest.sources import content_hash
from hub.ingest.worker import encode_file
from hub.media import store
from tests.audio_files import FileTags, music, png_bytes, sine, write_audio

COVER = png_bytes((10, 120, 200))


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def db(data_dir: Path) -> Database:
    database = hub_database(data_dir / "hub.db")
    database.migrate()
    return database


def album_tags(n: int, **extra: object) -> FileTags:
    return FileTags(
        title=f"Track {n}",
        artist="Mira Okafor",
        album="Night Bus",
        track=n,
        year=2020,
        **extra,  # type: ignore[arg-type]
    )


def count(db: Database, table: str) -> int:
    with db.reading() as conn:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def check_store(data_dir: Path, manifest: Manifest) -> None:
    """Every segment file exists, has its size, and decodes to exactly its frames."""
    for rendition in manifest.renditions:
        quality = Quality.parse(rendition.quality)
        assert sum(s.frames for s in rendition.segments) == rendition.frames
        assert len(rendition.segments) == len(manifest.boundaries) - 1
        for n, segment in enumerate(rendition.segments):
            path = store.segment_path(data_dir, manifest.track_id, quality, n)
            blob = path.read_bytes()
            assert len(blob) == segment.bytes
            with av.open(io.BytesIO(blob), mode="r") as container:
                frames = sum(f.samples for f in container.decode(audio=0))
            assert frames == segment.frames, (rendition.quality, n)


def test_every_format_becomes_a_playable_track(
    db: Database, data_dir: Path, tmp_path: Path
) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    sources = [
        write_audio(lib / "1.flac", music(7.1, 44_100)[: 44_100 * 7 + 13], 44_100, album_tags(1)),
        write_audio(lib / "2.wav", music(4, 48_000, seed=2), 48_000, album_tags(2, art=COVER)),
        write_audio(lib / "3.mp3", music(3, 44_100, seed=3), 44_100, album_tags(3)),
        write_audio(lib / "4.ogg", sine(44_100 + 5, 44_100, channels=1), 44_100, album_tags(4)),
    ]
    results = ingest_paths(db, data_dir, [lib], jobs=1)

    assert [r.path for r in results] == sources
    assert [r.status for r in results] == ["added"] * 4, [r.error for r in results]
    manifests = []
    for path, result in zip(sources, results, strict=True):
        assert result.id is not None
        manifest = store.load_manifest(db, result.id)
        assert manifest is not None
        manifests.append(manifest)
        source = decode(path)
        assert (manifest.frames, manifest.sample_rate) == (source.frames, source.rate)
        assert (result.frames, result.sample_rate) == (source.frames, source.rate)
        assert manifest.channels == source.pcm.shape[1]
        assert list(manifest.boundaries) == segment_boundaries(source.frames, source.rate)
        assert manifest.uri == result.uri == f"legato:track:{result.id}"
        assert manifest.duration_ms == round(source.frames * 1000 / source.rate)
        check_store(data_dir, manifest)

    with db.reading() as conn:
        rows = conn.execute("SELECT * FROM tracks ORDER BY track_number").fetchall()
        art = conn.execute("SELECT * FROM album_art").fetchall()
    assert [(r["name"], r["artist"], r["album"], r["track_number"]) for r in rows] == [
        (f"Track {n}", "Mira Okafor", "Night Bus", n) for n in range(1, 5)
    ]
    assert len({r["album_id"] for r in rows}) == 1
    assert [r["id"] for r in rows] == [r.id for r in results]
    album_id = rows[0]["album_id"]
    assert [(a["album_id"], a["mime"], a["path"]) for a in art] == [
        (album_id, "image/png", f"art/{album_id}.png")
    ]
    assert (data_dir / art[0]["path"]).read_bytes() == COVER

    # One album loudness for all four, from all their blocks together.
    measured = [loudness.measure(decode(p).pcm, decode(p).rate) for p in sources]
    album_lufs, album_peak = loudness.album(measured)
    for manifest, track in zip(manifests, measured, strict=True):
        assert manifest.loudness.track_lufs == track.lufs
        assert manifest.loudness.track_peak_dbtp == track.peak_dbtp
        assert (manifest.loudness.album_lufs, manifest.loudness.album_peak_dbtp) == (
            album_lufs,
            album_peak,
        )


def test_the_same_content_is_ingested_once(db: Database, data_dir: Path, tmp_path: Path) -> None:
    first = write_audio(tmp_path / "a.flac", sine(44_100 * 3, 44_100), 44_100, album_tags(1))
    copy = tmp_path / "copy of a.flac"
    shutil.copyfile(first, copy)
    results = ingest_paths(db, data_dir, [first, copy], jobs=1)
    assert [r.status for r in results] == ["added", "present"]
    assert results[0].id == results[1].id
    assert count(db, "tracks") == count(db, "media") == 1

    again = ingest_paths(db, data_dir, [copy, first], jobs=1)
    assert [r.status for r in again] == ["present", "present"]
    assert {r.id for r in again} == {results[0].id}
    assert again[1].frames == results[0].frames
    assert again[1].name == "Track 1"
    assert count(db, "tracks") == count(db, "media") == 1


def test_bad_files_are_skipped_and_leave_nothing(
    db: Database, data_dir: Path, tmp_path: Path
) -> None:
    good = write_audio(tmp_path / "good.flac", sine(44_100 * 2, 44_100), 44_100)
    noise = tmp_path / "noise.flac"
    noise.write_bytes(np.random.default_rng(1).bytes(40_000))
    truncated = write_audio(tmp_path / "cut.wav", music(3, 44_100), 44_100)
    truncated.write_bytes(truncated.read_bytes()[:100_000])
    empty = tmp_path / "empty.ogg"
    empty.write_bytes(b"")
    results = ingest_paths(db, data_dir, [good, noise, truncated, empty], jobs=1)

    assert [r.status for r in results] == ["added", "failed", "failed", "failed"]
    assert all(r.id is None for r in results[1:])
    assert "decode" in (results[1].error or "")
    assert "truncated" in (results[2].error or "")
    assert results[3].error
    assert count(db, "tracks") == count(db, "media") == 1
    track_dirs = list((data_dir / "media").glob("*/*"))
    assert [d.name for d in track_dirs] == [results[0].id]


def test_a_segment_that_is_not_exact_fails_the_whole_track(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The worker's own function, run in this process so that the fault can be planted.
    from hub.ingest import encode

    real = encode.decoded_frames

    def one_short_in_stereo(blob: bytes) -> tuple[int, int, int]:
        frames, rate, channels = real(blob)  # low (mono) passes, the first stereo rung not
        return (frames - 1 if channels == 2 else frames), rate, channels

    monkeypatch.setattr(encode, "decoded_frames", one_short_in_stereo)
    path = write_audio(tmp_path / "t.flac", music(3, 44_100), 44_100)
    outcome = encode_file(path, content_hash(path), data_dir)
    assert isinstance(outcome, Failed)
    assert "decodes to" in outcome.error
    assert not list((data_dir / "media").glob("*/*"))  # segments already written are gone


def test_a_catalog_failure_rolls_the_track_back(
    db: Database, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: object) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(store, "save_manifest", broken)
    path = write_audio(tmp_path / "t.flac", sine(44_100 * 2, 44_100), 44_100, album_tags(1))
    [result] = ingest_paths(db, data_dir, [path], jobs=1)
    assert result.status == "failed"
    assert "cannot add to the catalog: disk I/O error" in (result.error or "")
    assert count(db, "tracks") == 0
    assert not list((data_dir / "media").glob("*/*"))


def test_progress_and_results_are_reported_as_they_happen(
    db: Database, data_dir: Path, tmp_path: Path
) -> None:
    paths = [
        write_audio(tmp_path / f"{n}.wav", sine(44_100 * 2, 44_100, freq=300.0 * n), 44_100)
        for n in range(1, 4)
    ]
    updates: list[Progress] = []
    seen: list[IngestResult] = []
    results = ingest_paths(
        db, data_dir, paths, jobs=1, on_progress=updates.append, on_result=seen.append
    )
    assert sorted(r.path for r in seen) == sorted(r.path for r in results)
    assert [(u.stage, u.done, u.total) for u in updates] == [
        ("scan", 1, 3),
        ("scan", 2, 3),
        ("scan", 3, 3),
        ("encode", 0, 3),
        ("encode", 1, 3),
        ("encode", 2, 3),
        ("encode", 3, 3),
    ]
    assert updates[-1].done_seconds == pytest.approx(updates[-1].total_seconds)
    assert updates[-1].total_seconds == pytest.approx(6.0, abs=0.1)


@pytest.mark.integration
def test_worker_processes_give_the_same_tracks(
    db: Database, data_dir: Path, tmp_path: Path
) -> None:
    paths = [
        write_audio(tmp_path / f"{n}.flac", music(3, 44_100, seed=n), 44_100, album_tags(n))
        for n in range(1, 4)
    ]
    results = ingest_paths(db, data_dir, paths, jobs=2)
    assert [r.status for r in results] == ["added"] * 3, [r.error for r in results]
    for result in results:
        assert result.id is not None
        manifest = store.load_manifest(db, result.id)
        assert manifest is not None
        check_store(data_dir, manifest)
    assert len({r.loudness.album_lufs for r in results if r.loudness}) == 1
