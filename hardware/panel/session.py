"""The panel session, pure: messages from the panel -> control events and replies; the
speaker's ``View`` -> the frames that tell the panel what changed.

Invariants:

- nothing but ``PONG`` is sent on a connection before the panel's ``HELLO``: a panel
  hears its first ``STATE`` in answer to its ``HELLO``, never before (so a panel that
  hears none should say ``HELLO`` again: the speaker was not listening yet);
- ``HELLO`` means the panel (re)started and knows nothing: it is told the whole view
  (``STATE``, ``VOL``, ``LED``);
- after that every frame sent is remembered in ``told``, and ``show`` sends only what
  differs from it, so a panel never gets a frame that says nothing new;
- a new connection (``connected``) starts from nothing told and no ``HELLO``.  Buttons
  and knob count before a ``HELLO`` too: a panel that said it before the speaker was
  listening can still be used.
"""

from __future__ import annotations

from dataclasses import dataclass

from hardware.controls.keymap import ControlEvent, Pressed, Turned
from hardware.controls.status import View
from hardware.panel.frames import (
    Button,
    Encoder,
    FromPanel,
    Hello,
    Led,
    Ping,
    Pong,
    State,
    ToPanel,
    Volume,
)


@dataclass(frozen=True, slots=True)
class Reaction:
    """What one message from the panel leads to: events for the speaker, frames back."""

    events: tuple[ControlEvent, ...] = ()
    replies: tuple[ToPanel, ...] = ()


class PanelSession:
    def __init__(self) -> None:
        self.view: View | None = None  # what the speaker shows now
        self.hello: Hello | None = None  # the panel's last HELLO on this connection
        self.told: dict[type[ToPanel], ToPanel] = {}  # the last STATE, VOL, LED sent

    def connected(self) -> None:
        """A new connection: the panel on it has been told nothing and said no HELLO."""
        self.hello = None
        self.told = {}

    def receive(self, message: FromPanel) -> Reaction:
        match message:
            case Hello():
                self.hello = message
                self.told = {}
                return Reaction(replies=self._news())
            case Button(name=name, event=gesture):
                return Reaction(events=(Pressed(name, gesture),))
            case Encoder(detents=0):
                return Reaction()
            case Encoder(detents=n):
                return Reaction(events=(Turned(n),))
            case Ping():
                return Reaction(replies=(Pong(),))

    def show(self, view: View) -> tuple[ToPanel, ...]:
        """The speaker's view changed: the frames for what the panel does not know yet."""
        self.view = view
        return self._news()

    def _news(self) -> tuple[ToPanel, ...]:
        if self.view is None or self.hello is None:
            return ()
        whole = (
            State(mode=self.view.mode),
            Volume(percent=self.view.volume_percent),
            Led(pattern=self.view.pattern),
        )
        news = tuple(m for m in whole if self.told.get(type(m)) != m)
        for m in news:
            self.told[type(m)] = m
        return news
