"""What goes wrong with a release, for a person to read.

ReleaseError         root of everything this package raises
├── BundleRefusedError  a bundle is not installed: bad signature, hash, format,
│                    version or compatibility (``reason`` is a short code)
└── InstallError     a verified bundle could not be installed into a slot
"""

from __future__ import annotations


class ReleaseError(Exception):
    """Root of the errors raised by ``releases``."""


class BundleRefusedError(ReleaseError):
    """The bundle is refused and nothing was changed.  ``reason`` is one of
    ``signature``, ``hash``, ``format``, ``truncated``, ``downgrade``, ``installed``,
    ``incompatible``, ``key``: what a hub's dashboard groups failures by."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class InstallError(ReleaseError):
    """Installing a verified bundle into a new slot failed; the running release is
    untouched."""
