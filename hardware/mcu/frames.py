"""The front-panel link's frames: NMEA-0183-style lines, and the messages they carry.

A frame is ``$`` + payload + ``*`` + two upper-case hex digits (the XOR of every payload byte)
+ ``\\r\\n``, at most ``MAX_FRAME_BYTES`` bytes in all.  The payload is printable ASCII without
``$`` or ``*``; its comma-separated fields start with the message type:

panel -> speaker   ``HELLO,1,<fw>``  ``BTN,<button>,<press|long|release>``
                   ``ENC,<+n|-n>``  ``PING``
speaker -> panel   ``STATE,<state>``  ``VOL,<0-100>``  ``LED,<pattern>``  ``PONG``

``LineReader`` is fed whatever bytes arrive and hands back the payloads of the good frames.  It
never raises: a frame with a bad checksum, a bad character or over the length is dropped and
counted in ``dropped``, and the reader resynchronises at the next ``$`` (bytes outside a frame
are counted in ``stray_bytes``).  Message validation (type and fields) is ``parse_from_speaker``
and ``parse_from_panel``: ``None`` for a message to drop.

Pure: no I/O, no clock; runs unchanged under CPython and MicroPython.
"""

PROTOCOL_VERSION = 1
MAX_FRAME_BYTES = 82
# "$", "*", two hex digits, "\r\n"
MAX_PAYLOAD_BYTES = MAX_FRAME_BYTES - 6

BUTTONS = ("play", "next", "prev", "vol_up", "vol_down", "knob")
BUTTON_EVENTS = ("press", "long", "release")
STATES = ("idle", "playing", "paused", "buffering", "error")
LED_PATTERNS = ("booting", "not_paired", "connecting", "idle", "playing", "buffering", "error")
MAX_VOLUME = 100

_DOLLAR = 0x24
_STAR = 0x2A
_CR = 0x0D
_LF = 0x0A
_HEX = "0123456789ABCDEF"


def checksum(payload: bytes) -> int:
    """XOR of every payload byte."""
    value = 0
    for byte in payload:
        value ^= byte
    return value


def _payload_ok(payload: bytes) -> bool:
    if not payload or len(payload) > MAX_PAYLOAD_BYTES:
        return False
    for byte in payload:
        if byte < 0x20 or byte > 0x7E or byte == _DOLLAR or byte == _STAR:
            return False
    return True


def encode(payload: str) -> bytes:
    """The whole frame for ``payload``; ``ValueError`` for a payload no frame can carry."""
    data = payload.encode()
    if not _payload_ok(data):
        raise ValueError("payload not sendable: %r" % payload)
    value = checksum(data)
    return b"$" + data + b"*" + (_HEX[value >> 4] + _HEX[value & 0x0F]).encode() + b"\r\n"


def _hex_digit(byte: int) -> int:
    """0..15 for an ASCII hex digit (either case), -1 for anything else."""
    if 0x30 <= byte <= 0x39:
        return byte - 0x30
    if 0x41 <= byte <= 0x46:
        return byte - 0x41 + 10
    if 0x61 <= byte <= 0x66:
        return byte - 0x61 + 10
    return -1


def decode(line: bytes) -> str | None:
    """The payload of one frame (``$...*HH``, with or without its line end), or ``None``."""
    end = len(line)
    while end > 0 and (line[end - 1] == _LF or line[end - 1] == _CR):
        end -= 1
    if end + 2 > MAX_FRAME_BYTES or end < 5 or line[0] != _DOLLAR or line[end - 3] != _STAR:
        return None
    high = _hex_digit(line[end - 2])
    low = _hex_digit(line[end - 1])
    payload = line[1 : end - 3]
    if high < 0 or low < 0 or not _payload_ok(payload):
        return None
    if checksum(payload) != (high << 4) | low:
        return None
    return payload.decode()


class LineReader:
    """Resynchronising frame reader: bytes in, good payloads out, never an exception."""

    def __init__(self) -> None:
        # One frame without its "\n"; preallocated so that reading allocates only per frame.
        self._buffer = bytearray(MAX_FRAME_BYTES)
        self._length = 0
        self._in_frame = False
        self.frames = 0
        self.dropped = 0
        self.stray_bytes = 0

    def feed(self, data: bytes) -> list[str]:
        """Consume ``data``; return the payloads of the good frames it completed, in order."""
        payloads: list[str] = []
        for byte in data:
            if byte == _DOLLAR:
                if self._in_frame:
                    self.dropped += 1
                self._in_frame = True
                self._buffer[0] = byte
                self._length = 1
            elif not self._in_frame:
                if byte != _CR and byte != _LF:
                    self.stray_bytes += 1
            elif byte == _LF:
                self._in_frame = False
                self._finish(payloads)
            elif self._length >= MAX_FRAME_BYTES - 1:
                self._in_frame = False
                self.dropped += 1
            else:
                self._buffer[self._length] = byte
                self._length += 1
        return payloads

    def _finish(self, payloads: list[str]) -> None:
        payload = decode(bytes(self._buffer[: self._length]))
        if payload is None:
            self.dropped += 1
        else:
            self.frames += 1
            payloads.append(payload)


def _number(text: str, low: int, high: int, signed: bool) -> int | None:
    """An integer field: decimal digits (with a sign when ``signed``) in ``low .. high``."""
    digits = text
    if signed:
        if not text or (text[0] != "+" and text[0] != "-"):
            return None
        digits = text[1:]
    if not digits or len(digits) > 6:
        return None
    for char in digits:
        if char < "0" or char > "9":
            return None
    value = int(digits)
    if text[0] == "-":
        value = -value
    if value < low or value > high:
        return None
    return value


def parse_from_speaker(payload: str) -> tuple[str, str] | None:
    """``(type, argument)`` of a speaker -> panel message (argument ``""`` for PONG), or ``None``.

    An LED pattern name is only checked for shape here: the panel is lenient about names it does
    not know (it shows its default and counts them).
    """
    fields = payload.split(",")
    kind = fields[0]
    if kind == "PONG" and len(fields) == 1:
        return (kind, "")
    if len(fields) != 2:
        return None
    argument = fields[1]
    if kind == "STATE" and argument in STATES:
        return (kind, argument)
    if kind == "VOL" and _number(argument, 0, MAX_VOLUME, False) is not None:
        return (kind, str(int(argument)))
    if kind == "LED" and argument and len(argument) <= 24:
        return (kind, argument)
    return None


def parse_from_panel(payload: str) -> tuple[str, ...] | None:
    """The fields of a panel -> speaker message, validated, or ``None`` (the speaker's view)."""
    fields = payload.split(",")
    kind = fields[0]
    count = len(fields)
    if kind == "PING" and count == 1:
        return (kind,)
    if kind == "HELLO" and count == 3 and fields[1] == str(PROTOCOL_VERSION) and fields[2]:
        return (kind, fields[1], fields[2])
    if kind == "BTN" and count == 3 and fields[1] in BUTTONS and fields[2] in BUTTON_EVENTS:
        return (kind, fields[1], fields[2])
    if kind == "ENC" and count == 2:
        value = _number(fields[1], -99999, 99999, True)
        if value is not None and value != 0:
            return (kind, fields[1])
    return None


def hello(firmware_version: str) -> bytes:
    return encode("HELLO,%d,%s" % (PROTOCOL_VERSION, firmware_version))


def button(name: str, event: str) -> bytes:
    return encode("BTN,%s,%s" % (name, event))


def turn(detents: int) -> bytes:
    """``ENC,+n`` / ``ENC,-n``: the knob's detents since the last ENC frame (never 0)."""
    if detents == 0:
        raise ValueError("no detents to send")
    return encode("ENC,%+d" % detents)


def ping() -> bytes:
    return encode("PING")


def state(name: str) -> bytes:
    return encode("STATE," + name)


def volume(percent: int) -> bytes:
    return encode("VOL,%d" % percent)


def led(pattern: str) -> bytes:
    return encode("LED," + pattern)


def pong() -> bytes:
    return encode("PONG")
