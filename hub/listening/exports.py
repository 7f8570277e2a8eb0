"""The listening-history exports people have, parsed into plays (pure: text in, values out).

- Spotify's "Extended streaming history": a JSON array of objects, each a stream
  that ENDED at ``ts`` (ISO 8601 UTC) after ``ms_played``; podcast and empty rows
  have no track name (they come back as :class:`NotMusic`).
- ListenBrainz: JSON lines (or a JSON array) of ``{"listened_at": unix seconds,
  "track_metadata": {"artist_name", "track_name", "release_name",
  "additional_info": {"isrc", "duration_ms", "spotify_id", ...}}}``.

A row parses to a :class:`Listen`, a :class:`NotMusic` or a :class:`RowError`; a file
with any :class:`RowError` (or that is not JSON) is refused whole by :func:`parse_export`.
"""

from __future__ import annotations

import datetime
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from hub.errors import HistoryFileError

Source = Literal["spotify", "listenbrainz"]
#: Spotify's ``reason_end`` values that mean the listener moved on before the end.
SKIP_REASONS = frozenset({"fwdbtn", "backbtn"})
#: Instants outside this range are not a real listen (and would not fit a datetime).
EARLIEST_MS, LATEST_MS = 0, 253_402_300_799_000  # 1970 .. the end of year 9999


@dataclass(frozen=True, slots=True, kw_only=True)
class Listen:
    """One play of a song, as the export tells it."""

    source: Source
    start_ms: int  # when it started (epoch ms)
    ms_played: int | None  # None: the export does not say
    artist: str
    track: str
    album: str
    isrc: str | None = None
    track_uri: str | None = None  # the export's own id of the track, when it has one
    skipped: bool | None = None
    finished: bool | None = None


@dataclass(frozen=True, slots=True)
class NotMusic:
    """A podcast episode, audiobook or empty row: counted, not kept."""

    row: int


@dataclass(frozen=True, slots=True)
class RowError:
    row: int  # 1-based: the element of an array, or the line of JSON lines
    message: str


Parsed = Listen | NotMusic | RowError


def _text(obj: Mapping[str, object], key: str, row: int) -> str | RowError | None:
    """An optional string field: None when absent or null."""
    value = obj.get(key)
    if value is None or isinstance(value, str):
        return value
    return RowError(row, f"{key} must be a string or null, not {type(value).__name__}")


def _whole(value: object) -> int | None:
    """A JSON number that is a whole number (not a boolean), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return None


def _instant_ms(text: str) -> int | None:
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return int(moment.timestamp() * 1000)


def spotify_row(value: object, row: int) -> Parsed:
    """One element of Spotify's extended streaming history."""
    if not isinstance(value, dict):
        return RowError(row, "expected an object")
    ts = value.get("ts")
    if not isinstance(ts, str):
        return RowError(row, "ts is missing or not a string")
    ended_ms = _instant_ms(ts)
    if ended_ms is None:
        return RowError(row, f"ts {ts[:40]!r} is not an ISO 8601 time")
    ms_played = _whole(value.get("ms_played"))
    if ms_played is None or ms_played < 0:
        return RowError(row, "ms_played is missing or not a whole number of ms")
    fields = {}
    for key in (
        "master_metadata_track_name",
        "master_metadata_album_artist_name",
        "master_metadata_album_album_name",
        "spotify_track_uri",
        "reason_end",
    ):
        got = _text(value, key, row)
        if isinstance(got, RowError):
            return got
        fields[key] = got
    skipped = value.get("skipped")
    if skipped is not None and not isinstance(skipped, bool):
        return RowError(row, "skipped must be true, false or null")
    start_ms = ended_ms - ms_played
    if not EARLIEST_MS <= start_ms <= LATEST_MS:
        return RowError(row, f"ts {ts[:40]!r} is out of range")
    track = fields["master_metadata_track_name"]
    artist = fields["master_metadata_album_artist_name"]
    if not track or not artist or not track.strip() or not artist.strip():
        return NotMusic(row)
    reason = fields["reason_end"]
    if skipped is None and reason is not None:
        skipped = reason in SKIP_REASONS
    return Listen(
        source="spotify",
        start_ms=start_ms,
        ms_played=ms_played,
        artist=artist,
        track=track,
        album=fields["master_metadata_album_album_name"] or "",
        track_uri=fields["spotify_track_uri"] or None,
        skipped=skipped,
        finished=None if reason is None else reason == "trackdone",
    )


def listenbrainz_row(value: object, row: int) -> Parsed:
    """One listen of a ListenBrainz export."""
    if not isinstance(value, dict):
        return RowError(row, "expected an object")
    listened_at = _whole(value.get("listened_at"))
    if listened_at is None:
        return RowError(row, "listened_at is missing or not a whole number of seconds")
    if not EARLIEST_MS <= listened_at * 1000 <= LATEST_MS:
        return RowError(row, "listened_at is out of range")
    meta = value.get("track_metadata")
    if not isinstance(meta, dict):
        return RowError(row, "track_metadata is missing or not an object")
    names: dict[str, str | None] = {}
    for key in ("artist_name", "track_name", "release_name"):
        got = _text(meta, key, row)
        if isinstance(got, RowError):
            return got
        names[key] = got
    info = meta.get("additional_info")
    if info is None:
        info = {}
    if not isinstance(info, dict):
        return RowError(row, "additional_info must be an object")
    isrc, spotify_id = info.get("isrc"), info.get("spotify_id")
    if isrc is not None and not isinstance(isrc, str):
        return RowError(row, "isrc must be a string")
    artist, track = names["artist_name"], names["track_name"]
    if not artist or not track or not artist.strip() or not track.strip():
        return NotMusic(row)
    return Listen(
        source="listenbrainz",
        start_ms=listened_at * 1000,
        ms_played=None,
        artist=artist,
        track=track,
        album=names["release_name"] or "",
        isrc=(isrc.strip().upper() or None) if isrc else None,
        track_uri=spotify_id if isinstance(spotify_id, str) and spotify_id else None,
    )


def parse_value(value: object, row: int) -> Parsed:
    """A row of either export, told apart by its fields."""
    if isinstance(value, dict) and "listened_at" in value:
        return listenbrainz_row(value, row)
    if isinstance(value, dict) and ("ts" in value or "ms_played" in value):
        return spotify_row(value, row)
    return RowError(row, "neither a Spotify stream (ts, ms_played) nor a ListenBrainz listen")


def parse_text(text: str) -> list[Parsed]:
    """Every row of an export: a JSON array (rows numbered by element) or JSON lines
    (rows numbered by line); a line or document that is not JSON is a :class:`RowError`."""
    body = text.lstrip("\ufeff \t\r\n")
    if body.startswith("["):
        try:
            values = json.loads(body)
        except (ValueError, RecursionError) as exc:
            line = getattr(exc, "lineno", 1)
            return [RowError(line, f"not valid JSON (line {line}): {exc}")]
        if not isinstance(values, list):
            return [RowError(1, "expected a JSON array")]
        return [parse_value(v, n) for n, v in enumerate(values, start=1)]
    out: list[Parsed] = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except (ValueError, RecursionError) as exc:
            out.append(RowError(n, f"not valid JSON: {exc}"))
            continue
        out.append(parse_value(value, n))
    return out


def parse_export(name: str, text: str) -> list[Listen | NotMusic]:
    """The rows of the export ``name``, or :class:`HistoryFileError` naming the file and
    its first bad row (so nothing of a malformed file is imported)."""
    rows = parse_text(text)
    for parsed in rows:
        if isinstance(parsed, RowError):
            what = "line" if not text.lstrip("\ufeff \t\r\n").startswith("[") else "row"
            raise HistoryFileError(f"{name}: {what} {parsed.row}: {parsed.message}")
    return [r for r in rows if not isinstance(r, RowError)]
