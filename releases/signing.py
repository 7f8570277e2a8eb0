"""The release key: Ed25519, held by the hub operator (0600 under the hub's keys/),
its public half pinned in every speaker's config as ``ed25519:<base64url>``."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from releases.errors import BundleRefusedError

PREFIX = "ed25519:"
SIGNATURE_BYTES = 64


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def key_id(public: bytes) -> str:
    return hashlib.sha256(public).hexdigest()[:16]


def public_text(public: bytes) -> str:
    """How a speaker's config writes the pinned key."""
    return PREFIX + _b64(public)


def parse_public(text: str) -> bytes:
    """The raw 32-byte key in ``ed25519:<base64url>``; ``ValueError`` otherwise."""
    if not text.startswith(PREFIX):
        raise ValueError("a release key is written ed25519:<base64url of 32 bytes>")
    body = text[len(PREFIX) :].strip()
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except ValueError as exc:
        raise ValueError("the release key is not base64url") from exc
    if len(raw) != 32:
        raise ValueError("a release key is 32 bytes")
    return raw


class ReleaseKey:
    """The operator's signing key."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.public = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    @property
    def id(self) -> str:
        return key_id(self.public)

    @property
    def public_text(self) -> str:
        return public_text(self.public)

    def sign(self, data: bytes) -> bytes:
        return self._private.sign(data)

    @classmethod
    def generate(cls) -> ReleaseKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load_or_create(cls, path: Path) -> ReleaseKey:
        """The key in ``path``, made (mode 0600, its directory 0700) at first use;
        ``ValueError`` for a key file its group or anyone else may read or write (it
        is not used: whoever could read it can sign releases)."""
        try:
            raw = _read_private(path)
        except FileNotFoundError:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            key = Ed25519PrivateKey.generate()
            raw = key.private_bytes(
                serialization.Encoding.Raw,
                serialization.PrivateFormat.Raw,
                serialization.NoEncryption(),
            )
            staged = path.with_name(f".{path.name}.{os.getpid()}.new")
            fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(raw)
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(staged, path)  # never replaces a key another process just made
            except FileExistsError:
                raw = _read_private(path)
            finally:
                staged.unlink()
        if len(raw) != 32:
            raise ValueError(f"{path} is not an Ed25519 release key (32 raw bytes)")
        return cls(Ed25519PrivateKey.from_private_bytes(raw))


def _read_private(path: Path) -> bytes:
    """The key file's bytes, if only its owner may read and write it."""
    with open(path, "rb") as f:
        mode = stat.S_IMODE(os.fstat(f.fileno()).st_mode)
        if mode & 0o077:
            raise ValueError(
                f"{path} is open to others (mode {mode:04o}); a release key must be "
                f"its owner's alone: check who read it, then chmod 600 {path}"
            )
        return f.read(1024)


def verify(public: bytes, data: bytes, signature: bytes) -> None:
    """``BundleRefusedError("signature")`` unless ``public`` signed ``data``."""
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, data)
    except (InvalidSignature, ValueError) as exc:
        raise BundleRefusedError(
            "signature",
            "the bundle's signature does not match this speaker's pinned release key "
            "(signed by another hub's key, or changed after signing)",
        ) from exc
