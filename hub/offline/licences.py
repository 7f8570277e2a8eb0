"""The hub's licence keys and its stored licences.

Two secrets under ``keys/`` (mode 0600, created on first use):

- ``licence-signing.key``: the Ed25519 key that signs every licence (PEM, PKCS#8);
  speakers learn its public half from their signed sync.
- ``licence-kek.secret``: 32 random bytes from which each (device, account, epoch)
  key-encryption key is derived with HKDF-SHA256.  KEKs are never stored: the same
  inputs give the same KEK, so a renewed licence opens what the old one sealed, and a
  revocation (which moves the epoch on) makes everything before it unreadable.

The licence table's rows keep the signed document so a speaker gets the very same
bytes again until a renewal is due; the rules of when to issue are in
:mod:`hub.offline.rules`.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from hub.errors import ProvisioningError
from hub.files import create_private_once, keys_dir
from hub.offline.rules import HeldLicence, needs_new_licence, next_epoch
from offline_cache import licence as lic

SIGNING_KEY_FILE = "licence-signing.key"
KEK_SECRET_FILE = "licence-kek.secret"
KEK_BYTES = 32


@dataclass(frozen=True, slots=True)
class LicenceKeys:
    signer: Ed25519PrivateKey
    kek_master: bytes

    @classmethod
    def open(cls, data_dir: Path) -> LicenceKeys:
        """The data dir's keys, created on first use (by whichever process is first)."""
        directory = keys_dir(data_dir)
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        key_path = directory / SIGNING_KEY_FILE
        try:
            signer = serialization.load_pem_private_key(create_private_once(key_path, pem), None)
        except ValueError as exc:
            raise ProvisioningError(f"{key_path} is not a PEM private key: {exc}") from exc
        if not isinstance(signer, Ed25519PrivateKey):
            raise ProvisioningError(f"{key_path} is not an Ed25519 key")
        kek_path = directory / KEK_SECRET_FILE
        master = create_private_once(kek_path, secrets.token_bytes(KEK_BYTES))
        if len(master) != KEK_BYTES:
            raise ProvisioningError(f"{kek_path} must hold exactly {KEK_BYTES} bytes")
        return cls(signer, master)

    def public_raw(self) -> bytes:
        return lic.raw_public(self.signer.public_key())

    def kek(self, device_id: str, user_id: int, epoch: int) -> bytes:
        info = f"legato-kek-1|{device_id}|{user_id}|{epoch}".encode()
        hkdf = HKDF(algorithm=hashes.SHA256(), length=KEK_BYTES, salt=None, info=info)
        return hkdf.derive(self.kek_master)


class LazyKeys:
    """:class:`LicenceKeys` opened on first use, once, however many threads ask."""

    def __init__(self, data_dir: Path) -> None:
        self._data_dir = data_dir
        self._keys: LicenceKeys | None = None
        self._lock = threading.Lock()

    def get(self) -> LicenceKeys:
        with self._lock:
            if self._keys is None:
                self._keys = LicenceKeys.open(self._data_dir)
            return self._keys


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredLicence:
    id: str
    device_id: str
    user_id: int
    epoch: int
    device_x25519: str
    issued_ms: int
    expires_ms: int
    revoked_ms: int | None
    signed_json: str

    def held(self) -> HeldLicence:
        return HeldLicence(
            epoch=self.epoch,
            expires_ms=self.expires_ms,
            revoked_ms=self.revoked_ms,
            device_x25519=self.device_x25519,
        )

    def document(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(self.signed_json)
        return doc


_COLUMNS = (
    "id, device_id, user_id, epoch, device_x25519, issued_ms, expires_ms, revoked_ms, signed_json"
)


def _stored(row: sqlite3.Row) -> StoredLicence:
    return StoredLicence(**{k: row[k] for k in row.keys()})  # noqa: SIM118 - sqlite3.Row


def latest(conn: sqlite3.Connection, device_id: str, user_id: int) -> StoredLicence | None:
    """The most recent licence of an account on a device (revoked or not)."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM licences WHERE device_id = ? AND user_id = ?"
        " ORDER BY issued_ms DESC, rowid DESC LIMIT 1",
        (device_id, user_id),
    ).fetchone()
    return None if row is None else _stored(row)


def latest_for_device(conn: sqlite3.Connection, device_id: str) -> str | None:
    """The X25519 key (b64) the device's most recent licence was sealed to."""
    row = conn.execute(
        "SELECT device_x25519 FROM licences WHERE device_id = ?"
        " ORDER BY issued_ms DESC, rowid DESC LIMIT 1",
        (device_id,),
    ).fetchone()
    return None if row is None else str(row[0])


def live_devices(conn: sqlite3.Connection, user_id: int, now_ms: int) -> list[str]:
    """Devices where the account holds an unrevoked, unexpired licence."""
    rows = conn.execute(
        "SELECT DISTINCT device_id FROM licences WHERE user_id = ? AND revoked_ms IS NULL"
        " AND expires_ms > ? ORDER BY device_id",
        (user_id, now_ms),
    )
    return [str(r[0]) for r in rows]


def ensure(
    conn: sqlite3.Connection,
    keys: LicenceKeys,
    *,
    device_id: str,
    user_id: int,
    device_x25519: str,
    now_ms: int,
) -> StoredLicence:
    """The account's licence on the device: the stored one, or a new one when none is
    live, it was sealed to another key, or it is due for renewal (same epoch, so the
    same KEK).  Call inside a transaction."""
    current = latest(conn, device_id, user_id)
    held = None if current is None else current.held()
    if current is not None and not needs_new_licence(
        held, device_x25519=device_x25519, now_ms=now_ms
    ):
        return current
    epoch = next_epoch(held)
    licence_id = secrets.token_hex(16)
    signed = lic.issue(
        signer=keys.signer,
        licence_id=licence_id,
        device_id=device_id,
        account=str(user_id),
        device_x25519=lic.unb64(device_x25519),
        kek=keys.kek(device_id, user_id, epoch),
        issued_ms=now_ms,
    )
    new = StoredLicence(
        id=licence_id,
        device_id=device_id,
        user_id=user_id,
        epoch=epoch,
        device_x25519=device_x25519,
        issued_ms=now_ms,
        expires_ms=now_ms + lic.VALID_DAYS * lic.DAY_MS,
        revoked_ms=None,
        signed_json=json.dumps(signed.to_json(), separators=(",", ":")),
    )
    conn.execute(
        f"INSERT INTO licences ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            new.id,
            new.device_id,
            new.user_id,
            new.epoch,
            new.device_x25519,
            new.issued_ms,
            new.expires_ms,
            new.revoked_ms,
            new.signed_json,
        ),
    )
    return new


def revoke(conn: sqlite3.Connection, device_id: str, user_id: int, now_ms: int) -> bool:
    """Revoke the account's unrevoked licences on the device; False when there were none."""
    done = conn.execute(
        "UPDATE licences SET revoked_ms = ? WHERE device_id = ? AND user_id = ?"
        " AND revoked_ms IS NULL",
        (now_ms, device_id, user_id),
    )
    return done.rowcount > 0


def revoked_accounts(conn: sqlite3.Connection, device_id: str) -> list[int]:
    """Accounts whose latest licence on the device is revoked (the speaker shreds them)."""
    rows = conn.execute(
        "SELECT l.user_id FROM licences l WHERE l.device_id = ? AND l.revoked_ms IS NOT NULL"
        " AND l.rowid = (SELECT m.rowid FROM licences m WHERE m.device_id = l.device_id"
        " AND m.user_id = l.user_id ORDER BY m.issued_ms DESC, m.rowid DESC LIMIT 1)"
        " ORDER BY l.user_id",
        (device_id,),
    )
    return [int(r[0]) for r in rows]


def all_licences(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every licence, newest first, with its device's and user's names (the dashboard's);
    ``current`` is false for one a renewal or a newer licence replaced."""
    rows = conn.execute(
        "SELECT l.id, l.device_id, coalesce(d.name, l.device_id) AS device_name, u.name AS user,"
        " l.epoch, l.issued_ms, l.expires_ms, l.revoked_ms, l.rowid = (SELECT m.rowid"
        " FROM licences m WHERE m.device_id = l.device_id AND m.user_id = l.user_id"
        " ORDER BY m.issued_ms DESC, m.rowid DESC LIMIT 1) AS current FROM licences l"
        " JOIN users u ON u.id = l.user_id LEFT JOIN devices d ON d.id = l.device_id"
        " ORDER BY l.issued_ms DESC, l.rowid DESC"
    )
    return [
        {
            "id": r["id"],
            "device_id": r["device_id"],
            "device_name": r["device_name"],
            "user": r["user"],
            "epoch": r["epoch"],
            "issued_ms": r["issued_ms"],
            "expires_ms": r["expires_ms"],
            "expires": lic.day(r["expires_ms"]),
            "revoked_ms": r["revoked_ms"],
            "revoked": r["revoked_ms"] is not None,
            "current": bool(r["current"]),
        }
        for r in rows
    ]
