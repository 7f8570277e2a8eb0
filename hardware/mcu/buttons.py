"""Debounce and long press for one push button: ``(pressed, now_ms)`` in, an event out.

Invariants:
- The debounced level changes only after the raw level has held for ``debounce_ms``; bounce
  shorter than that never yields an event.
- A press yields exactly one of: ``press`` (released before ``long_ms``, sent at the release),
  or ``long`` (sent once when the press has been held ``long_ms``) followed by ``release``.
- Times are tick values compared with ``ticks_diff``, so the tick counter may wrap.

Pure: the caller reads the pin (and its polarity) and passes the clock in.
"""

from ticks import ticks_diff

PRESS = "press"
LONG = "long"
RELEASE = "release"

DEBOUNCE_MS = 20
LONG_PRESS_MS = 800


class Button:
    def __init__(
        self, name: str, debounce_ms: int = DEBOUNCE_MS, long_press_ms: int = LONG_PRESS_MS
    ) -> None:
        self.name = name
        self.debounce_ms = debounce_ms
        self.long_press_ms = long_press_ms
        self._raw = False
        self._raw_since = 0
        self._pressed = False
        self._pressed_since = 0
        self._long_sent = False

    @property
    def pressed(self) -> bool:
        """The debounced level."""
        return self._pressed

    def update(self, pressed: bool, now_ms: int) -> str | None:
        """Feed the raw level sampled at ``now_ms``; return an event (``press``, ``long``,
        ``release``) or None."""
        if pressed != self._raw:
            self._raw = pressed
            self._raw_since = now_ms
        elif pressed != self._pressed and ticks_diff(now_ms, self._raw_since) >= self.debounce_ms:
            self._pressed = pressed
            if pressed:
                self._pressed_since = self._raw_since
                self._long_sent = False
            else:
                return RELEASE if self._long_sent else PRESS
        if (
            self._pressed
            and not self._long_sent
            and ticks_diff(now_ms, self._pressed_since) >= self.long_press_ms
        ):
            self._long_sent = True
            return LONG
        return None
