"""Offline licences: what the hub signs and the speaker checks before it unwraps a key.

A licence says: *this* device (its id and its X25519 public key) may play, for
*this* account, until ``expires_ms``, at most ``max_tracks`` tracks offline.  It
carries the account's key-encryption key (KEK) for that device, sealed so that
only the device's X25519 private key opens it (ephemeral-static ECDH, HKDF-SHA256,
AES-256-GCM), and the whole body is signed by the hub's Ed25519 key.

Both sides use this module: the hub to issue, the speaker to verify and unwrap.
Verification is a pure function of the licence, the hub's public key, the
device's identity and the time (``now_ms`` and the latest time the device has
ever seen, so a clock set back is caught), returning the licence or raising a
``LicenceError`` whose message a listener can act on.
"""

from __future__ import annotations

import base64
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from offline_cache import openssl
from offline_cache.errors import OfflineCacheError

if TYPE_CHECKING:  # the hub's side (issuing) hands in ``cryptography`` keys
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

DAY_MS = 24 * 60 * 60 * 1000
VALID_DAYS = 30
MAX_TRACKS_PER_DEVICE = 10_000
MAX_OFFLINE_DEVICES_PER_ACCOUNT = 5
#: A device clock this far behind the latest time it has seen counts as set back
#: (NTP corrections are seconds; a day is a deliberate change).
CLOCK_SLACK_MS = 60 * 60 * 1000
FORMAT = "legato-licence-1"
RENEW_HOW = "connect the speaker to its hub; it renews by itself (or download again)"


class LicenceError(OfflineCacheError):
    """A licence cannot be used; the message says why and what to do."""


class ForgedLicenceError(LicenceError):
    pass


class WrongDeviceError(LicenceError):
    pass


class ExpiredLicenceError(LicenceError):
    def __init__(self, expires_ms: int) -> None:
        self.expires_ms = expires_ms
        super().__init__(
            f"the offline licence expired on {day(expires_ms)}; to renew it, {RENEW_HOW}"
        )


class ClockSetBackError(LicenceError):
    pass


def day(ms: int) -> str:
    """A date a listener reads: ``2026-12-23 14:05 UTC``."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def raw_public(key: Any) -> bytes:
    """A ``cryptography`` public key's raw 32 bytes (the hub's side; tests)."""
    from cryptography.hazmat.primitives import serialization

    raw: bytes = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return raw


@dataclass(frozen=True, slots=True, kw_only=True)
class Licence:
    """The signed body.  Field order does not matter: it is signed as sorted JSON."""

    licence_id: str
    device_id: str
    account: str
    device_x25519: str  # b64 raw public key the KEK is sealed to
    issued_ms: int
    expires_ms: int
    max_tracks: int
    kek_epk: str  # b64 ephemeral X25519 public key
    kek_nonce: str  # b64
    kek_sealed: str  # b64 AES-GCM(KEK)
    format: str = FORMAT


@dataclass(frozen=True, slots=True)
class SignedLicence:
    """The wire form: the exact signed bytes and their signature (both base64)."""

    body: str
    signature: str

    def to_json(self) -> dict[str, str]:
        return {"body": self.body, "signature": self.signature}

    @classmethod
    def from_json(cls, doc: object) -> SignedLicence:
        if not isinstance(doc, dict) or not all(
            isinstance(doc.get(k), str) for k in ("body", "signature")
        ):
            raise ForgedLicenceError("the licence is not a signed licence document")
        return cls(body=doc["body"], signature=doc["signature"])


def _kek_key(shared: bytes, licence_id: str, device_id: str) -> bytes:
    return openssl.hkdf_sha256(shared, f"{FORMAT}|kek|{licence_id}|{device_id}".encode())


def issue(
    *,
    signer: Ed25519PrivateKey,
    licence_id: str,
    device_id: str,
    account: str,
    device_x25519: bytes,
    kek: bytes,
    issued_ms: int,
    valid_days: int = VALID_DAYS,
    max_tracks: int = MAX_TRACKS_PER_DEVICE,
) -> SignedLicence:
    """Seal ``kek`` to the device's X25519 key and sign the licence (the hub's side)."""
    if len(kek) != 32:
        raise ValueError("a KEK is 32 bytes")
    ephemeral = openssl.new_private_key()
    shared = openssl.x25519(ephemeral, device_x25519)
    box = openssl.gcm_seal(_kek_key(shared, licence_id, device_id), kek, licence_id.encode())
    nonce, sealed = box[: openssl.NONCE], box[openssl.NONCE :]
    body = Licence(
        licence_id=licence_id,
        device_id=device_id,
        account=account,
        device_x25519=b64(device_x25519),
        issued_ms=issued_ms,
        expires_ms=issued_ms + valid_days * DAY_MS,
        max_tracks=max_tracks,
        kek_epk=b64(openssl.x25519_public(ephemeral)),
        kek_nonce=b64(nonce),
        kek_sealed=b64(sealed),
    )
    data = json.dumps(asdict(body), sort_keys=True, separators=(",", ":")).encode()
    return SignedLicence(body=b64(data), signature=b64(signer.sign(data)))


def read(signed: SignedLicence, hub_key: bytes | Ed25519PublicKey) -> Licence:
    """The licence, if the hub signed exactly these bytes; else ``ForgedLicenceError``."""
    forged = ForgedLicenceError(
        "the licence is not signed by this hub (forged or altered); download again"
    )
    raw_key = hub_key if isinstance(hub_key, bytes) else raw_public(hub_key)
    try:
        data = unb64(signed.body)
        if not openssl.ed25519_verify(raw_key, unb64(signed.signature), data):
            raise forged
        licence = Licence(**json.loads(data))
    except (ValueError, TypeError) as exc:
        raise forged from exc
    if licence.format != FORMAT:
        raise ForgedLicenceError(f"unknown licence format {licence.format!r}")
    return licence


def check(
    licence: Licence,
    *,
    device_id: str,
    device_x25519: bytes,
    now_ms: int,
    latest_seen_ms: int,
) -> None:
    """Raise unless the licence is this device's and the time is within it."""
    if licence.device_id != device_id or unb64(licence.device_x25519) != device_x25519:
        raise WrongDeviceError(
            f"the licence was issued to speaker {licence.device_id!r}, not this one; "
            "cached files copied from another speaker cannot play here — download them here"
        )
    if now_ms + CLOCK_SLACK_MS < latest_seen_ms:
        raise ClockSetBackError(
            f"the speaker's clock ({day(now_ms)}) is behind a time it has already seen "
            f"({day(latest_seen_ms)}); set the clock right (or connect to the hub) to play "
            "offline content"
        )
    if now_ms + CLOCK_SLACK_MS < licence.issued_ms:
        raise ClockSetBackError(
            f"the speaker's clock ({day(now_ms)}) is before the licence was issued "
            f"({day(licence.issued_ms)}); set the clock right"
        )
    if now_ms >= licence.expires_ms:
        raise ExpiredLicenceError(licence.expires_ms)


def unwrap_kek(licence: Licence, device_key: bytes | X25519PrivateKey) -> bytes:
    """Open the KEK with the device's private key (only the addressed device can)."""
    if not isinstance(device_key, bytes):
        from cryptography.hazmat.primitives import serialization

        device_key = device_key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
    try:
        shared = openssl.x25519(device_key, unb64(licence.kek_epk))
        key = _kek_key(shared, licence.licence_id, licence.device_id)
        box = unb64(licence.kek_nonce) + unb64(licence.kek_sealed)
        return openssl.gcm_open(key, box, licence.licence_id.encode())
    except (openssl.CryptoError, ValueError) as exc:
        raise WrongDeviceError(
            "the licence's key does not open with this speaker's key; "
            "files copied from another speaker cannot play here"
        ) from exc
