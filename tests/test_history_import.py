"""``legato-hub history import|clear`` as a listener runs it, on a real hub database:
both export formats, matching (ISRC, diacritics, "feat."), podcasts, duplicates,
malformed files refused whole, and plays of songs ingested later matched then."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from hub.accounts import users
from hub.server import open_database
from tests.audio_files import FileTags, music, write_audio
from tests.catalog_fixtures import populate
from tests.system import child_env

HUB = str(Path(sys.executable).parent / "legato-hub")
KEYS = {
    "file",
    "rows",
    "music_rows",
    "matched",
    "unmatched",
    "duplicates",
    "not_music",
    "top_unmatched_artists",
}


def run(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HUB, *args, "--data", str(data)],
        capture_output=True,
        text=True,
        timeout=300,
        env=child_env(),
        check=False,
    )


def stream(
    ts: str,
    track: str | None,
    artist: str | None,
    album: str | None = "",
    *,
    ms: int = 200_000,
    reason_end: str = "trackdone",
    skipped: bool | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One row of Spotify's extended streaming history."""
    return {
        "ts": ts,
        "platform": "android",
        "ms_played": ms,
        "conn_country": "GB",
        "master_metadata_track_name": track,
        "master_metadata_album_artist_name": artist,
        "master_metadata_album_album_name": album,
        "spotify_track_uri": None if track is None else f"spotify:track:{abs(hash(track))}",
        "episode_name": None,
        "reason_start": "clickrow",
        "reason_end": reason_end,
        "shuffle": False,
        "skipped": skipped,
        **extra,
    }


def listen(at_s: int, artist: str, track: str, release: str = "", **info: Any) -> str:
    """One line of a ListenBrainz export."""
    meta = {"artist_name": artist, "track_name": track, "release_name": release}
    return json.dumps({"listened_at": at_s, "track_metadata": {**meta, "additional_info": info}})


SPOTIFY_ROWS = [
    stream("2024-03-01T10:03:20Z", "Déjà Vu", "Zoë Ångström", "Café Rêverie"),
    stream("2024-03-01T10:06:40Z", "DEJA VU", "zoe angstrom", "Cafe Reverie"),
    stream("2024-03-01T10:10:00Z", "Slow Burn (feat. Kito Mensah)", "Aurora Vale", "Copper Skies"),
    stream("2024-03-01T10:10:10Z", "Salt & Tar", "Kito Mensah ft. Aurora Vale", ms=9_000,
           reason_end="fwdbtn", skipped=True),
    stream("2024-03-01T11:00:00Z", "Unknown Song", "Nobody Band", "Lost Tapes"),
    stream("2024-03-01T11:04:00Z", "Unknown Song", "Nobody Band", "Lost Tapes"),
    stream("2024-03-01T11:08:00Z", "Another One", "Nobody Band", "Lost Tapes"),
    stream("2024-03-01T11:12:00Z", "Solo", "Someone Else"),
    # a podcast episode and an empty row
    stream("2024-03-01T12:00:00Z", None, None, None, episode_name="Talk 12",
           episode_show_name="Talks"),
    stream("2024-03-01T12:00:05Z", None, None, None, ms=0),
]  # fmt: skip


@pytest.fixture
def hub_data(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    data = tmp_path / "hub"
    db = open_database(data)
    ids = populate(db)
    users.add_user(db, "ann", "password-ann")
    users.add_user(db, "bob", "password-bob")
    return data, ids


def plays_of(data: Path, name: str) -> list[dict[str, Any]]:
    with open_database(data).reading() as conn:
        rows = conn.execute(
            "SELECT p.* FROM plays p JOIN users u ON u.id = p.user_id WHERE u.name = ?"
            " ORDER BY p.played_ms, p.id",
            (name,),
        )
        return [dict(r) for r in rows]


def write_json(path: Path, rows: Sequence[object]) -> Path:
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path


def reports(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_a_spotify_export_is_matched_counted_and_kept(
    hub_data: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    data, ids = hub_data
    export = write_json(tmp_path / "Streaming_History_Audio_2024.json", SPOTIFY_ROWS)
    (report,) = reports(run(data, "history", "import", str(export), "--user", "ann", "--json"))
    assert set(report) == KEYS
    assert report["file"] == str(export)
    assert (report["rows"], report["music_rows"], report["not_music"]) == (10, 8, 2)
    assert (report["matched"], report["unmatched"], report["duplicates"]) == (4, 4, 0)
    assert report["top_unmatched_artists"] == [
        {"artist": "Nobody Band", "plays": 3},
        {"artist": "Someone Else", "plays": 1},
    ]
    plays = plays_of(data, "ann")
    assert [p["track_id"] for p in plays] == [
        ids["Déjà Vu"],
        ids["Déjà Vu"],
        ids["Slow Burn"],
        ids["Salt & Tar"],
        None,
        None,
        None,
        None,
    ]
    first, skip = plays[0], plays[3]
    # ts is when the stream ended: the play started ms_played before it
    assert first["played_ms"] == 1709287400_000 - 200_000
    assert (first["source"], first["finished"], first["ms_played"]) == ("spotify", 1, 200_000)
    assert (skip["skipped"], skip["finished"], skip["ms_played"]) == (1, 0, 9_000)
    assert plays[4]["track_name"] == "Unknown Song"
    assert plays[4]["album_name"] == "Lost Tapes"
    assert plays_of(data, "bob") == []


def test_importing_the_same_file_again_adds_nothing(
    hub_data: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    data, _ = hub_data
    export = write_json(tmp_path / "history.json", SPOTIFY_ROWS)
    run(data, "history", "import", str(export), "--user", "ann", "--json")
    before = len(plays_of(data, "ann"))
    (again,) = reports(run(data, "history", "import", str(export), "--user", "ann", "--json"))
    assert again["duplicates"] == again["music_rows"] == 8
    assert len(plays_of(data, "ann")) == before == 8
    # the same file is another listener's own history
    (bobs,) = reports(run(data, "history", "import", str(export), "--user", "bob", "--json"))
    assert bobs["duplicates"] == 0
    assert len(plays_of(data, "bob")) == 8


def test_a_listenbrainz_export_matches_by_isrc_then_names(
    hub_data: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    data, ids = hub_data
    lines = [
        # the ISRC wins over names that match nothing
        listen(1_700_000_000, "A. Vale", "Glass River (2019 Remaster)", isrc="xxleg1900003"),
        listen(1_700_000_300, "Kito Mensah", "Harbour Wall", "Midnight Ferry", duration_ms=1000),
        listen(1_700_000_600, "Aurora Vale featuring Kito Mensah", "Slow burn"),
        listen(1_700_000_900, "Nobody Band", "Unknown Song", "Lost Tapes"),
        json.dumps({"listened_at": 1_700_001_000, "track_metadata": {"artist_name": "",
                    "track_name": ""}}),
    ]  # fmt: skip
    export = tmp_path / "listens.jsonl"
    export.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (report,) = reports(run(data, "history", "import", str(export), "--user", "ann", "--json"))
    assert (report["rows"], report["music_rows"], report["not_music"]) == (5, 4, 1)
    assert (report["matched"], report["unmatched"]) == (3, 1)
    plays = plays_of(data, "ann")
    assert [p["track_id"] for p in plays] == [
        ids["Glass River"],
        ids["Harbour Wall"],
        ids["Slow Burn"],
        None,
    ]
    assert plays[0]["played_ms"] == 1_700_000_000_000
    assert {p["source"] for p in plays} == {"listenbrainz"}


def test_a_json_array_of_listens_is_read_too(
    hub_data: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    data, ids = hub_data
    rows = [json.loads(listen(1_700_000_000, "Zoë Ångström", "Crème"))]
    export = write_json(tmp_path / "listens.json", rows)
    (report,) = reports(run(data, "history", "import", str(export), "--user", "ann", "--json"))
    assert report["matched"] == 1
    assert [p["track_id"] for p in plays_of(data, "ann")] == [ids["Crème"]]


@pytest.mark.parametrize(
    ("content", "where"),
    [
        (json.dumps([SPOTIFY_ROWS[0], SPOTIFY_ROWS[1], {**SPOTIFY_ROWS[2], "ms_played": "long"}]),
         "row 3: ms_played"),
        (json.dumps([SPOTIFY_ROWS[0], {"ms_played": 5}]), "row 2: ts"),
        (json.dumps([SPOTIFY_ROWS[0], {**SPOTIFY_ROWS[1], "ts": "yesterday"}]), "row 2: ts"),
        (json.dumps([{**SPOTIFY_ROWS[0], "skipped": "no"}]), "row 1: skipped"),
        ('[{"ts": "2024-01-01T00:00:00Z", "ms_played": 1},', "not valid JSON"),
        (listen(1_700_000_000, "A", "B") + "\n{not json\n", "line 2: not valid JSON"),
        (listen(1_700_000_000, "A", "B") + "\n" + json.dumps({"listened_at": "soon"}),
         "line 2: listened_at"),
        (listen(1_700_000_000, "A", "B") + "\n"
         + json.dumps({"listened_at": 1, "track_metadata": {"artist_name": 5}}),
         "line 2: artist_name"),
    ],
)  # fmt: skip
def test_a_malformed_file_is_named_with_its_row_and_nothing_is_imported(
    hub_data: tuple[Path, dict[str, str]], tmp_path: Path, content: str, where: str
) -> None:
    data, _ = hub_data
    good = write_json(tmp_path / "good.json", SPOTIFY_ROWS)
    bad = tmp_path / "bad.json"
    bad.write_text(content, encoding="utf-8")
    result = run(data, "history", "import", str(good), str(bad), "--user", "ann", "--json")
    assert result.returncode != 0
    assert result.stdout == ""
    assert str(bad) in result.stderr
    assert where in result.stderr
    assert plays_of(data, "ann") == []  # not even the good file before it


def test_unknown_user_and_missing_file_are_errors(
    hub_data: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    data, _ = hub_data
    export = write_json(tmp_path / "h.json", SPOTIFY_ROWS)
    nobody = run(data, "history", "import", str(export), "--user", "zed")
    assert nobody.returncode != 0
    assert "zed" in nobody.stderr
    missing = run(data, "history", "import", str(tmp_path / "nope.json"), "--user", "ann")
    assert missing.returncode != 0
    assert "nope.json" in missing.stderr
    assert plays_of(data, "ann") == []


def test_the_summary_without_json_is_for_a_person(
    hub_data: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    data, _ = hub_data
    export = write_json(tmp_path / "h.json", SPOTIFY_ROWS)
    result = run(data, "history", "import", str(export), "--user", "ann")
    assert result.returncode == 0, result.stderr
    assert "10 rows, 8 of music (4 matched to the catalog, 4 not yet)" in result.stdout
    assert "Nobody Band (3)" in result.stdout


def test_plays_of_a_song_ingested_later_are_matched_then(
    hub_data: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    data, _ = hub_data
    export = write_json(tmp_path / "h.json", SPOTIFY_ROWS)
    run(data, "history", "import", str(export), "--user", "ann", "--json")
    assert sum(p["track_id"] is None for p in plays_of(data, "ann")) == 4
    tags = FileTags(title="Unknown Song (feat. Guest)", artist="NOBODY BAND", album="Lost Tapes")
    (tmp_path / "lib").mkdir()
    song = write_audio(tmp_path / "lib" / "unknown.flac", music(2, 44_100), 44_100, tags)
    ingested = run(data, "ingest", str(song), "--json")
    assert ingested.returncode == 0, ingested.stderr
    track_id = json.loads(ingested.stdout.splitlines()[0])["id"]
    assert "2 imported plays now matched" in ingested.stderr
    plays = plays_of(data, "ann")
    assert [p["track_id"] for p in plays if p["track_name"] == "Unknown Song"] == [track_id] * 2
    assert sum(p["track_id"] is None for p in plays) == 2


def test_clear_deletes_one_listeners_history(
    hub_data: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    data, _ = hub_data
    export = write_json(tmp_path / "h.json", SPOTIFY_ROWS)
    for who in ("ann", "bob"):
        run(data, "history", "import", str(export), "--user", who, "--json")
    cleared = run(data, "history", "clear", "--user", "ann")
    assert cleared.returncode == 0, cleared.stderr
    assert "deleted 8 plays" in cleared.stdout
    assert plays_of(data, "ann") == []
    assert len(plays_of(data, "bob")) == 8
