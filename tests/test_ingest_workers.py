"""Worker processes: a file that kills or exhausts its worker fails alone, the run goes on.

The pool is tested with tasks that die on purpose (they run in real spawned
processes, so they live at module level), then the pipeline with a real worker
killed while it encodes a real file.
"""

from __future__ import annotations

import os
import resource
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from connect_protocol.media import Quality, segment_boundaries
from hub.context import hub_database
from hub.db import Database
from hub.ingest import IngestResult, ingest_paths
from hub.ingest.limits import IngestLimits
from hub.ingest.model import Failed
from hub.ingest.processes import Lost, WorkerPool, died
from hub.ingest.sources import content_hash
from hub.ingest.worker import encode_file, track_id_for
from hub.media import store
from tests.audio_files import FileTags, sine, write_audio

GIB = 1024**3


def task(job: str) -> str | int:
    """What each job name asks a worker to do."""
    if job == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if job == "exit":
        os._exit(3)
    if job == "greedy":
        np.ones(4 * GIB // 8)  # more than the limit allows
    if job == "raise":
        raise ValueError("not this one")
    if job == "limit":
        return resource.getrlimit(resource.RLIMIT_AS)[0]
    if job == "pid":
        return os.getpid()
    if job == "sleep":
        time.sleep(60)
    return job.upper()


def spawned_children() -> list[int]:
    """This process's worker processes (multiprocessing's spawned children)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == os.getpid() and b"spawn_main" in cmdline:
            found.append(int(entry.name))
    return found


def test_each_job_gets_its_own_answer_or_the_reason_its_worker_is_gone() -> None:
    jobs = ["a", "kill", "b", "exit", "c", "greedy", "d", "raise", "e", "limit"]
    with WorkerPool(2, memory_bytes=GIB) as pool:
        answers = dict(pool.run(task, jobs))
    assert answers == {
        "a": "A",
        "kill": Lost("the worker died: signal 9 (SIGKILL)"),
        "b": "B",
        "exit": Lost("the worker died: exit status 3"),
        "c": "C",
        "greedy": Lost("the worker ran out of memory"),
        "d": "D",
        "raise": Lost("unexpected ValueError: not this one"),
        "e": "E",
        "limit": answers["limit"],
    }
    limit = answers["limit"]
    assert isinstance(limit, int)
    assert limit != resource.RLIM_INFINITY
    assert limit >= GIB  # more only where the worker maps much at start (many cores)
    assert not spawned_children()  # all stopped at the end


def test_a_worker_that_survives_its_job_takes_the_next() -> None:
    with WorkerPool(1, memory_bytes=GIB) as pool:
        first = list(pool.run(task, ["pid", "greedy", "pid", "raise", "pid"]))
        second = list(pool.run(task, ["pid"]))  # and the next run's
    pids = {answer for job, answer in first + second if job == "pid"}
    assert len(pids) == 1  # a MemoryError or an exception does not cost the worker


def test_stopping_early_kills_the_workers() -> None:
    with WorkerPool(3, memory_bytes=GIB) as pool:
        answers = pool.run(task, ["a", "sleep", "sleep"])
        assert next(answers) == ("a", "A")
        assert len(spawned_children()) == 3
        started = time.monotonic()
        answers.close()
        assert time.monotonic() - started < 5
        assert len(spawned_children()) == 1  # the idle one stays for the next run
    assert not spawned_children()


def test_why_a_worker_died() -> None:
    assert died(-signal.SIGSEGV) == "the worker died: signal 11 (SIGSEGV)"
    assert died(1) == "the worker died: exit status 1"
    assert died(None) == "the worker died"


def test_running_out_of_memory_fails_the_file_with_the_limit_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def exhausted(*_args: object) -> None:
        raise MemoryError

    monkeypatch.setattr("hub.ingest.loudness.LoudnessMeter.feed", exhausted)
    path = write_audio(tmp_path / "t.flac", sine(44_100 * 3, 44_100), 44_100)
    data_dir = tmp_path / "data"
    outcome = encode_file(path, content_hash(path), data_dir, IngestLimits())
    assert outcome == Failed(path, IngestLimits().out_of_memory())
    assert not list((data_dir / "media").glob("*/*"))


@pytest.mark.integration
def test_a_worker_killed_mid_file_fails_that_file_only(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    db: Database = hub_database(data_dir / "hub.db")
    db.migrate()
    rate, seconds = 44_100, 240  # long enough that it is still encoding when killed
    victim = write_audio(tmp_path / "1 long.flac", sine(rate * seconds, rate), rate)
    tags = FileTags(title="Survivor", artist="Test Rig", album="Workers", track=1)
    survivor = write_audio(tmp_path / "2 short.flac", sine(rate * 3, rate, freq=440), rate, tags)
    victim_dir = store.track_dir(data_dir, track_id_for(content_hash(victim)))
    last_segment = len(segment_boundaries(rate * seconds, rate)) - 2
    results: list[IngestResult] = []
    run = threading.Thread(
        target=lambda: results.extend(ingest_paths(db, data_dir, [victim, survivor], jobs=1))
    )
    run.start()
    try:
        deadline = time.monotonic() + 60
        while not victim_dir.exists():  # its first segments: the worker is encoding it
            assert time.monotonic() < deadline, "the worker never started on the long file"
            time.sleep(0.005)
        [worker] = spawned_children()
        os.kill(worker, signal.SIGSTOP)  # frozen: what is on disk is where it stopped
        done = store.segment_path(data_dir, victim_dir.name, Quality.VERY_HIGH, last_segment)
        assert not done.exists(), "the file was finished before the kill; make it longer"
        os.kill(worker, signal.SIGKILL)
    finally:
        run.join(timeout=100)
    assert not run.is_alive()

    by_path = {r.path: r for r in results}
    assert by_path[victim].status == "failed"
    assert by_path[victim].error == "the worker died: signal 9 (SIGKILL)"
    assert by_path[survivor].status == "added", by_path[survivor].error
    assert not victim_dir.exists()  # what the dead worker wrote is gone
    assert [d.name for d in (data_dir / "media").glob("*/*")] == [by_path[survivor].id]
    with db.reading() as conn:
        assert [r[0] for r in conn.execute("SELECT name FROM tracks")] == ["Survivor"]
