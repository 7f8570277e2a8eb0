"""A track over the duration limit fails alone, early, whatever its container claims.

The hostile file is the issue's: silence compresses to almost nothing in FLAC,
so a file well under a megabyte decodes to hours (4 h of 8 kHz mono is 460 MB
of float PCM; 44.1 kHz stereo would be 5 GB).  8 kHz keeps the test quick:
the worker decodes the 3 hours up to the default limit in about a second.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from hub.context import hub_database
from hub.db import Database
from hub.errors import IngestError
from hub.ingest import IngestLimits, ingest_paths
from hub.ingest.decode import PcmReader
from hub.ingest.jobs import IngestJobs
from hub.ingest.limits import describe_duration, parse_duration, parse_size
from tests.audio_files import FileTags, sine, write_audio
from tests.system import child_env

SILENT_RATE = 8_000
SILENT_HOURS = 4


def write_silence(path: Path, hours: float, rate: int = SILENT_RATE) -> Path:
    """Hours of digital silence as a 16-bit mono FLAC, written a minute at a time."""
    minute = np.zeros((rate * 60, 1), dtype=np.float32)
    with sf.SoundFile(path, "w", rate, 1, format="FLAC", subtype="PCM_16") as out:
        for _ in range(round(hours * 60)):
            out.write(minute)
    return path


@pytest.fixture(scope="module")
def four_hours(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_silence(tmp_path_factory.mktemp("silence") / "four hours.flac", SILENT_HOURS)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def db(data_dir: Path) -> Database:
    database = hub_database(data_dir / "hub.db")
    database.migrate()
    return database


def normal_track(folder: Path) -> Path:
    tags = FileTags(title="Normal", artist="Test Rig", album="Limits", track=1)
    return write_audio(folder / "normal.flac", sine(44_100 * 3, 44_100), 44_100, tags)


def track_dirs(data_dir: Path) -> list[str]:
    return sorted(d.name for d in (data_dir / "media").glob("*/*"))


def test_the_silent_file_is_hours_long_and_under_a_megabyte(four_hours: Path) -> None:
    assert four_hours.stat().st_size < 1024**2
    assert sf.info(str(four_hours)).frames == SILENT_HOURS * 3600 * SILENT_RATE


def test_four_silent_hours_fail_alone_under_the_default_limit(
    four_hours: Path, db: Database, data_dir: Path, tmp_path: Path
) -> None:
    normal = normal_track(tmp_path)
    results = ingest_paths(db, data_dir, [four_hours, normal], jobs=2)

    by_path = {r.path: r for r in results}
    silent, added = by_path[four_hours], by_path[normal]
    assert silent.status == "failed"
    assert silent.error == "longer than the 3 h limit on a track (change it with --max-duration)"
    assert added.status == "added", added.error
    assert track_dirs(data_dir) == [added.id]  # nothing of the failed file in the store
    with db.reading() as conn:
        assert [r[0] for r in conn.execute("SELECT name FROM tracks")] == ["Normal"]


def test_the_dashboard_job_fails_the_long_file_and_adds_the_other(
    four_hours: Path, db: Database, data_dir: Path, tmp_path: Path
) -> None:
    normal = normal_track(tmp_path)
    jobs = IngestJobs(db, data_dir)  # the hub's default limits
    jobs.start([four_hours, normal], "two files")
    jobs.wait(timeout_s=100)
    job = jobs.current()
    assert job is not None
    assert job["state"] == "done", job
    assert job["counts"] == {"added": 1, "present": 0, "failed": 1}
    [error] = job["errors"]
    assert error["path"] == str(four_hours)
    assert "3 h limit" in error["error"]
    assert "--max-duration" in error["error"]
    assert len(track_dirs(data_dir)) == 1


def test_a_lower_limit_set_on_the_command_line(four_hours: Path, tmp_path: Path) -> None:
    normal = normal_track(tmp_path)
    out = subprocess.run(
        [
            str(Path(sys.executable).parent / "legato-hub"),
            "ingest",
            "--data",
            str(tmp_path / "data"),
            "--max-duration",
            "90m",
            str(four_hours),
            str(normal),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=child_env(),
        check=False,
    )
    assert out.returncode == 1, out.stderr
    assert (
        f"failed: {four_hours}: longer than the 1 h 30 min limit on a track"
        " (change it with --max-duration)" in out.stderr.splitlines()
    )
    assert "1 added, 0 already present, 1 failed" in out.stderr


def lie_about_length(path: Path, frames: int) -> None:
    """Rewrite FLAC STREAMINFO's total-samples field (the low 36 bits at bytes 18-25)."""
    data = bytearray(path.read_bytes())
    assert data[:4] == b"fLaC"
    assert data[4] & 0x7F == 0  # STREAMINFO comes first
    packed = int.from_bytes(data[18:26], "big")
    packed = (packed & ~((1 << 36) - 1)) | frames
    data[18:26] = packed.to_bytes(8, "big")
    path.write_bytes(bytes(data))


def test_the_limit_counts_decoded_frames_not_the_containers_claim(tmp_path: Path) -> None:
    path = write_silence(tmp_path / "liar.flac", hours=0.25)
    lie_about_length(path, SILENT_RATE * 60)  # "one minute"
    limits = IngestLimits(max_duration_s=600)
    with PcmReader(path, limits=limits) as reader:
        assert reader.estimated_frames() < SILENT_RATE * 120  # the container believes it
        with pytest.raises(IngestError, match="longer than the 10 min limit"):
            reader.check()
        assert reader.frames == SILENT_RATE * 600 + 4096 - (SILENT_RATE * 600) % 4096
    with PcmReader(path, limits=IngestLimits(max_duration_s=900)) as reader:
        assert reader.check() == SILENT_RATE * 900  # exactly at the limit passes


def test_blocks_stop_at_the_limit_too(tmp_path: Path) -> None:
    path = write_silence(tmp_path / "ten minutes.flac", hours=1 / 6)
    sizes: list[int] = []

    def read_all() -> None:
        with PcmReader(path, limits=IngestLimits(max_duration_s=300)) as reader:
            sizes.extend(block.shape[0] for block in reader.blocks())

    with pytest.raises(IngestError, match="longer than the 5 min limit"):
        read_all()
    assert SILENT_RATE * 300 - 2 * (1 << 16) < sum(sizes) <= SILENT_RATE * 300


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("3", 10_800), ("2.5", 9000), ("3h", 10_800), ("90m", 5400), ("2h30m", 9000), ("45s", 45)],
)
def test_durations_an_operator_types(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "-1", "h", "1h3", "3 hours", "nan", "inf"])
def test_durations_that_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_sizes_and_descriptions() -> None:
    assert parse_size("1.5G") == parse_size("1536M") == parse_size("1536MiB") == 1536 * 1024**2
    with pytest.raises(ValueError, match="at least 256 MiB"):
        parse_size("100M")
    with pytest.raises(ValueError, match="not a size"):
        parse_size("lots")
    assert describe_duration(10_800) == "3 h"
    assert describe_duration(5400) == "1 h 30 min"
    assert IngestLimits().out_of_memory() == (
        "the decoder ran out of memory (the worker's limit is 1.5 GiB;"
        " change it with --worker-memory)"
    )
