"""The front panel's logic: inputs in, frames to send out; frames received in, what to show out.

Invariants:
- ``start`` returns HELLO.  Every ``ping_interval_ms`` ``poll`` sends PING.  When nothing good
  has come from the speaker for ``link_timeout_ms`` (it may have restarted), the link counts as
  down and ``poll`` sends HELLO again, at most once per ``link_timeout_ms``.
- Knob detents are coalesced into ENC frames, at most one per ``enc_interval_ms``.  Detents in
  one direction add up; a turn the other way starts a new run sent after the first, so the
  speaker sees every detent in the order turned: none is lost or merged into the opposite one.
- Each good frame from the speaker marks the link up.  STATE and LED set what the ring shows
  (an LED pattern the panel does not know shows ``lights.DEFAULT_PATTERN`` and is counted in
  ``unknown_patterns``); a VOL that changes the volume shows it for ``volume_show_ms``.
- Bad frames (framing, checksum, type or field) are dropped and counted in ``bad_frames``.

Pure: the caller passes the clock (tick values, compared with ``ticks_diff``) and does the I/O.
"""

import frames
import lights
from ticks import ticks_diff

PING_INTERVAL_MS = 2000
LINK_TIMEOUT_MS = 6000
ENC_INTERVAL_MS = 15
VOLUME_SHOW_MS = 1500
# Runs of detents waiting for their ENC frame; a longer backlog folds into the last run.
MAX_RUNS = 8

# What the ring shows for each player state when the speaker sends no LED pattern.
STATE_PATTERNS = {
    "idle": "idle",
    "playing": "playing",
    "paused": "paused",
    "buffering": "buffering",
    "error": "error",
}


class Panel:
    def __init__(
        self,
        firmware_version: str,
        ping_interval_ms: int = PING_INTERVAL_MS,
        link_timeout_ms: int = LINK_TIMEOUT_MS,
        enc_interval_ms: int = ENC_INTERVAL_MS,
        volume_show_ms: int = VOLUME_SHOW_MS,
    ) -> None:
        self.firmware_version = firmware_version
        self.ping_interval_ms = ping_interval_ms
        self.link_timeout_ms = link_timeout_ms
        self.enc_interval_ms = enc_interval_ms
        self.volume_show_ms = volume_show_ms
        self.reader = frames.LineReader()
        self.link_up = False
        self.ever_heard = False
        self.state = "idle"
        self.led_pattern = ""
        self.volume = -1
        self.hellos_sent = 0
        self.bad_messages = 0
        self.unknown_patterns = 0
        self._runs: list[int] = []
        self._last_heard = 0
        self._last_hello = 0
        self._last_ping = 0
        self._last_enc = 0
        self._volume_changed_at = 0
        self._volume_showing = False

    @property
    def bad_frames(self) -> int:
        return self.reader.dropped + self.bad_messages

    def start(self, now_ms: int) -> bytes:
        """The HELLO that opens the link."""
        self._last_hello = now_ms
        self._last_ping = now_ms
        self._last_heard = now_ms
        self._last_enc = now_ms - self.enc_interval_ms
        self.hellos_sent += 1
        return frames.hello(self.firmware_version)

    def button(self, name: str, event: str) -> bytes:
        """The BTN frame for a button event."""
        return frames.button(name, event)

    def turn(self, detents: int) -> None:
        """Queue knob detents (signed) for the next ENC frames."""
        if detents == 0:
            return
        runs = self._runs
        if runs and (runs[-1] > 0) == (detents > 0):
            runs[-1] += detents
        elif len(runs) < MAX_RUNS:
            runs.append(detents)
        else:
            runs[-1] += detents

    @property
    def pending_detents(self) -> int:
        return sum(self._runs)

    def poll(self, now_ms: int) -> list[bytes]:
        """The frames due at ``now_ms``: ENC, PING and, when the link is down, HELLO."""
        out: list[bytes] = []
        if self._runs and ticks_diff(now_ms, self._last_enc) >= self.enc_interval_ms:
            self._last_enc = now_ms
            out.append(frames.turn(self._runs.pop(0)))
        if ticks_diff(now_ms, self._last_heard) >= self.link_timeout_ms:
            self.link_up = False
            if ticks_diff(now_ms, self._last_hello) >= self.link_timeout_ms:
                self._last_hello = now_ms
                self.led_pattern = ""
                self.hellos_sent += 1
                out.append(frames.hello(self.firmware_version))
        if ticks_diff(now_ms, self._last_ping) >= self.ping_interval_ms:
            self._last_ping = now_ms
            out.append(frames.ping())
        return out

    def receive(self, data: bytes, now_ms: int) -> None:
        """Take bytes from the speaker; act on every good frame they complete."""
        for payload in self.reader.feed(data):
            message = frames.parse_from_speaker(payload)
            if message is None:
                self.bad_messages += 1
            else:
                self._apply(message[0], message[1], now_ms)

    def _apply(self, kind: str, argument: str, now_ms: int) -> None:
        self.link_up = True
        self.ever_heard = True
        self._last_heard = now_ms
        if kind == "STATE":
            self.state = argument
        elif kind == "VOL":
            volume = int(argument)
            if self.volume >= 0 and volume != self.volume:
                self._volume_changed_at = now_ms
                self._volume_showing = True
            self.volume = volume
        elif kind == "LED":
            if lights.known(argument):
                self.led_pattern = argument
            else:
                self.unknown_patterns += 1
                self.led_pattern = lights.DEFAULT_PATTERN

    def pattern(self) -> str:
        """The status pattern to show now."""
        if not self.link_up:
            return "connecting" if self.ever_heard else "booting"
        if self.led_pattern:
            return self.led_pattern
        return STATE_PATTERNS.get(self.state, lights.DEFAULT_PATTERN)

    def shown_volume(self, now_ms: int) -> int:
        """The volume to show as a ring fill at ``now_ms``, or ``lights.NO_VOLUME``."""
        if self._volume_showing:
            if ticks_diff(now_ms, self._volume_changed_at) < self.volume_show_ms:
                return self.volume
            self._volume_showing = False
        return lights.NO_VOLUME
