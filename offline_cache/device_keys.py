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

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from offline_cache.licence import b64, raw_public
from offline_cache.private_files import write_private_bytes

_X25519 = "x25519.key"
_ED25519 = "ed25519.key"


@dataclass(frozen=True, slots=True)
class DeviceKeys:
    """Raw 32-byte private keys (X25519 and Ed25519), as their files hold them.

    Any 32 bytes are a valid private key of either kind; ``load_or_create`` checks
    the length, so the ``cryptography`` key objects made from them here cannot fail.
    """

    x25519_private: bytes
    ed25519_private: bytes

    @property
    def x25519_public(self) -> bytes:
        return raw_public(X25519PrivateKey.from_private_bytes(self.x25519_private).public_key())

    @property
    def ed25519_public(self) -> bytes:
        return raw_public(self._signer().public_key())

    def registration(self) -> dict[str, str]:
        """The body of ``PUT /v1/devices/{id}/keys``."""
        return {"x25519": b64(self.x25519_public), "ed25519": b64(self.ed25519_public)}

    def sign(self, data: bytes) -> str:
        return b64(self._signer().sign(data))

    def _signer(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self.ed25519_private)

    @classmethod
    def load_or_create(cls, directory: Path) -> DeviceKeys:
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
        x_path, e_path = directory / _X25519, directory / _ED25519
        if not x_path.exists():
            write_private_bytes(x_path, X25519PrivateKey.generate().private_bytes_raw())
        if not e_path.exists():
            write_private_bytes(e_path, Ed25519PrivateKey.generate().private_bytes_raw())
        x_key, e_key = x_path.read_bytes(), e_path.read_bytes()
        if len(x_key) != 32 or len(e_key) != 32:
            raise ValueError(f"the speaker's keys in {directory} are damaged (not 32 bytes)")
        return cls(x25519_private=x_key, ed25519_private=e_key)
