"""The panel session, pure: messages from the panel -> control events and replies; the
speaker's ``View`` -> the frames that tell the panel what changed.

Invariants:

- nothing is sent on a connection before the panel has spoken on it (a panel that is
  still booting would miss it).  Its first frame gets the whole view (``STATE``, ``VOL``,
  ``LED``) in answer: after a ``HELLO`` as the protocol says, but also after the
  ``PING``, ``BTN`` or ``ENC`` of a panel that said ``HELLO`` before the speaker was
  listening (the speaker restarted while the panel ran on, answered by PONGs and so
  never saying ``HELLO`` again);
- a ``HELLO`` means the panel (re)started and knows nothing: the whole view again;
- after that every frame sent is remembered in ``told``, and ``show`` sends only what
  differs from it, so a panel never gets a frame that says nothing new;
- a new connection (``connected``) starts from nothing heard, nothing told, no ``HELLO``.
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
        self.heard = False  # the panel has said something on this connection
        self.told: dict[type[ToPanel], ToPanel] = {}  # the last STATE, VOL, LED sent

    def connected(self) -> None:
        """A new connection: the panel on it has said nothing and been told nothing."""
        self.hello = None
        self.heard = False
        self.told = {}

    def forget(self) -> None:
        """Frames were lost on the way: the next change tells the panel everything."""
        self.told = {}

    def receive(self, message: FromPanel) -> Reaction:
        if isinstance(message, Hello):
            self.hello = message
            self.heard = True
            self.told = {}
            return Reaction(replies=self._news())
        reaction = self._react(message)
        if self.heard:
            return reaction
        self.heard = True  # a panel that said HELLO before we listened: tell it everything
        return Reaction(reaction.events, reaction.replies + self._news())

    def _react(self, message: Button | Encoder | Ping) -> Reaction:
        match message:
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
        if self.view is None or not self.heard:
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
