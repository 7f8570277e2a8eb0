"""The errors ``hardware`` raises: one root, so a CLI catches one thing and prints it."""

from __future__ import annotations


class HardwareError(Exception):
    """Something about a board, an image or a card is wrong; the message says what."""


class BoardError(HardwareError):
    """A board profile is unusable: the message names the file, the key and what is allowed."""


class FlashError(HardwareError):
    """``legato-flash`` cannot go on; the image or card is left as it was."""


class ControlsError(HardwareError):
    """The speaker's controls cannot be set up as configured (a pin used twice, an
    unknown action); the message names the key at fault and what is allowed."""


class PanelError(HardwareError):
    """The front panel's serial port cannot be opened or used."""


class FrameError(PanelError):
    """A frame this side was asked to send breaks the panel protocol (over 82 bytes, a
    delimiter inside a field): a local mistake, never raised for what the panel sends."""
