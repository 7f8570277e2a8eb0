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

The primitives are the ``cryptography`` package's (X25519, HKDF-SHA256, Ed25519;
AES-256-GCM through ``sealing``); what they raise is translated here: a bad
signature or hub key is a ``ForgedLicenceError``, a KEK that does not open a
``WrongDeviceError``, a device key the hub cannot seal to a ``CryptoError``.
"""

from __future__ import annotations

import base64
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from offline_cache import sealing
from offline_cache.errors import OfflineCacheError

DAY_MS = 24 * 60 * 60 * 1000
VALID_DAYS = 30
MAX_TRACKS_PER_DEVICE = 10_000
MAX_OFFLINE_DEVICES_PER_ACCOUNT = 5
#: A device clock this far behind the latest time it has seen counts as set back
#: (NTP corrections are seconds; a day is a deliberate change).
CLOCK_SLACK_MS = 60 * 60 * 1000
FORMAT = "legato-licence-1"
RENEW_HOW = "connect the speaker to its hub; it renews by itself (or download again)"


class CryptoError(OfflineCacheError):
    """A key the ``cryptography`` package refuses: a device's X25519 key nothing can be
    sealed to (not 32 bytes, or a point of small order)."""


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


def raw_public(key: Ed25519PublicKey | X25519PublicKey) -> bytes:
    """A public key's raw 32 bytes, as licences and the hub's sync carry them."""
    return key.public_bytes_raw()


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
    info = f"{FORMAT}|kek|{licence_id}|{device_id}".encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(shared)


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
    ephemeral = X25519PrivateKey.generate()
    try:
        shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(device_x25519))
    except ValueError as exc:
        raise CryptoError(f"the device's X25519 key cannot be sealed to: {exc}") from exc
    box = sealing.seal(_kek_key(shared, licence_id, device_id), kek, licence_id.encode())
    nonce, sealed = box[: sealing.NONCE], box[sealing.NONCE :]
    body = Licence(
        licence_id=licence_id,
        device_id=device_id,
        account=account,
        device_x25519=b64(device_x25519),
        issued_ms=issued_ms,
        expires_ms=issued_ms + valid_days * DAY_MS,
        max_tracks=max_tracks,
        kek_epk=b64(raw_public(ephemeral.public_key())),
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
    try:
        if isinstance(hub_key, bytes):
            hub_key = Ed25519PublicKey.from_public_bytes(hub_key)
        data = unb64(signed.body)
        hub_key.verify(unb64(signed.signature), data)
        licence = Licence(**json.loads(data))
    except (InvalidSignature, ValueError, TypeError) as exc:
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
    try:
        mine = (
            X25519PrivateKey.from_private_bytes(device_key)
            if isinstance(device_key, bytes)
            else device_key
        )
        # ValueError for a key that is not 32 bytes or is a point of small order
        shared = mine.exchange(X25519PublicKey.from_public_bytes(unb64(licence.kek_epk)))
        nonce = unb64(licence.kek_nonce)
        if len(nonce) != sealing.NONCE:  # the box is nonce || sealed: no other split
            raise ValueError(f"a {len(nonce)}-byte nonce")
        box = nonce + unb64(licence.kek_sealed)
        key = _kek_key(shared, licence.licence_id, licence.device_id)
        return sealing.open_sealed(key, box, licence.licence_id.encode(), "the licence's KEK")
    except (sealing.TamperedError, ValueError) as exc:
        raise WrongDeviceError(
            "the licence's key does not open with this speaker's key; "
            "files copied from another speaker cannot play here"
        ) from exc
