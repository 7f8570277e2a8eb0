"""The speaker's own keys: X25519 (licences are sealed to it) and Ed25519 (its identity).

Made on first use and kept in the speaker's key directory, each in a file of
mode 0600; the public halves are registered with the hub when the speaker pairs.
A copy of the cache without these files cannot open a licence, and these files
never leave the device.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from offline_cache.licence import b64, raw_public

_X25519 = "x25519.key"
_ED25519 = "ed25519.key"


def write_secret_bytes(path: Path, data: bytes) -> None:
    """Write atomically with mode 0600 from the start (never briefly readable by others)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _raw_private(key: X25519PrivateKey | Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )


@dataclass(frozen=True, slots=True)
class DeviceKeys:
    x25519: X25519PrivateKey
    ed25519: Ed25519PrivateKey

    @property
    def x25519_public(self) -> bytes:
        return raw_public(self.x25519.public_key())

    @property
    def ed25519_public(self) -> bytes:
        return raw_public(self.ed25519.public_key())

    def registration(self) -> dict[str, str]:
        """The body of ``PUT /v1/devices/{id}/keys``."""
        return {"x25519": b64(self.x25519_public), "ed25519": b64(self.ed25519_public)}

    def sign(self, data: bytes) -> str:
        return b64(self.ed25519.sign(data))

    @classmethod
    def load_or_create(cls, directory: Path) -> DeviceKeys:
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
        x_path, e_path = directory / _X25519, directory / _ED25519
        if not x_path.exists():
            write_secret_bytes(x_path, _raw_private(X25519PrivateKey.generate()))
        if not e_path.exists():
            write_secret_bytes(e_path, _raw_private(Ed25519PrivateKey.generate()))
        return cls(
            x25519=X25519PrivateKey.from_private_bytes(x_path.read_bytes()),
            ed25519=Ed25519PrivateKey.from_private_bytes(e_path.read_bytes()),
        )
