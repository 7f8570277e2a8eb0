"""The speaker's own controls: buttons, knob and front panel in; lights and panel out.

Inputs arrive from gpiozero's threads and the panel's reader thread as
``ControlEvent`` values; ``submit`` hands them to the event loop, where each
becomes a Connect command (``hardware.controls.commands``) applied by the
controller exactly as a command from the hub would be.  The controller drives
the engine at once, so the sound changes with no round trip to the hub or the
broker, and the new state goes out to the hub and every remote as usual.

Outputs: whenever what the lights show changes (player mode, volume, status
pattern) every ``Indicator`` is told, on the loop; indicators must not block.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import secrets
import threading
from collections.abc import Callable
from typing import Protocol

from connect_protocol.messages import Command, PlayerState
from device.local_api import CommandBudget
from hardware.controls.commands import (
    LastContext,
    command_for,
    last_context_of,
    volume_command,
    worth_keeping,
)
from hardware.controls.keymap import ControlEvent, Gesture, Pressed, Turned
from hardware.controls.settings import ControlSettings
from hardware.controls.status import Situation, View, pattern_of, player_mode

logger = logging.getLogger(__name__)

#: A held button stops repeating after this long even if its release never came
#: (a panel unplugged mid-press): enough to sweep the whole volume range at the
#: default step and rate, not enough to run away with it.
MAX_REPEAT_S = 10.0


class Indicator(Protocol):
    """Something that shows the speaker's status: a status LED, a front panel."""

    def show(self, view: View) -> None: ...


class LocalControls:
    def __init__(
        self,
        settings: ControlSettings,
        *,
        loop: asyncio.AbstractEventLoop,
        apply: Callable[[Command], None],
        state: Callable[[], PlayerState],
        last: LastContext | None = None,
        on_remember: Callable[[LastContext], None] | None = None,
    ) -> None:
        self.settings = settings
        self._loop = loop
        self._apply = apply
        self._state = state
        self._ids = itertools.count(1)
        self._prefix = f"ctl-{secrets.token_hex(3)}"
        self._indicators: list[Indicator] = []
        self._situation = Situation()
        self._view: View | None = None
        self._last = last  # what the play button starts when nothing is loaded
        self._on_remember = on_remember
        self._held: dict[str, asyncio.TimerHandle] = {}  # repeating buttons, while held
        # From the devices' threads: knob turns are summed until the loop takes them (one
        # volume change per loop pass, however fast the spin), and button events pass a
        # budget, so a babbling panel can neither flood the loop nor thrash the player.
        self._lock = threading.Lock()
        self._turns = 0
        self._turns_queued = False
        self._budget = CommandBudget()
        self.events = 0  # control events applied, for diagnostics
        self.detents = 0  # knob detents counted (signed sum)
        self.refused = 0  # button events over the budget, dropped

    # --- inputs ------------------------------------------------------------------

    def submit(self, event: ControlEvent) -> None:
        """From any thread: apply ``event`` on the loop, buttons in arrival order."""
        with self._lock:
            if isinstance(event, Turned):
                self._turns += event.detents
                if self._turns_queued:
                    return
                self._turns_queued = True
                self._loop.call_soon_threadsafe(self._take_turns)
                return
            if not self._budget.take():
                self.refused += 1
                return
        self._loop.call_soon_threadsafe(self.handle, event)

    def _take_turns(self) -> None:
        with self._lock:
            detents, self._turns, self._turns_queued = self._turns, 0, False
        if detents:
            self.handle(Turned(detents))

    def handle(self, event: ControlEvent) -> None:
        """On the loop: turn one event into the command it stands for and apply it."""
        self.events += 1
        match event:
            case Turned(detents=n):
                self.detents += n
                self._step_volume(n)
            case Pressed(button=button, gesture=Gesture.RELEASE):
                self._stop_repeat(button)
            case Pressed() if self.settings.keymap.repeats_while_held(event):
                self._stop_repeat(event.button)  # a second "long" restarts, never doubles
                self._repeat(event.button, MAX_REPEAT_S)
            case Pressed():
                self._act(event)

    def release_all(self) -> None:
        """Every held button let go (the panel that held them went away)."""
        for button in list(self._held):
            self._stop_repeat(button)

    def _next_id(self) -> str:
        return f"{self._prefix}-{next(self._ids)}"

    def _step_volume(self, steps: int) -> None:
        cmd = volume_command(
            self._state(), steps, step_percent=self.settings.volume_step, command_id=self._next_id()
        )
        if cmd is not None:
            self._apply(cmd)

    def _act(self, event: Pressed) -> None:
        action = self.settings.keymap.action(event)
        cmd = command_for(
            action,
            self._state(),
            command_id=self._next_id(),
            step_percent=self.settings.volume_step,
            last=self._last,
        )
        if cmd is not None:
            self._apply(cmd)

    def _repeat(self, button: str, remaining_s: float) -> None:
        self._act(Pressed(button, Gesture.PRESS))
        if remaining_s <= 0:
            self._held.pop(button, None)
            return
        interval = self.settings.repeat_s
        self._held[button] = self._loop.call_later(
            interval, self._repeat, button, remaining_s - interval
        )

    def _stop_repeat(self, button: str) -> None:
        handle = self._held.pop(button, None)
        if handle is not None:
            handle.cancel()

    # --- outputs -----------------------------------------------------------------

    def add_indicator(self, indicator: Indicator) -> None:
        self._indicators.append(indicator)
        if self._view is not None:
            indicator.show(self._view)

    def observe(
        self,
        *,
        state: PlayerState | None = None,
        started: bool | None = None,
        paired: bool | None = None,
        connected: bool | None = None,
        failed: bool | None = None,
    ) -> None:
        """On the loop: something the lights depend on changed; tell the indicators."""
        s = self._situation
        if state is not None:
            remembered = last_context_of(state)
            if remembered is not None and worth_keeping(
                self._last, remembered, playing=state.is_playing
            ):
                self._last = remembered
                if self._on_remember is not None:
                    self._on_remember(remembered)
            if state.is_playing and not state.buffering:
                failed = False  # playing again: the error is over
        s = dataclasses.replace(
            s,
            started=s.started if started is None else started,
            paired=s.paired if paired is None else paired,
            connected=s.connected if connected is None else connected,
            failed=s.failed if failed is None else failed,
        )
        current = self._state() if state is None else state
        self._situation = dataclasses.replace(s, mode=player_mode(current, failed=s.failed))
        view = View(
            mode=self._situation.mode,
            volume_percent=current.volume_percent,
            pattern=pattern_of(self._situation),
        )
        if view == self._view:
            return
        self._view = view
        for indicator in self._indicators:
            try:
                indicator.show(view)
            except Exception:  # one broken light must not stop the others or the caller
                logger.exception("indicator %r failed", indicator)

    @property
    def view(self) -> View | None:
        return self._view

    def close(self) -> None:
        self.release_all()
