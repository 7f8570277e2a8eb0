"""The maker's path on the hub: one-time enrolment codes and flashed speakers' set-up.

An administrator makes a code (dashboard or ``legato-hub device enrol``) and gives it
to whoever flashes the card; ``legato-flash --enrol CODE`` redeems it once, within an
hour, and gets the speaker's config (broker secret included) over the hub's pinned
HTTPS.  Only a digest of each code is stored.  Each registered speaker has a set-up
row, from "waiting for first boot" to "first boot done", which the dashboard shows.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from connect_protocol.topics import name_slug
from hub.db import Database
from hub.errors import ProvisioningError
from hub.fleet import pki, provisioning
from hub.fleet.broker import new_secret
from hub.fleet.local_control import local_token
from hub.fleet.provisioning import ConfigFile

ENROLMENT_TTL_MS = 60 * 60 * 1000
#: No 0/O, 1/I/L, so a code read aloud or off a screen is typed right.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_GROUPS = 3
CODE_GROUP_LEN = 4  # 12 symbols of 31: ~59 bits, and guessing is throttled besides
MAX_NAME = 64


class EnrolmentRefused(ProvisioningError):  # noqa: N818 - what the maker is told
    """A code that is unknown, used or expired: 403, with which one it was."""

    status = 403


@dataclass(frozen=True, slots=True)
class Enrolment:
    code: str
    expires_ms: int


@dataclass(frozen=True, slots=True)
class SetupRow:
    device_id: str
    name: str
    board: str
    enrolled_ms: int
    enrolled_by: str
    first_boot_ms: int | None


def new_code() -> str:
    """``XXXX-XXXX-XXXX`` from an alphabet without look-alike characters."""
    groups = (
        "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_GROUP_LEN))
        for _ in range(CODE_GROUPS)
    )
    return "-".join(groups)


def normalised_code(text: str) -> str:
    """What the maker typed, as the code it means: case, spaces and dashes do not matter."""
    return re.sub(r"[\s-]", "", text).upper()


def code_digest(code: str) -> str:
    return hashlib.sha256(normalised_code(code).encode()).hexdigest()


def device_id_for(name: str, suffix: str) -> str:
    """A readable, unique broker id from a speaker's name: ``Küche 2`` → ``kuche-2-3fa9c1``."""
    return f"{name_slug(name, 40) or 'speaker'}-{suffix}"


def create(db: Database, *, created_by: str, now_ms: int) -> Enrolment:
    """A fresh code, valid for an hour and for one speaker."""
    code = new_code()
    expires = now_ms + ENROLMENT_TTL_MS
    with db.transaction() as conn:
        # Codes long gone are only clutter: keep a day of history for the dashboard.
        conn.execute("DELETE FROM enrolments WHERE expires_ms < ?", (now_ms - 86_400_000,))
        conn.execute(
            "INSERT INTO enrolments (code_hash, created_by, created_ms, expires_ms)"
            " VALUES (?, ?, ?, ?)",
            (code_digest(code), created_by, now_ms, expires),
        )
    return Enrolment(code=code, expires_ms=expires)


def redeem(conn: sqlite3.Connection, code: str, device_id: str, now_ms: int) -> None:
    """Use ``code`` for ``device_id`` inside the caller's transaction, or say why not."""
    digest = code_digest(code)
    used = conn.execute(
        "UPDATE enrolments SET used_ms = ?, device_id = ?"
        " WHERE code_hash = ? AND used_ms IS NULL AND expires_ms > ?",
        (now_ms, device_id, digest, now_ms),
    )
    if used.rowcount == 1:
        return
    row = conn.execute(
        "SELECT used_ms, expires_ms FROM enrolments WHERE code_hash = ?", (digest,)
    ).fetchone()
    if row is None:
        raise EnrolmentRefused("unknown enrolment code: check it, or make a new one")
    if row["used_ms"] is not None:
        raise EnrolmentRefused(
            "this enrolment code was already used; make a new one (dashboard → Speakers)"
        )
    raise EnrolmentRefused("this enrolment code has expired (they last 1 hour); make a new one")


def record_setup(
    conn: sqlite3.Connection, *, device_id: str, name: str, board: str, by: str, now_ms: int
) -> None:
    conn.execute(
        "INSERT INTO speaker_setups (device_id, name, board, enrolled_ms, enrolled_by)"
        " VALUES (?, ?, ?, ?, ?)",
        (device_id, name, board, now_ms, by),
    )


def first_boot_done(db: Database, device_id: str, now_ms: int) -> bool:
    """Record a speaker's report that its first boot finished; False if it was not flashed."""
    with db.transaction() as conn:
        done = conn.execute(
            "UPDATE speaker_setups SET first_boot_ms = COALESCE(first_boot_ms, ?)"
            " WHERE device_id = ?",
            (now_ms, device_id),
        )
    return done.rowcount == 1


def setups(conn: sqlite3.Connection, limit: int = 200) -> list[SetupRow]:
    """Flashed speakers, newest first (what the dashboard's Speakers page lists)."""
    rows = conn.execute(
        "SELECT device_id, name, board, enrolled_ms, enrolled_by, first_boot_ms"
        " FROM speaker_setups ORDER BY enrolled_ms DESC LIMIT ?",
        (limit,),
    ).fetchall()
    return [SetupRow(*row) for row in rows]


@dataclass(frozen=True, slots=True)
class Registration:
    device_id: str
    name: str
    files: list[ConfigFile]


def _checked(name: str, board: str, hub_url: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME or not name.isprintable():
        raise ProvisioningError(f"a speaker's name must be 1-{MAX_NAME} printable characters")
    if len(board) > 64 or not re.fullmatch(r"[a-z0-9_-]*", board):
        raise ProvisioningError("board must be a board profile's key (legato-flash --list-boards)")
    if hub_url and (not hub_url.startswith("https://") or len(hub_url) > 200):
        raise ProvisioningError(
            "hub_url must be the hub's https:// address (the speaker pins its certificate)"
        )
    return name


def _unused_id(conn: sqlite3.Connection, name: str) -> str:
    """A new id from the name: never one a speaker (or ``device add``) already holds,
    whose login the upsert would otherwise re-key."""
    for _ in range(20):
        candidate = device_id_for(name, secrets.token_hex(3))
        taken = conn.execute(
            "SELECT 1 FROM broker_users WHERE username = ?"
            " UNION SELECT 1 FROM speaker_setups WHERE device_id = ?",
            (candidate, candidate),
        ).fetchone()
        if taken is None:
            return candidate
    raise ProvisioningError("could not find a free speaker id; try another name")


def register(
    db: Database,
    data_dir: Path,
    *,
    name: str,
    board: str = "",
    hub_url: str = "",
    code: str | None,
    admin: str | None,
    now_ms: int,
    release_key: str = "",
) -> Registration:
    """Create a speaker as ``legato-hub device add`` does, authorised by an
    administrator or by redeeming ``code``, all in one transaction: a refused code
    leaves no speaker behind."""
    name = _checked(name, board, hub_url)
    if admin is None and not code:
        raise EnrolmentRefused("registering a speaker needs an admin token or an enrolment code")
    provisioning.hub_secret(db, data_dir)
    secret = new_secret()
    with db.transaction() as conn:
        device_id = _unused_id(conn, name)
        if admin is None:
            redeem(conn, code or "", device_id, now_ms)
        by = admin if admin is not None else "enrolment code"
        record_setup(conn, device_id=device_id, name=name, board=board, by=by, now_ms=now_ms)
        provisioning.upsert_user_in(conn, device_id, "speaker", secret)
    files = provisioning.speaker_config_files(
        "speaker",
        device_id=device_id,
        name=name,
        secret=secret,
        hub_url=hub_url,
        hub_ca=pki.ca_pem(data_dir),
        local_token=local_token(data_dir, device_id),
        sink="" if board else "alsa",
        board=board,
        release_key=release_key,
    )
    return Registration(device_id=device_id, name=name, files=files)
