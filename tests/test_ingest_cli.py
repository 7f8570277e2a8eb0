"""``legato-hub ingest`` as a user runs it: exit codes, --json, messages, --help."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hub.ingest import IngestResult, Progress
from hub.ingest.progress import Reporter, describe, summary
from tests.audio_files import FileTags, music, sine, write_audio
from tests.system import child_env

HUB = str(Path(sys.executable).parent / "legato-hub")


def ingest(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HUB, "ingest", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=child_env(),
        check=False,
    )


def test_help_explains_the_command() -> None:
    out = ingest("--help")
    assert out.returncode == 0
    for word in ["PATH", "--json", "--jobs", "--data", "FLAC", "Exit status", "already"]:
        assert word in out.stdout, word


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.flac"], "no such file or directory: missing.flac"),
        (["--jobs", "0", "."], "must be at least 1"),
        (["--jobs", "many", "."], "not a whole number"),
        ([], "required: PATH"),
    ],
)
def test_usage_errors_exit_2(args: list[str], message: str, tmp_path: Path) -> None:
    out = ingest("--data", str(tmp_path / "data"), *args)
    assert out.returncode == 2
    assert message in out.stderr


def test_a_folder_without_audio_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    out = ingest("--data", str(tmp_path / "data"), str(tmp_path / "empty"))
    assert out.returncode == 2
    assert "no .flac, .wav, .mp3 or .ogg files found" in out.stderr


@pytest.mark.integration
def test_json_lines_exit_codes_and_a_second_run(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    tags = FileTags(title="Sodium Glow", artist="Mira Okafor", album="Night Bus", track=2)
    write_audio(lib / "a.flac", music(3, 44_100), 44_100, tags)
    write_audio(lib / "b.mp3", sine(48_000 * 2, 48_000, channels=1), 48_000)
    (lib / "c.flac").write_bytes(np.random.default_rng(2).bytes(30_000))
    data = str(tmp_path / "data")

    out = ingest("--data", data, "--json", "--jobs", "2", str(lib))
    assert out.returncode == 1, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    by_name = {Path(line["path"]).name: line for line in lines}
    assert sorted(by_name) == ["a.flac", "b.mp3", "c.flac"]
    a, b, c = by_name["a.flac"], by_name["b.mp3"], by_name["c.flac"]
    assert (a["status"], a["name"], a["artist"], a["album"]) == (
        "added",
        "Sodium Glow",
        "Mira Okafor",
        "Night Bus",
    )
    assert (a["frames"], a["sample_rate"], a["channels"]) == (44_100 * 3, 44_100, 2)
    assert a["uri"] == f"legato:track:{a['id']}"
    assert a["duration_ms"] == 3000
    assert set(a["loudness"]) == {"track_lufs", "track_peak_dbtp", "album_lufs", "album_peak_dbtp"}
    assert set(a["bitrates"]) == {"low", "normal", "high", "very_high"}
    assert (b["status"], b["name"], b["sample_rate"], b["channels"]) == ("added", "b", 48_000, 1)
    assert c["status"] == "failed"
    assert c["id"] is None
    assert "decode" in c["error"]
    assert f"failed: {lib / 'c.flac'}: " in out.stderr
    assert "2 added, 0 already present, 1 failed" in out.stderr

    again = ingest("--data", data, "--json", str(lib / "a.flac"), str(lib / "b.mp3"))
    assert again.returncode == 0, again.stderr
    statuses = [json.loads(line)["status"] for line in again.stdout.splitlines()]
    assert statuses == ["present", "present"]
    assert "0 added, 2 already present, 0 failed" in again.stderr


def sample_result(status: str = "added") -> IngestResult:
    if status == "failed":
        return IngestResult(path=Path("x/bad.flac"), status="failed", error="cannot decode: boom")
    return IngestResult(
        path=Path("x/good.flac"),
        status="added",
        id="0123456789abcdefABCDEF",
        name="Lanterns",
        artist="The Quay Ensemble",
        frames=44_100 * 125,
        sample_rate=44_100,
        duration_ms=125_000,
    )


def test_lines_say_what_happened_to_each_file() -> None:
    assert describe(sample_result()) == (
        "added: x/good.flac -> legato:track:0123456789abcdefABCDEF"
        " 'Lanterns' by The Quay Ensemble (2:05)"
    )
    assert describe(sample_result("failed")) == "failed: x/bad.flac: cannot decode: boom"
    assert summary([sample_result(), sample_result("failed")]) == (
        "1 added, 0 already present, 1 failed"
    )


@pytest.mark.parametrize("interactive", [False, True])
def test_reporter_writes_json_to_stdout_and_the_rest_to_stderr(interactive: bool) -> None:
    stdout, stderr = io.StringIO(), io.StringIO()
    with Reporter(stdout=stdout, stderr=stderr, json_lines=True, interactive=interactive) as rep:
        for stage in ("scan", "encode"):
            for done in (1, 2):
                rep.progress(
                    Progress(
                        stage=stage,
                        done=done,
                        total=2,
                        done_seconds=60.0 * done if stage == "encode" else 0.0,
                        total_seconds=120.0 if stage == "encode" else 0.0,
                        path=Path(f"x/{done}.flac"),
                    )
                )
        rep.result(sample_result())
        rep.result(sample_result("failed"))
    objects = [json.loads(line) for line in stdout.getvalue().splitlines()]
    assert [o["status"] for o in objects] == ["added", "failed"]
    assert "failed: x/bad.flac: cannot decode: boom" in stderr.getvalue()
    if not interactive:
        assert "[1/2] processed x/1.flac" in stderr.getvalue()
