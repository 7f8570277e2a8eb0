"""The fleet as the dashboard shows it: one plain row per speaker.

Built from the relay's live view (online, state, recent events) and the stored
events (the last error and quality survive a hub restart).  The same rows feed
the server-rendered page and the JSON the page polls, so both always agree.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from connect_protocol.messages import EventKind
from hub.fleet import events as device_events
from hub.fleet.events import StoredEvent
from hub.fleet.relay import Device

HOUR_MS = 60 * 60 * 1000


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeakerRow:
    id: str
    name: str
    online: bool
    model: str
    fw: str
    last_seen_ms: int
    track: str  # '' when nothing is loaded
    artists: str
    playing: bool
    volume: int
    buffering: bool
    underruns_1h: int
    buffer: str  # "ok", "buffering" or "underruns": what the health pill says
    quality: str
    last_error: str
    last_error_ms: int
    cache_ready: int
    cache_tracks: int
    cache_failed: int
    cache_bytes: int
    licence_expires_ms: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _quality(message: str) -> str:
    """ "normal -> high" (a quality_change event) -> "high"."""
    return message.rsplit("->", 1)[-1].strip() if message else ""


def speaker_row(
    device: Device,
    *,
    now_ms: int,
    last_error: StoredEvent | None = None,
    last_quality: StoredEvent | None = None,
) -> SpeakerRow:
    """One speaker's row: the live events first, the stored ones when none are in memory."""
    state, recent = device.state, device.recent_events
    errors = [e for e in recent if e.kind is EventKind.ERROR]
    qualities = [e for e in recent if e.kind is EventKind.QUALITY_CHANGE]
    underruns = sum(
        1 for e in recent if e.kind is EventKind.UNDERRUN and e.timestamp_ms >= now_ms - HOUR_MS
    )
    error_text, error_ms = "", 0
    if errors:
        error_text, error_ms = errors[-1].message or "error", errors[-1].timestamp_ms
    elif last_error is not None:
        error_text, error_ms = last_error.message or "error", last_error.ts_ms
    quality = _quality(qualities[-1].message) if qualities else ""
    if not quality and last_quality is not None:
        quality = _quality(last_quality.message)
    current = state.current
    buffer = "buffering" if state.buffering else ("underruns" if underruns else "ok")
    dl = state.downloads
    return SpeakerRow(
        id=device.info.id,
        name=device.info.name,
        online=device.online,
        model=device.info.model,
        fw=device.info.fw,
        last_seen_ms=device.last_seen_ms,
        track=(current.name or current.uri) if current else "",
        artists=", ".join(current.artists) if current else "",
        playing=state.is_playing,
        volume=state.volume_percent,
        buffering=state.buffering,
        underruns_1h=underruns,
        buffer=buffer,
        quality=quality or "auto",
        last_error=error_text,
        last_error_ms=error_ms,
        cache_ready=dl.ready,
        cache_tracks=dl.tracks,
        cache_failed=dl.failed,
        cache_bytes=dl.bytes_done,
        licence_expires_ms=dl.licence_expires_ms,
    )


def fleet_rows(
    conn: sqlite3.Connection, devices: Iterable[Device], now_ms: int
) -> list[SpeakerRow]:
    """Every speaker, online ones first, then by name."""
    errors = device_events.latest_by_kind(conn, EventKind.ERROR.value)
    qualities = device_events.latest_by_kind(conn, EventKind.QUALITY_CHANGE.value)
    rows = [
        speaker_row(
            d,
            now_ms=now_ms,
            last_error=errors.get(d.info.id),
            last_quality=qualities.get(d.info.id),
        )
        for d in devices
    ]
    return sorted(rows, key=lambda r: (not r.online, r.name.lower(), r.id))
