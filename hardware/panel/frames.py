r"""The front panel's wire format, sans-I/O: fields -> one line of bytes, bytes -> messages.

One frame per line, in the form of an NMEA 0183 sentence::

    $ENC,+3*7C\r\n      "$" + payload + "*" + XOR of every payload byte (2 hex digits)

at most 82 bytes from ``$`` to ``\n``.  The payload's fields are comma-separated and
the first is the message type.  No I/O here (h11 style): ``encode`` makes bytes, a
``FrameReader`` is fed whatever the serial port gave and returns typed messages.

Invariants of ``FrameReader``:

- it never raises on input: a frame it cannot use is dropped, counted under exactly one
  ``DropReason``, and reading resumes at the next ``$``;
- feeding the same bytes in any split gives the same messages and the same counts;
- it holds at most ``MAX_FRAME_BYTES`` however long a line without an end runs.

What it accepts beyond the letter of the protocol, so that a panel written in another
language in a hurry still works: a line ended by a bare ``\n``; lower-case hex in the
checksum; ``ENC`` counts without a sign (``ENC,3`` is ``+3``; ``encode`` always writes
the sign) and ``ENC,0`` (nothing to do); ``\r`` and ``\n`` between frames (blank
lines), which are not garbage.  ``ENC`` counts beyond ``MAX_DETENTS`` and a ``HELLO``
with a protocol version other than 1 are bad fields.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum, StrEnum
from functools import reduce

from hardware.controls.keymap import BUTTONS, Gesture
from hardware.controls.status import Mode, Pattern
from hardware.errors import FrameError

#: A whole frame, ``$`` to ``\n`` included.
MAX_FRAME_BYTES = 82
#: What is left for the payload: ``$`` + payload + ``*HH`` + ``\r\n``.
MAX_PAYLOAD_BYTES = MAX_FRAME_BYTES - 6
PROTOCOL_VERSION = 1
#: The most knob detents one ``ENC`` frame may carry (a panel reports every few ms).
MAX_DETENTS = 1000


class DropReason(StrEnum):
    """Why a frame was dropped; each has its own count in the speaker's diagnostics."""

    BAD_CHECKSUM = "bad_checksum"  # no ``*HH``, or it is not the XOR of the payload
    UNKNOWN_TYPE = "unknown_type"
    BAD_FIELD = "bad_field"  # a known type with a wrong field or count of fields
    TOO_LONG = "too_long"  # over MAX_FRAME_BYTES before its end of line
    GARBAGE = "garbage"  # not printable ASCII, bytes outside a frame, a frame cut by "$"


# --- messages ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Hello:
    """The panel (re)started; the speaker answers with what it shows."""

    firmware: str
    version: int = PROTOCOL_VERSION

    def fields(self) -> tuple[str, ...]:
        return ("HELLO", str(self.version), self.firmware)


@dataclass(frozen=True, slots=True, kw_only=True)
class Button:
    name: str  # one of keymap.BUTTONS
    event: Gesture

    def fields(self) -> tuple[str, ...]:
        return ("BTN", self.name, self.event.value)


@dataclass(frozen=True, slots=True, kw_only=True)
class Encoder:
    """The knob turned ``detents`` clicks since the panel's last ``ENC`` (+ = louder)."""

    detents: int

    def fields(self) -> tuple[str, ...]:
        return ("ENC", f"{self.detents:+d}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Ping:
    def fields(self) -> tuple[str, ...]:
        return ("PING",)


@dataclass(frozen=True, slots=True, kw_only=True)
class State:
    mode: Mode

    def fields(self) -> tuple[str, ...]:
        return ("STATE", self.mode.value)


@dataclass(frozen=True, slots=True, kw_only=True)
class Volume:
    percent: int

    def fields(self) -> tuple[str, ...]:
        return ("VOL", str(self.percent))


@dataclass(frozen=True, slots=True, kw_only=True)
class Led:
    pattern: Pattern

    def fields(self) -> tuple[str, ...]:
        return ("LED", self.pattern.value)


@dataclass(frozen=True, slots=True, kw_only=True)
class Pong:
    def fields(self) -> tuple[str, ...]:
        return ("PONG",)


FromPanel = Hello | Button | Encoder | Ping
ToPanel = State | Volume | Led | Pong
Message = FromPanel | ToPanel


# --- encoding ---------------------------------------------------------------------------

_FORBIDDEN_IN_FIELD = frozenset("$*,")


def checksum(payload: bytes) -> int:
    """The XOR of every payload byte (what follows ``*``)."""
    return reduce(lambda acc, b: acc ^ b, payload, 0)


def encode(*fields: str) -> bytes:
    """One frame of these fields; ``FrameError`` for what the protocol cannot carry."""
    if not fields or not fields[0]:
        raise FrameError("a frame needs a message type as its first field")
    for f in fields:
        if any(not " " <= c <= "~" or c in _FORBIDDEN_IN_FIELD for c in f):
            raise FrameError(f"field {f!r} is not printable ASCII without '$', '*' or ','")
    payload = ",".join(fields).encode("ascii")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise FrameError(
            f"payload of {len(payload)} bytes is over {MAX_PAYLOAD_BYTES}"
            f" (frames are at most {MAX_FRAME_BYTES} bytes)"
        )
    return b"$%s*%02X\r\n" % (payload, checksum(payload))


def encode_message(message: Message) -> bytes:
    return encode(*message.fields())


# --- parsing fields ---------------------------------------------------------------------


class _BadFieldError(Exception):
    """Inside the reader only: a known message type with fields it cannot carry."""


def _arity(kind: str, args: list[str], n: int) -> None:
    if len(args) != n:
        raise _BadFieldError(f"{kind} takes {n} field(s), got {len(args)}")


def _one_of(kind: str, value: str, allowed: Mapping[str, object] | tuple[str, ...]) -> str:
    if value not in allowed:
        raise _BadFieldError(f"{kind} {value!r} is not one of {', '.join(allowed)}")
    return value


def _hello(args: list[str]) -> Hello:
    _arity("HELLO", args, 2)
    version, firmware = args
    if version != str(PROTOCOL_VERSION):
        raise _BadFieldError(f"HELLO protocol version {version!r}; this speaker speaks 1")
    if not firmware:
        raise _BadFieldError("HELLO without a firmware version")
    return Hello(version=PROTOCOL_VERSION, firmware=firmware)


_GESTURES = {g.value: g for g in Gesture}
_MODES = {m.value: m for m in Mode}
_PATTERNS = {p.value: p for p in Pattern}
_DETENTS = re.compile(r"[+-]?[0-9]{1,4}")
_PERCENT = re.compile(r"[0-9]{1,3}")


def _button(args: list[str]) -> Button:
    _arity("BTN", args, 2)
    name = _one_of("button", args[0], BUTTONS)
    return Button(name=name, event=_GESTURES[_one_of("event", args[1], _GESTURES)])


def _encoder(args: list[str]) -> Encoder:
    _arity("ENC", args, 1)
    if not _DETENTS.fullmatch(args[0]) or abs(int(args[0])) > MAX_DETENTS:
        raise _BadFieldError(f"ENC {args[0]!r} is not a detent count from -1000 to +1000")
    return Encoder(detents=int(args[0]))


def _ping(args: list[str]) -> Ping:
    _arity("PING", args, 0)
    return Ping()


def _state(args: list[str]) -> State:
    _arity("STATE", args, 1)
    return State(mode=_MODES[_one_of("state", args[0], _MODES)])


def _volume(args: list[str]) -> Volume:
    _arity("VOL", args, 1)
    if not _PERCENT.fullmatch(args[0]) or int(args[0]) > 100:
        raise _BadFieldError(f"VOL {args[0]!r} is not a percentage 0-100")
    return Volume(percent=int(args[0]))


def _led(args: list[str]) -> Led:
    _arity("LED", args, 1)
    return Led(pattern=_PATTERNS[_one_of("pattern", args[0], _PATTERNS)])


def _pong(args: list[str]) -> Pong:
    _arity("PONG", args, 0)
    return Pong()


Parser = Callable[[list[str]], Message]
#: What the speaker reads: the panel's messages.
FROM_PANEL: Mapping[str, Parser] = {
    "HELLO": _hello,
    "BTN": _button,
    "ENC": _encoder,
    "PING": _ping,
}
#: What a panel reads (tests play the panel with it): the speaker's messages.
TO_PANEL: Mapping[str, Parser] = {"STATE": _state, "VOL": _volume, "LED": _led, "PONG": _pong}


# --- the reader -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Drop:
    """A line that is not a usable frame, and why (in words, for a maker's log)."""

    reason: DropReason
    detail: str


_HEX = frozenset(b"0123456789abcdefABCDEF")


def decode_line(frame: bytes, parsers: Mapping[str, Parser] = FROM_PANEL) -> Message | Drop:
    """One complete line (``$`` up to, not including, ``\\n``) -> its message, or why not."""
    body = frame[1:-1] if frame.endswith(b"\r") else frame[1:]
    if len(body) + 3 > MAX_FRAME_BYTES:  # counted as if it ended "\r\n"
        return Drop(DropReason.TOO_LONG, f"{len(body) + 3} bytes: {frame!r}")
    if any(b < 0x20 or b > 0x7E for b in body):
        return Drop(DropReason.GARBAGE, f"not printable ASCII: {frame!r}")
    payload, star, digits = body.partition(b"*")
    if not star or len(digits) != 2 or not _HEX.issuperset(digits):
        return Drop(DropReason.BAD_CHECKSUM, f"no *HH checksum: {frame!r}")
    if int(digits, 16) != checksum(payload):
        return Drop(DropReason.BAD_CHECKSUM, f"{frame!r} (expected *{checksum(payload):02X})")
    kind, *args = payload.decode("ascii").split(",")
    parser = parsers.get(kind)
    if parser is None:
        return Drop(DropReason.UNKNOWN_TYPE, f"unknown type {kind!r}: {frame!r}")
    try:
        return parser(args)
    except _BadFieldError as exc:
        return Drop(DropReason.BAD_FIELD, f"{exc}: {frame!r}")


class _Mode(Enum):
    HUNT = "hunt"  # between frames: waiting for "$"
    FRAME = "frame"  # inside a frame: collecting up to its "\n"
    SKIP = "skip"  # the rest of a frame already dropped as too long


_DELIMITER = re.compile(rb"[$\n]")


class FrameReader:
    """Bytes in any split -> messages; drops counted by reason (see the module's invariants)."""

    def __init__(self, parsers: Mapping[str, Parser] = FROM_PANEL) -> None:
        self._parsers = parsers
        self._mode = _Mode.HUNT
        self._buf = bytearray()
        self._in_garbage = False  # the bytes since the last "$" were counted as garbage
        self.received = 0  # frames parsed into messages
        self.dropped: dict[DropReason, int] = dict.fromkeys(DropReason, 0)
        #: the first drop of each reason, said in words (what a maker reads in a log)
        self.first_drop: dict[DropReason, str] = {}

    @property
    def buffered_bytes(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[Message]:
        """Every message completed by ``data``, in order; never raises."""
        out: list[Message] = []
        i = 0
        while i < len(data):
            inside = self._mode is _Mode.FRAME
            i = self._collect(data, i, out) if inside else self._between(data, i)
        return out

    def _between(self, data: bytes, i: int) -> int:
        """Outside a frame: find the next "$" (or, after a too-long frame, its line end)."""
        found = _DELIMITER.search(data, i)
        end = found.start() if found else len(data)
        if self._mode is _Mode.HUNT and data[i:end].strip(b"\r\n") and not self._in_garbage:
            self._in_garbage = True
            self._drop(DropReason.GARBAGE, f"bytes outside a frame: {bytes(data[i:end][:20])!r}")
        if found is None:
            return end
        if data[end] == ord("$"):
            self._start_frame()
        elif self._mode is _Mode.SKIP:
            self._mode = _Mode.HUNT  # the too-long line ended
        return end + 1

    def _start_frame(self) -> None:
        self._mode = _Mode.FRAME
        self._buf = bytearray(b"$")
        self._in_garbage = False

    def _collect(self, data: bytes, i: int, out: list[Message]) -> int:
        found = _DELIMITER.search(data, i)
        end = found.start() if found else len(data)
        room = MAX_FRAME_BYTES - 1 - len(self._buf)  # one byte kept for the "\n"
        if end - i > room:
            self._drop(DropReason.TOO_LONG, f"no line end within {MAX_FRAME_BYTES} bytes")
            self._buf = bytearray()
            self._mode = _Mode.SKIP
            return end
        self._buf += data[i:end]
        if found is None:
            return end
        if data[end] == ord("$"):
            self._drop(DropReason.GARBAGE, f"frame cut short by '$': {bytes(self._buf)!r}")
            self._start_frame()
            return end + 1
        frame = bytes(self._buf)
        self._buf = bytearray()
        self._mode = _Mode.HUNT
        message = self._parse(frame)
        if message is not None:
            out.append(message)
        return end + 1

    def _parse(self, frame: bytes) -> Message | None:
        result = decode_line(frame, self._parsers)
        if isinstance(result, Drop):
            self._drop(result.reason, result.detail)
            return None
        self.received += 1
        return result

    def _drop(self, reason: DropReason, detail: str) -> None:
        self.dropped[reason] += 1
        self.first_drop.setdefault(reason, detail)
