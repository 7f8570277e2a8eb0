"""AES-256-GCM for cached segments and for the content keys that seal them.

Each track has its own random content key; each segment is sealed under it
with a fresh nonce and the segment's identity (track, quality, number) as
associated data, so a blob moved to another track or position fails its tag
just as a flipped bit does.  Content keys are in turn wrapped by a
key-encryption key (the account's KEK from a licence for offline downloads, the
device's own cache key for the streaming tier), bound to their track the same way.

Every sealed value is ``nonce (12) || ciphertext || tag (16)``, the layout the
speakers' caches and the hub's licences already hold.  The cipher is the
``cryptography`` package's ``AESGCM``; its ``InvalidTag`` never leaves this
module: it becomes ``TamperedError``.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from offline_cache.errors import OfflineCacheError

NONCE = 12
TAG = 16
OVERHEAD = NONCE + TAG
_SEGMENT = b"legato-seg-1|"
_KEY = b"legato-ck-1|"


class TamperedError(OfflineCacheError):
    """A blob or wrapped key failed its authentication tag: never use its bytes."""


def new_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def seal(key: bytes, data: bytes, aad: bytes) -> bytes:
    """``nonce || ciphertext || tag`` under a fresh random nonce (a 32-byte ``key``)."""
    nonce = os.urandom(NONCE)
    return nonce + _cipher(key).encrypt(nonce, data, aad)


def open_sealed(key: bytes, sealed: bytes, aad: bytes, what: str) -> bytes:
    """The plaintext of what ``seal`` made; ``TamperedError`` naming ``what`` otherwise.

    The nonce is the first 12 bytes, whatever the length of ``sealed``: ``AESGCM``
    itself would take a nonce of any length from 8 to 128 bytes.
    """
    if len(sealed) < OVERHEAD:
        raise TamperedError(f"{what} is truncated")
    view = memoryview(sealed)  # slices of a view: the blob is not copied
    try:
        return _cipher(key).decrypt(view[:NONCE], view[NONCE:], aad)
    except InvalidTag as exc:
        raise TamperedError(f"{what} failed its integrity check") from exc


def _cipher(key: bytes) -> AESGCM:
    if len(key) != 32:  # AESGCM would take a 16- or 24-byte key too
        raise ValueError("AES-256-GCM takes a 32-byte key")
    return AESGCM(key)


def segment_aad(track_id: str, quality: str, n: int) -> bytes:
    return _SEGMENT + f"{track_id}|{quality}|{n}".encode()


def seal_segment(content_key: bytes, track_id: str, quality: str, n: int, data: bytes) -> bytes:
    return seal(content_key, data, segment_aad(track_id, quality, n))


def open_segment(content_key: bytes, track_id: str, quality: str, n: int, blob: bytes) -> bytes:
    aad = segment_aad(track_id, quality, n)
    return open_sealed(content_key, blob, aad, f"segment {n} of {track_id} ({quality})")


def wrap_key(kek: bytes, track_id: str, content_key: bytes) -> bytes:
    return seal(kek, content_key, _KEY + track_id.encode())


def unwrap_key(kek: bytes, track_id: str, wrapped: bytes) -> bytes:
    try:
        return open_sealed(kek, wrapped, _KEY + track_id.encode(), f"the key of {track_id}")
    except (TamperedError, ValueError) as exc:
        raise TamperedError(
            f"the key of {track_id} does not open with this account's licence"
        ) from exc
