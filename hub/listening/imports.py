"""Importing listening-history exports into ``plays``, and matching what was imported
to the catalog again after an ingest.

Every file is read and parsed before anything is written, so a malformed file stops
the import before the first row (:class:`hub.errors.HistoryFileError` names it and the
row).  Each file is then one transaction.  A row's ``import_key`` (listener, source,
start, song, ms played) is unique, so importing a file again adds nothing: those rows
are counted as duplicates.  Unmatched rows keep their names and ``match_key``;
:func:`rematch` gives them a track once the catalog has it.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hub.db import Database
from hub.errors import HistoryFileError
from hub.listening.exports import Listen, NotMusic, parse_export
from hub.listening.matching import CatalogIndex, choose, load_index
from hub.listening.names import match_key

#: How many unmatched artists a report names (the most played first).
TOP_UNMATCHED = 20
#: Rows written per statement batch (and per progress report).
BATCH_ROWS = 2000

INSERT = (
    "INSERT INTO plays (user_id, track_id, played_ms, ms_played, skipped, finished, source,"
    " artist_name, track_name, album_name, isrc, match_key, import_key)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (import_key) DO NOTHING"
)

Progress = Callable[[int, int], None]  # rows done, rows in all


@dataclass(frozen=True, slots=True)
class Export:
    """A file read and parsed, ready to be written."""

    path: Path
    rows: list[Listen | NotMusic]


@dataclass(slots=True, kw_only=True)
class FileReport:
    """What importing one file did.  ``matched + unmatched == music_rows`` (as matched
    now, duplicates included); ``rows == music_rows + not_music``."""

    file: str
    rows: int = 0
    music_rows: int = 0
    matched: int = 0
    unmatched: int = 0
    duplicates: int = 0
    not_music: int = 0
    top_unmatched_artists: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "rows": self.rows,
            "music_rows": self.music_rows,
            "matched": self.matched,
            "unmatched": self.unmatched,
            "duplicates": self.duplicates,
            "not_music": self.not_music,
            "top_unmatched_artists": self.top_unmatched_artists,
        }


def import_key(user_id: int, listen: Listen, key: str | None = None) -> str:
    """The identity of an imported play: the same row imported twice has the same key
    (``key``: the listen's match key, when the caller has it already)."""
    if key is None:
        key = match_key(listen.artist, listen.track)
    song = key or listen.track_uri or f"{listen.artist}\x1f{listen.track}"
    parts = (str(user_id), listen.source, str(listen.start_ms), song, str(listen.ms_played))
    return hashlib.sha256("\x1e".join(parts).encode()).hexdigest()[:32]


def read_exports(paths: Sequence[Path]) -> list[Export]:
    """Every file read and parsed; the first unreadable or malformed one raises."""
    out = []
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise HistoryFileError(f"{path}: {exc.strerror or exc}") from exc
        except UnicodeDecodeError as exc:
            raise HistoryFileError(f"{path}: not UTF-8 text ({exc.reason})") from exc
        out.append(Export(path, parse_export(str(path), text)))
    return out


def _optional_flag(value: bool | None) -> int | None:
    return None if value is None else int(value)


def _row(user_id: int, listen: Listen, key: str, track_id: str | None) -> tuple[object, ...]:
    return (
        user_id,
        track_id,
        listen.start_ms,
        listen.ms_played,
        _optional_flag(listen.skipped),
        _optional_flag(listen.finished),
        listen.source,
        listen.artist,
        listen.track,
        listen.album,
        listen.isrc,
        key,
        import_key(user_id, listen, key),
    )


def import_export(
    db: Database,
    user_id: int,
    export: Export,
    index: CatalogIndex,
    *,
    on_rows: Callable[[int], None] = lambda n: None,
) -> FileReport:
    """One parsed file written in one transaction; its report."""
    report = FileReport(file=str(export.path), rows=len(export.rows))
    unmatched_plays: Counter[str] = Counter()
    rows: list[tuple[object, ...]] = []
    for listen in export.rows:
        if isinstance(listen, NotMusic):
            report.not_music += 1
            continue
        key = match_key(listen.artist, listen.track)
        track_id = choose(index, isrc=listen.isrc, key=key, album=listen.album)
        if track_id is None:
            unmatched_plays[listen.artist] += 1
        rows.append(_row(user_id, listen, key, track_id))
    report.music_rows = len(rows)
    report.unmatched = sum(unmatched_plays.values())
    report.matched = report.music_rows - report.unmatched
    ranked = sorted(unmatched_plays.items(), key=lambda kv: (-kv[1], kv[0]))
    report.top_unmatched_artists = [{"artist": a, "plays": n} for a, n in ranked[:TOP_UNMATCHED]]
    with db.transaction() as conn:
        before = conn.total_changes
        for start in range(0, len(rows), BATCH_ROWS):
            chunk = rows[start : start + BATCH_ROWS]
            conn.executemany(INSERT, chunk)
            on_rows(len(chunk))
        report.duplicates = report.music_rows - (conn.total_changes - before)
    on_rows(report.not_music)
    return report


def import_files(
    db: Database, user_id: int, paths: Sequence[Path], *, on_progress: Progress | None = None
) -> list[FileReport]:
    """Import every file for ``user_id``: all parsed first, then one transaction each;
    rows imported before whose track has since arrived are matched too."""
    exports = read_exports(paths)
    total = sum(len(e.rows) for e in exports)
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        if on_progress is not None:
            on_progress(done, total)

    with db.reading() as conn:
        index = load_index(conn)
    reports = [import_export(db, user_id, e, index, on_rows=advance) for e in exports]
    rematch(db, index)
    return reports


def _unmatched(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    return conn.execute(
        "SELECT id, isrc, match_key, artist_name, track_name, album_name FROM plays"
        " WHERE track_id IS NULL AND (match_key != '' OR isrc IS NOT NULL OR track_name != '')"
    ).fetchall()


def rematch(db: Database, index: CatalogIndex | None = None) -> int:
    """Give unmatched plays their catalog track where the catalog now has it (after an
    ingest); how many were matched.  Cheap when nothing is unmatched."""
    with db.reading() as conn:
        waiting = _unmatched(conn)
        if not waiting:
            return 0
        if index is None:
            index = load_index(conn)
    found: list[tuple[str, int]] = []
    for r in waiting:
        key = r["match_key"] or match_key(r["artist_name"], r["track_name"])
        track_id = choose(index, isrc=r["isrc"], key=key, album=r["album_name"])
        if track_id is not None:
            found.append((track_id, r["id"]))
    if found:
        with db.transaction() as conn:
            conn.executemany(
                "UPDATE plays SET track_id = ? WHERE id = ? AND track_id IS NULL", found
            )
    return len(found)
