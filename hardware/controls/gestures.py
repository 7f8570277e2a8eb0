"""One button's contact edges -> the gestures a person made with it.

Pure: edges come in with the time they happened, so what is reported depends
only on the edges and their times, never on when a thread got round to looking
(a busy Pi Zero reports late, not differently).

A contact bounces for a few milliseconds whenever it closes or opens.  A level
counts once the contact has been quiet at it for ``bounce_s``; a burst of edges
that ends where it began (a glitch) is nothing.  The gestures:

- ``press``: a short press, reported when the button is let go;
- ``long``: the button has been held ``long_press_s`` since it closed, reported
  once while it is still held (held time stops counting while the contact is
  moving, and resumes if that was a glitch);
- ``release``: the end of a long press.

Invariant: the reported gestures always read as ``(press | long release)*``,
possibly ending with a ``long`` whose ``release`` is yet to come.
"""

from __future__ import annotations

from hardware.controls.keymap import Gesture, Pressed


class ButtonGestures:
    """The debounced state of one button, advanced by edges and by the passing of time."""

    def __init__(
        self, button: str, *, long_press_s: float, bounce_s: float, pressed: bool = False
    ) -> None:
        self.button = button
        self.long_press_s = long_press_s
        self.bounce_s = bounce_s
        self.pressed = pressed  # the debounced level
        # A button already held when we start reports only its release: it was
        # not pressed in front of us, so it stands for nothing.
        self._long_sent = pressed
        self._pressed_at_s = 0.0
        self._raw = pressed  # the level of the last edge
        self._moving_since_s: float | None = None  # last edge, while not yet settled
        self._now_s = float("-inf")

    def edge(self, at_s: float, pressed: bool) -> list[Pressed]:
        """The contact changed at ``at_s`` (to ``pressed``); what happened before it."""
        out = self.advance(at_s)
        self._raw = pressed
        self._moving_since_s = self._now_s
        return out + self.advance(self._now_s)  # with no bounce time: at once

    def advance(self, now_s: float) -> list[Pressed]:
        """Time has reached ``now_s`` with no other edge: settle, and report a long press due."""
        self._now_s = now_s = max(now_s, self._now_s)
        out: list[Pressed] = []
        moving = self._moving_since_s
        if moving is not None and now_s >= moving + self.bounce_s:
            self._moving_since_s = None
            if self._raw != self.pressed:
                out += self._settle(moving)
        if self._long_due() is not None and now_s >= self._pressed_at_s + self.long_press_s:
            self._long_sent = True
            out.append(Pressed(self.button, Gesture.LONG))
        return out

    def deadline(self) -> float | None:
        """When ``advance`` next has something to do, if no edge comes first."""
        if self._moving_since_s is not None:
            return self._moving_since_s + self.bounce_s
        return self._long_due()

    def _long_due(self) -> float | None:
        if self.pressed and not self._long_sent and self._moving_since_s is None:
            return self._pressed_at_s + self.long_press_s
        return None

    def _settle(self, since_s: float) -> list[Pressed]:
        self.pressed = self._raw
        if self.pressed:
            self._pressed_at_s = since_s
            self._long_sent = False
            return []
        gesture = Gesture.RELEASE if self._long_sent else Gesture.PRESS
        return [Pressed(self.button, gesture)]
