"""The physical controls a speaker's config asks for, opened at start.

Each is a ``ControlDevice``: it reports ``ControlEvent`` values to ``submit``
(from its own thread), may call ``release_all`` from that thread too (both must be
thread-safe), and is an ``Indicator`` for the status it shows.  A device
that cannot be opened (no GPIO on this machine, no such serial port) is logged
and left out: a speaker without its buttons still plays and is still steered
from the phone.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from typing import Any, Protocol

from device.config import SpeakerConfig
from hardware.controls.keymap import ControlEvent
from hardware.controls.status import View
from hardware.errors import HardwareError

logger = logging.getLogger(__name__)


class ControlDevice(Protocol):
    name: str

    def show(self, view: View) -> None: ...

    def diagnostics(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


def open_control_devices(
    config: SpeakerConfig,
    submit: Callable[[ControlEvent], None],
    release_all: Callable[[], None],
) -> list[ControlDevice]:
    """The GPIO controls (when the config has pins) and the front panel (when it has a port)."""
    devices: list[ControlDevice] = []
    if config.pins:
        gpio = open_gpio(config, submit)
        if gpio is not None:
            devices.append(gpio)
    if config.panel_port:
        # only a speaker with a panel imports pyserial
        from hardware.panel.link import PanelLink

        # a port that is not there yet is not fatal: the link waits for the panel
        devices.append(
            PanelLink(
                config.panel_port, config.panel_baud, submit=submit, release_all=release_all
            ).start()
        )
    return devices


def open_gpio(
    config: SpeakerConfig, submit: Callable[[ControlEvent], None]
) -> ControlDevice | None:
    """The buttons, knob and LED on the config's pins; ``None`` (with one warning) where
    there is no GPIO: the speaker then plays on, steered from the hub and phones."""
    # gpiozero warns once per pin library it tries; those reasons go into our one line
    with warnings.catch_warnings(record=True) as tried:
        warnings.simplefilter("always")
        try:
            # only a speaker with pins imports gpiozero
            from hardware.controls.gpio import GpioControls

            return GpioControls(config.controls, submit)
        except (HardwareError, ImportError) as exc:
            reasons = "; ".join(str(w.message) for w in tried)
            logger.warning(
                "GPIO controls are off (%s): %s%s; the speaker plays on and obeys the hub "
                "and phones (on a machine without GPIO, leave out speaker.board or set "
                'these pins to "none" in [controls.pins])',
                ", ".join(f"{name}={pin}" for name, pin in config.pins.items()),
                exc,
                f" ({reasons})" if reasons else "",
            )
            return None
