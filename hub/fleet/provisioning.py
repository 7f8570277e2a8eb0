"""Broker credentials for the hub and its speakers, and speaker config files.

Each speaker gets its own random broker secret; the hub stores only its
PBKDF2 hash (``broker_users``) and hands the secret out once, in a speaker
config written with its secret file at mode 0600.  The hub's own secret lives
under ``keys/`` (mode 0700).  The config format is the one
``device.config.load`` reads; a test holds the two together.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connect_protocol.quoting import quoted
from connect_protocol.topics import HUB_USERNAME, is_valid_device_id
from hub.clock import now_ms
from hub.db import Database
from hub.errors import ProvisioningError
from hub.files import keys_dir, write_private
from hub.fleet.broker import BrokerUser, Role, hash_secret, new_secret


def _upsert_user(db: Database, username: str, role: Role, secret: str) -> None:
    with db.transaction() as conn:
        upsert_user_in(conn, username, role, secret)


def upsert_user_in(conn: sqlite3.Connection, username: str, role: Role, secret: str) -> None:
    """Create or re-key a broker login inside the caller's transaction."""
    conn.execute(
        "INSERT INTO broker_users (username, role, secret_hash, created_ms) VALUES (?, ?, ?, ?)"
        " ON CONFLICT(username) DO UPDATE SET role = excluded.role,"
        " secret_hash = excluded.secret_hash",
        (username, role, hash_secret(secret), now_ms()),
    )
    # Pairing (again) is a fresh install: it registers new offline keys, and the
    # hub then seals licences to those (hub.offline).
    conn.execute("DELETE FROM device_keys WHERE device_id = ?", (username,))


def hub_secret(db: Database, data_dir: Path) -> str:
    """The hub's broker secret, created on first use."""
    path = keys_dir(data_dir) / "broker-hub.secret"
    if path.exists():
        secret = path.read_text().strip()
        with db.reading() as conn:
            known = conn.execute(
                "SELECT 1 FROM broker_users WHERE username = ?", (HUB_USERNAME,)
            ).fetchone()
        if known:
            return secret
    else:
        secret = new_secret()
        write_private(path, secret + "\n")
    _upsert_user(db, HUB_USERNAME, "hub", secret)
    return secret


def add_broker_user(db: Database, username: str, role: Role) -> str:
    """Create (or re-key) a broker login; returns its new secret, shown only now.

    Re-keying a speaker also forgets its registered offline keys, so the install that
    gets the new secret can register its own."""
    if not is_valid_device_id(username) or username == HUB_USERNAME:
        raise ProvisioningError(
            f"device id {username!r} must be 1-64 letters, digits, '-' or '_' "
            f"and not {HUB_USERNAME!r}"
        )
    secret = new_secret()
    _upsert_user(db, username, role, secret)
    return secret


def broker_user(db: Database, username: str) -> BrokerUser | None:
    """Look a login up (the embedded broker calls this on every CONNECT)."""
    try:
        with db.reading() as conn:
            row = conn.execute(
                "SELECT username, role, secret_hash FROM broker_users WHERE username = ?",
                (username,),
            ).fetchone()
    except sqlite3.Error:
        return None
    if row is None:
        return None
    return BrokerUser(username=row["username"], role=row["role"], secret_hash=row["secret_hash"])


class BrokerUserCache:
    """``broker_user`` for the embedded broker, which asks on every CONNECT, publish
    and delivery: answers are kept ``ttl_s`` seconds, so a device added by another
    process (``legato-hub device add``) can log in within that time.
    """

    def __init__(
        self, db: Database, *, ttl_s: float = 5.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._db = db
        self._ttl_s = ttl_s
        self._clock = clock
        self._entries: dict[str, tuple[float, BrokerUser | None]] = {}
        self._lock = threading.Lock()

    def __call__(self, username: str) -> BrokerUser | None:
        now = self._clock()
        with self._lock:
            hit = self._entries.get(username)
        if hit is not None and now - hit[0] < self._ttl_s:
            return hit[1]
        user = broker_user(self._db, username)
        with self._lock:
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[username] = (now, user)
        return user

    def forget(self, username: str) -> None:
        with self._lock:
            self._entries.pop(username, None)


def all_broker_users(db: Database) -> list[BrokerUser]:
    with db.reading() as conn:
        rows = conn.execute("SELECT username, role, secret_hash FROM broker_users").fetchall()
    return [BrokerUser(username=r[0], role=r[1], secret_hash=r[2]) for r in rows]


@dataclass(frozen=True, slots=True)
class ConfigFile:
    """One file of a speaker's config set: its name beside the config, its text, and
    whether it holds a secret (written 0600, and deleted from a card after first boot)."""

    name: str
    text: str
    secret: bool


def speaker_config_files(
    stem: str,
    *,
    device_id: str,
    name: str,
    secret: str,
    hub_url: str = "",
    broker_url: str = "",
    hub_ca: str = "",
    local_token: str = "",
    http_host: str = "0.0.0.0",
    sink: str = "null",
    engine: str = "native",
    board: str = "",
    release_key: str = "",
) -> list[ConfigFile]:
    """The files of a config ``legato-speaker --config STEM.toml`` reads: the config
    itself naming the others by paths relative to it (so the set runs wherever it is
    copied: a data dir, a card's boot partition, ``/etc/legato``), the broker secret,
    the local-control token, and the hub's CA, which the speaker pins: it sends its
    secret only to a hub that CA signed.  An empty ``sink`` leaves the choice to the
    board profile (its ALSA PCM) or the speaker's default."""
    q = quoted  # names people type: emoji, quotes, accents
    files = [ConfigFile(f"{stem}.secret", secret + "\n", True)]
    token_line = ca_line = board_line = ""
    if local_token:
        files.append(ConfigFile(f"{stem}.local-token", local_token + "\n", True))
        token_line = f"local_token_file = {q(f'{stem}.local-token')}\n"
    if hub_ca:
        files.append(ConfigFile(f"{stem}-hub-ca.pem", hub_ca, False))
        ca_line = f"ca_file = {q(f'{stem}-hub-ca.pem')}\n"
    if board:
        board_line = f"board = {q(board)}\n"
    config = (
        "# Written by legato-hub. The broker secret is in the file next to this one.\n"
        f"[speaker]\nid = {q(device_id)}\nname = {q(name)}\nhttp_host = {q(http_host)}\n"
        f"{board_line}{token_line}\n"
        f"[hub]\nurl = {q(hub_url)}\nbroker = {q(broker_url)}\n{ca_line}\n"
        f"[broker]\nusername = {q(device_id)}\npassword_file = {q(f'{stem}.secret')}\n\n"
        f"[audio]\nengine = {q(engine)}\n"
        + (f"sink = {q(sink)}\n" if sink else "")
        + (f"\n[updates]\nrelease_key = {q(release_key)}\n" if release_key else "")
    )
    return [ConfigFile(f"{stem}.toml", config, False), *files]


def write_speaker_config(path: Path, **values: Any) -> None:
    """Write :func:`speaker_config_files` as ``path`` and its neighbours (secrets 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for file in speaker_config_files(path.stem, **values):
        target = path.with_name(file.name)
        if file.secret:
            write_private(target, file.text)
        else:
            target.write_text(file.text)
