"""AES-256-GCM for cached segments and for the content keys that seal them.

Each track has its own random content key; each segment is sealed under it
with a fresh nonce and the segment's identity (track, quality, number) as
associated data, so a blob moved to another track or position fails its tag
just as a flipped bit does.  Content keys are in turn wrapped by a
key-encryption key (the account's KEK from a licence for offline downloads, the
device's own cache key for the streaming tier), bound to their track the same way.
"""

from __future__ import annotations

import os

from offline_cache import openssl
from offline_cache.errors import OfflineCacheError

NONCE = 12
TAG = 16
OVERHEAD = NONCE + TAG
_SEGMENT = b"legato-seg-1|"
_KEY = b"legato-ck-1|"


class TamperedError(OfflineCacheError):
    """A blob or wrapped key failed its authentication tag: never use its bytes."""


def new_key() -> bytes:
    return os.urandom(32)


def segment_aad(track_id: str, quality: str, n: int) -> bytes:
    return _SEGMENT + f"{track_id}|{quality}|{n}".encode()


def seal_segment(content_key: bytes, track_id: str, quality: str, n: int, data: bytes) -> bytes:
    return openssl.gcm_seal(content_key, data, segment_aad(track_id, quality, n))


def open_segment(content_key: bytes, track_id: str, quality: str, n: int, blob: bytes) -> bytes:
    if len(blob) < OVERHEAD:
        raise TamperedError(f"segment {n} of {track_id} ({quality}) is truncated")
    try:
        return openssl.gcm_open(content_key, blob, segment_aad(track_id, quality, n))
    except openssl.CryptoError as exc:
        raise TamperedError(
            f"segment {n} of {track_id} ({quality}) failed its integrity check"
        ) from exc


def wrap_key(kek: bytes, track_id: str, content_key: bytes) -> bytes:
    return openssl.gcm_seal(kek, content_key, _KEY + track_id.encode())


def unwrap_key(kek: bytes, track_id: str, wrapped: bytes) -> bytes:
    try:
        return openssl.gcm_open(kek, wrapped, _KEY + track_id.encode())
    except (openssl.CryptoError, ValueError) as exc:
        raise TamperedError(
            f"the key of {track_id} does not open with this account's licence"
        ) from exc
