"""Error codes on the wire and the package's exception tree.

Codes travel in acks and in the hub's HTTP errors, so they are strings in an
``Enum`` rather than integers.  Exceptions::

    ConnectError                 root of everything this package raises
    ├── TransportError           the broker or socket failed (local side)
    │   ├── NotConnectedError    a publish while the transport is down
    │   ├── PayloadTooLargeError a message over MAX_MESSAGE_BYTES, refused unsent
    │   └── MdnsError            avahi-daemon refused or failed a D-Bus call (mdns)
    └── OggError                 bytes that are not the simple Ogg Vorbis stream ingest
        │                        writes (ogg; also a ValueError)
        └── BadSegmentError      the bytes are not the segment the manifest describes (ogg)

The transport errors live here; the Ogg ones beside the code that raises them,
in ``ogg``.  Refusals by the other side are not exceptions here: they arrive as
``Ack`` values with an ``ErrorCode``, and bytes that do not decode come back from
``codec`` as a ``DecodeError`` value (its private ``_InvalidError`` is a
``ConnectError`` too, but never leaves the decoder).  Arguments a caller got
wrong (a malformed device id, an unknown broker URL scheme) raise ``ValueError``.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """Why a message or a command was refused."""

    BAD_JSON = "bad_json"  # not UTF-8 JSON at all
    BAD_MESSAGE = "bad_message"  # JSON, but not an object of a known shape
    UNKNOWN_COMMAND = "unknown_command"
    WRONG_TYPE = "wrong_type"  # a field of the wrong type
    INVALID_VALUE = "invalid_value"  # right type, value out of range
    TOO_LARGE = "too_large"  # over MAX_MESSAGE_BYTES
    CONFLICT = "conflict"  # stale expected_revision
    NO_TRACK = "no_track"  # a command that needs something loaded
    RATE_LIMITED = "rate_limited"  # too many commands too fast (a speaker's local control)
    NOT_FOUND = "not_found"  # unknown or offline device
    TIMEOUT = "timeout"  # no ack in time
    INTERNAL = "internal"


class ConnectError(Exception):
    """Root of the errors raised by ``connect_protocol``."""


class TransportError(ConnectError):
    """The MQTT or WebSocket transport, or the mDNS responder, failed on our side."""


class NotConnectedError(TransportError):
    """Publishing while the broker connection is down."""


class PayloadTooLargeError(TransportError):
    """A message over the protocol's size cap: refused before it is sent."""


class MdnsError(TransportError):
    """avahi-daemon refused a request or did not answer it (its D-Bus error name is kept)."""

    def __init__(self, message: str, *, dbus_error: str = "") -> None:
        super().__init__(message)
        self.dbus_error = dbus_error
