"""The releases' tables (``releases``, ``rollouts``, ``device_updates``): rows in,
values out, nothing else.  Callers own the transaction."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from hub.releases.policy import Progress, Rollout

MAX_REASON = 500


@dataclass(frozen=True, slots=True, kw_only=True)
class Release:
    version: str
    created_ms: int
    size: int
    sha256: str
    notes: str
    key_id: str
    path: str
    manifest_json: str

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "created_ms": self.created_ms,
            "size": self.size,
            "sha256": self.sha256,
            "notes": self.notes,
            "key_id": self.key_id,
        }


def _release(row: sqlite3.Row) -> Release:
    return Release(**dict(row))


def _rollout(row: sqlite3.Row) -> Rollout:
    devices = row["devices_json"]
    return Rollout(
        version=row["version"],
        percent=row["percent"],
        devices=frozenset(json.loads(devices)) if devices is not None else None,
        wave=row["wave"],
        state=row["state"],
        reason=row["reason"],
        started_ms=row["started_ms"],
        halted_ms=row["halted_ms"],
    )


def insert_release(conn: sqlite3.Connection, release: Release) -> None:
    conn.execute(
        "INSERT INTO releases (version, created_ms, size, sha256, manifest_json, notes,"
        " key_id, path) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            release.version,
            release.created_ms,
            release.size,
            release.sha256,
            release.manifest_json,
            release.notes,
            release.key_id,
            release.path,
        ),
    )


def release(conn: sqlite3.Connection, version: str) -> Release | None:
    row = conn.execute("SELECT * FROM releases WHERE version = ?", (version,)).fetchone()
    return _release(row) if row is not None else None


def releases(conn: sqlite3.Connection) -> list[Release]:
    """Every release, newest added first."""
    rows = conn.execute("SELECT * FROM releases ORDER BY created_ms DESC, rowid DESC")
    return [_release(r) for r in rows]


def rollout(conn: sqlite3.Connection, version: str) -> Rollout | None:
    row = conn.execute("SELECT * FROM rollouts WHERE version = ?", (version,)).fetchone()
    return _rollout(row) if row is not None else None


def rollouts(conn: sqlite3.Connection, *, active_only: bool = False) -> list[Rollout]:
    where = " WHERE state = 'active'" if active_only else ""
    return [_rollout(r) for r in conn.execute(f"SELECT * FROM rollouts{where}")]


def save_rollout(conn: sqlite3.Connection, r: Rollout) -> None:
    devices = json.dumps(sorted(r.devices)) if r.devices is not None else None
    conn.execute(
        "INSERT INTO rollouts (version, percent, devices_json, wave, state, reason, started_ms,"
        " halted_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(version) DO UPDATE SET"
        " percent = excluded.percent, devices_json = excluded.devices_json,"
        " wave = excluded.wave, state = excluded.state, reason = excluded.reason,"
        " started_ms = excluded.started_ms, halted_ms = excluded.halted_ms",
        (
            r.version,
            r.percent,
            devices,
            r.wave,
            r.state,
            r.reason[:MAX_REASON],
            r.started_ms,
            r.halted_ms,
        ),
    )


def set_progress(
    conn: sqlite3.Connection, device_id: str, version: str, state: str, reason: str, now_ms: int
) -> None:
    conn.execute(
        "INSERT INTO device_updates (device_id, version, state, reason, updated_ms)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT(device_id, version) DO UPDATE SET"
        " state = excluded.state, reason = excluded.reason, updated_ms = excluded.updated_ms",
        (device_id, version, state, reason[:MAX_REASON], now_ms),
    )


def progress_of(conn: sqlite3.Connection, version: str) -> dict[str, tuple[Progress, str]]:
    """Each speaker's (progress, reason) on ``version``."""
    rows = conn.execute(
        "SELECT device_id, state, reason, updated_ms FROM device_updates WHERE version = ?",
        (version,),
    )
    return {r[0]: (Progress(r[1], r[3]), r[2]) for r in rows}


def device_progress(conn: sqlite3.Connection, device_id: str) -> dict[str, Progress]:
    """The speaker's progress on every release it heard of, by version."""
    rows = conn.execute(
        "SELECT version, state, updated_ms FROM device_updates WHERE device_id = ?", (device_id,)
    )
    return {r[0]: Progress(r[1], r[2]) for r in rows}


@dataclass(frozen=True, slots=True)
class Speaker:
    name: str
    fw: str  # the release it last reported ('' never heard from)


def known_speakers(conn: sqlite3.Connection) -> dict[str, Speaker]:
    """Every speaker the hub knows (its registry and its logins), with its release."""
    rows = conn.execute(
        "SELECT id, name, fw FROM devices UNION ALL SELECT username, username, ''"
        " FROM broker_users WHERE role = 'speaker' AND username NOT IN (SELECT id FROM devices)"
    )
    return {r[0]: Speaker(r[1], r[2]) for r in rows}
