"""The offline cache's exception tree: one root, so a caller can catch the cache as a whole.

    OfflineCacheError            root of everything this package raises
    ├── StoreError               the store cannot do what was asked (store)
    ├── TamperedError            a blob or wrapped key failed its tag: never use its bytes (sealing)
    ├── CryptoError              a device's X25519 key nothing can be sealed to (licence)
    └── LicenceError             a licence cannot be used; the message says what to do (licence)
        ├── ForgedLicenceError   not signed by the pinned hub key, or not a licence at all
        ├── WrongDeviceError     issued to another speaker, or its key does not open here
        ├── ExpiredLicenceError  past ``expires_ms``
        └── ClockSetBackError    the clock is behind a time the speaker has already seen

``StoreError`` is defined here, since every module of the store raises it, and
is imported from ``offline_cache.store``; each other class lives beside the code
that raises it (the module in brackets) and is imported from there.  Arguments a
caller got wrong (a key that is not 32 bytes, a negative cap, damaged key files)
raise ``ValueError`` as Python's own functions do.

The primitives are the ``cryptography`` package's; what it raises (``InvalidTag``,
``InvalidSignature``, ``ValueError`` for key bytes it refuses) is translated where
it is called (``sealing``, ``licence``) into the classes above, with the original
as the cause: ``InvalidTag`` and ``InvalidSignature`` never reach a caller.
"""

from __future__ import annotations


class OfflineCacheError(Exception):
    """Root of the errors raised by ``offline_cache``."""


class StoreError(OfflineCacheError):
    """The store cannot do what was asked; the message says why."""
